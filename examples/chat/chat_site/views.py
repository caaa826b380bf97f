"""The Django side of the example: the page that talks to bolt's WebSockets."""
from django.http import JsonResponse
from django.shortcuts import render


def index(request):
    return render(request, "chat/index.html", {"room": request.GET.get("room", "lobby")})


def health(request):
    return JsonResponse({"ok": True, "served_by": "django"})
