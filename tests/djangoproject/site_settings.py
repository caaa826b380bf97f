"""Settings of the test project: SQLite file and pub/sub backend from the environment the tests set."""
import os

DEBUG = True
SECRET_KEY = "bolt-test-project-not-secret"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "bolt",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "site_urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ.get("BOLT_TEST_DB", ":memory:"), "OPTIONS": {"timeout": 20}}}
STATIC_URL = "static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
BOLT_PUBSUB = os.environ.get("BOLT_TEST_PUBSUB", "memory")
CORS_ALLOWED_ORIGINS = ["http://127.0.0.1"]
if not os.environ.get("BOLT_TEST_NO_ASGI"):
    ASGI_APPLICATION = "site_asgi.application"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast: tests log in many times
STATICFILES_DIRS = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")]
