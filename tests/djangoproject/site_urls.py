"""Views of the test project: log in and out, change a password, publish from a sync view."""
import json

from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.models import Session
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from bolt.realtime import publish


def hello(request):
    return HttpResponse("hello from django")


@csrf_exempt
def make_user(request):
    data = json.loads(request.body)
    user = User.objects.create_user(data["username"], password=data["password"], is_staff=data.get("staff", False))
    for codename in data.get("perms", ()):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return JsonResponse({"pk": user.pk})


@csrf_exempt
def log_in(request):
    data = json.loads(request.body)
    user = authenticate(request, username=data["username"], password=data["password"])
    login(request, user)
    return JsonResponse({"session": request.session.session_key})


def log_out(request):
    logout(request)
    return JsonResponse({"ok": True})


@csrf_exempt
def set_password(request):
    data = json.loads(request.body)
    user = User.objects.get(username=data["username"])
    user.set_password(data["password"])
    user.save()
    return JsonResponse({"ok": True})


@csrf_exempt
def change_password(request):
    # As Django's PasswordChangeView does: the logged-in user's new password, this session kept.
    request.user.set_password(json.loads(request.body)["password"])
    request.user.save()
    update_session_auth_hash(request, request.user)
    return JsonResponse({"session": request.session.session_key})


@csrf_exempt
def delete_sessions(request):
    Session.objects.all().delete()
    return JsonResponse({"ok": True})


def publish_view(request):
    seq = publish(request.GET["room"], {"text": request.GET["text"]})
    return JsonResponse({"id": seq})


urlpatterns = [
    path("django/hello", hello),
    path("make-user", make_user),
    path("login", log_in),
    path("logout", log_out),
    path("set-password", set_password),
    path("change-password", change_password),
    path("delete-sessions", delete_sessions),
    path("publish", publish_view),
]
