"""bolt.js is where Django's staticfiles looks for it once "bolt" is in INSTALLED_APPS."""
from __future__ import annotations

from pathlib import Path

from django_settings import configure_django

configure_django()

from django.contrib.staticfiles import finders  # noqa: E402
from django.template import Context, Engine  # noqa: E402
from django.test import override_settings  # noqa: E402

BOLT_JS = Path(__file__).resolve().parent.parent.parent / "bolt" / "static" / "bolt" / "bolt.js"


def test_staticfiles_finds_boltjs_in_the_bolt_app() -> None:
    apps = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.staticfiles", "bolt"]
    finders.get_finder.cache_clear()
    try:
        with override_settings(INSTALLED_APPS=apps, STATIC_URL="/static/"):
            found = finders.find("bolt/bolt.js")
            assert found is not None and Path(found).resolve() == BOLT_JS.resolve()
            engine = Engine(libraries={"static": "django.templatetags.static"})
            html = engine.from_string("{% load static %}<script type=module src=\"{% static 'bolt/bolt.js' %}\">").render(Context())
            assert html == '<script type=module src="/static/bolt/bolt.js">'
    finally:
        finders.get_finder.cache_clear()


def test_boltjs_is_an_es_module_without_imports() -> None:
    source = BOLT_JS.read_text(encoding="utf-8")
    assert "export function connect(" in source
    assert "\nimport " not in source and "require(" not in source  # dependency-free: nothing to fetch or build
