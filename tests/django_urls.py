"""URLs of the Django project the tests mount bolt beside (see django_settings.py)."""
from django.contrib.auth import update_session_auth_hash
from django.http import HttpResponse, JsonResponse
from django.urls import path


def hello(request):
    return HttpResponse("hello from django", content_type="text/plain")


def shared(request):
    # bolt has an HTTP route at the same path in some tests: bolt's must win there.
    return JsonResponse({"served_by": "django"})


def change_password(request):
    # As Django's PasswordChangeView does: save the new password, then keep this session logged in.
    request.user.set_password(request.POST["password"])
    request.user.save()
    update_session_auth_hash(request, request.user)
    return JsonResponse({"ok": True})


urlpatterns = [
    path("django/hello", hello),
    path("change-password", change_password),
    path("shared", shared),
]
