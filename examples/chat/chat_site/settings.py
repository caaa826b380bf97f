"""Settings of the chat example: a small Django project with bolt mounted in asgi.py."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A development key: set DJANGO_SECRET_KEY for anything but a local demo.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "chat-example-development-key-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "bolt",  # first: its runserver (WebSockets) wins over staticfiles'; bolt.js for the pages
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "chat_site",  # models, pages and their static files
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "chat_site.urls"
ASGI_APPLICATION = "chat_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": [
            "django.template.context_processors.request",
            "django.contrib.auth.context_processors.auth",
            "django.contrib.messages.context_processors.messages",
        ]},
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHAT_DATABASE", BASE_DIR / "db.sqlite3"),
    }
}

USE_TZ = True
STATIC_URL = "static/"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "rooms"
LOGOUT_REDIRECT_URL = "login"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# bolt reads these lazily. The pages are served from the same origin as their WebSocket, which
# bolt always admits; list other origins (a separate front-end dev server, say) here.
CORS_ALLOWED_ORIGINS: list[str] = []
BOLT_PUBSUB = "memory"  # one process; use "redis://127.0.0.1:6379/0" to run several workers
