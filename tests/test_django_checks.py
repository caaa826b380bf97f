"""bolt's system checks, run as `manage.py check` runs them (django.core.checks with the "bolt" tag)."""
from __future__ import annotations

import pytest

from django_settings import configure_django

configure_django()

from django.core import checks  # noqa: E402
from django.test import override_settings  # noqa: E402

from bolt import BoltAPI  # noqa: E402
from bolt.auth import SessionAuthentication  # noqa: E402

# An api whose HTTP route has the path of a Django URL of tests/django_urls.py.
shadowing = BoltAPI(docs_url="/shared")
# Session authentication with the server's own origin only, said explicitly.
same_origin_only = BoltAPI(cors_allowed_origins=[], auth=[SessionAuthentication()])


def bolt_check_ids() -> set[str]:
    return {message.id for message in checks.run_checks(tags=["bolt"])}


def test_a_clean_configuration_passes() -> None:
    assert bolt_check_ids() == set()


def test_cookie_authentication_without_an_origin_policy() -> None:
    with override_settings(BOLT_AUTHENTICATION_CLASSES=["bolt.auth.SessionAuthentication"]):
        assert "bolt.W001" in bolt_check_ids()
    with override_settings(BOLT_AUTHENTICATION_CLASSES=["bolt.auth.SessionAuthentication"],
                           CORS_ALLOWED_ORIGINS=["https://app.example"]):
        assert "bolt.W001" not in bolt_check_ids()
    # A project's own subclass, named by its path, reads the cookie all the same.
    with override_settings(BOLT_AUTHENTICATION_CLASSES=["test_django_checks.ProjectSession"]):
        assert "bolt.W001" in bolt_check_ids()
    with override_settings(BOLT_AUTHENTICATION_CLASSES=["bolt.auth.JWTAuthentication"]):  # a header by default
        assert "bolt.W001" not in bolt_check_ids()


class ProjectSession(SessionAuthentication):
    pass


@pytest.mark.parametrize("setting", ["CORS_ALLOWED_ORIGINS", "CORS_ALLOWED_ORIGIN_REGEXES"])
def test_an_empty_origin_setting_is_a_stated_policy(setting: str) -> None:
    with override_settings(BOLT_AUTHENTICATION_CLASSES=["bolt.auth.SessionAuthentication"], **{setting: []}):
        assert "bolt.W001" not in bolt_check_ids()


def test_an_apis_empty_origin_list_is_a_stated_policy() -> None:
    with override_settings(ASGI_APPLICATION="test_django_checks.same_origin_only"):
        assert bolt_check_ids() == set()


def test_memory_backend_with_several_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert "bolt.W002" in bolt_check_ids()
    with override_settings(BOLT_PUBSUB="redis://127.0.0.1:6379/0"):
        assert "bolt.W002" not in bolt_check_ids()


@pytest.mark.parametrize("url", ["redis://host:notaport/0", "amqp://broker", "redis+cluster://a:1,:2"])
def test_a_pubsub_url_that_does_not_parse(url: str) -> None:
    with override_settings(BOLT_PUBSUB=url):
        assert "bolt.E001" in bolt_check_ids()


def test_a_redis_cluster_url_is_a_backend() -> None:
    with override_settings(BOLT_PUBSUB="redis+cluster://10.0.0.1:7000,10.0.0.2:7000"):
        assert "bolt.E001" not in bolt_check_ids()


def test_asgi_application_that_does_not_mount_bolt() -> None:
    with override_settings(ASGI_APPLICATION="django_urls.hello"):
        assert "bolt.W003" in bolt_check_ids()
    with override_settings(ASGI_APPLICATION="no_such_module.application"):
        assert "bolt.E002" in bolt_check_ids()
    with override_settings(ASGI_APPLICATION="test_django_db.api", CORS_ALLOWED_ORIGINS=["https://app.example"]):
        assert bolt_check_ids() == set()


def test_the_mounted_apis_session_routes_count_as_cookie_authentication() -> None:
    with override_settings(ASGI_APPLICATION="test_django_db.api"):  # a route with SessionAuthentication()
        assert bolt_check_ids() == {"bolt.W001"}


def test_staticfiles_before_bolt() -> None:
    with override_settings(INSTALLED_APPS=["django.contrib.staticfiles", "bolt", "django.contrib.auth",
                                           "django.contrib.contenttypes", "django.contrib.sessions"]):
        assert "bolt.W004" in bolt_check_ids()


def test_an_http_route_that_hides_a_django_url() -> None:
    with override_settings(ASGI_APPLICATION="test_django_checks.shadowing"):
        messages = [m for m in checks.run_checks(tags=["bolt"]) if m.id == "bolt.W005"]
    assert len(messages) == 1 and "/shared" in messages[0].msg
    assert "docs_url" in messages[0].hint
