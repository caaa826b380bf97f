import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from site_api import api  # noqa: E402

from bolt.django import mount  # noqa: E402

application = mount(api, django_app)
