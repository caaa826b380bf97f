"""Shared helpers for the security tests: tokens, keys, a Django database, a log capture."""
from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from django_settings import configure_django

# 64 bytes: long enough for HS512, so pyjwt never warns about a short key.
SECRET = "bolt-security-tests-hmac-secret-" + "0123456789abcdef" * 2

configure_django()


def make_token(claims: dict[str, Any] | None = None, *, secret: Any = SECRET, algorithm: str = "HS256",
               expires_in: int = 3600, headers: dict[str, Any] | None = None) -> str:
    payload: dict[str, Any] = {"sub": "42", "exp": int(time.time()) + expires_in}
    payload.update(claims or {})
    return jwt.encode(payload, secret, algorithm=algorithm, headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def rsa_keys() -> tuple[Any, bytes]:
    """An RSA private key and its public key as PEM."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public_pem


@pytest.fixture(scope="session")
def ec_keys() -> tuple[Any, bytes]:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public_pem
