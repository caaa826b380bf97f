"""Headers (the same answers whether or not the full index has been built yet) and cookies."""
from __future__ import annotations

from bolt.datastructures import Headers, parse_cookies

RAW = [(b"host", b"example.com"), (b"X-Token", b"first"), (b"x-token", b"second"), (b"empty", b"")]


def test_get_before_and_after_the_index_is_built() -> None:
    for build_first in (False, True):
        headers = Headers(list(RAW))
        if build_first:
            assert len(headers) == 3
        assert headers.get("x-token") == "first"
        assert headers.get("X-TOKEN") == "first"
        assert headers.get("empty") == ""
        assert headers.get("missing") is None
        assert headers.get("missing", "fallback") == "fallback"
        assert headers.get("caf\u00e9") is None
        assert headers.get("\u2603", "none") == "none"  # not a latin-1 name: no header can have it
    assert Headers(list(RAW)).getlist("x-token") == ["first", "second"]


def test_a_repeated_cookie_keeps_its_last_value_as_django_reads_it() -> None:
    from bolt.connection import HTTPConnection

    scope = {"type": "http", "headers": [(b"cookie", b"sessionid=planted; theme=dark"), (b"cookie", b"sessionid=own")]}
    assert HTTPConnection(scope).cookies == {"sessionid": "own", "theme": "dark"}
    assert parse_cookies('a=1; b="x y"; a=2; broken') == {"a": "2", "b": "x y"}
