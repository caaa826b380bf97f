"""URLs of the Django project the tests mount bolt beside (see django_settings.py)."""
from django.http import HttpResponse, JsonResponse
from django.urls import path


def hello(request):
    return HttpResponse("hello from django", content_type="text/plain")


def shared(request):
    # bolt has an HTTP route at the same path in some tests: bolt's must win there.
    return JsonResponse({"served_by": "django"})


urlpatterns = [
    path("django/hello", hello),
    path("shared", shared),
]
