"""The one ASGI application: bolt's routes (chat_site/api.py) beside the Django site.

    uvicorn chat_site.asgi:application --host 127.0.0.1 --port 8000
"""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat_site.settings")

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

# Set Django up before importing code that may use models.
django_app = get_asgi_application()

if settings.DEBUG:
    # Serve the page's JavaScript without a separate web server (development only).
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_app = ASGIStaticFilesHandler(django_app)

from bolt.django import mount  # noqa: E402

from chat_site.api import api  # noqa: E402

application = mount(api, django_app)
