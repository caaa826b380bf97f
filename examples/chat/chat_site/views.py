"""The chat's pages: the room list, a room, its history as JSON, and staff announcements."""
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from bolt.realtime import publish

from chat_site.api import MAX_TEXT, PREFIX
from chat_site.models import Message, Room

HISTORY = 50     # messages a room page opens with
CATCH_UP = 200   # messages one catch-up request returns at most


@login_required
def rooms(request):
    return render(request, "chat/rooms.html", {"rooms": Room.objects.all()})


@login_required
def room(request, name):
    """The room's page. A room the user may not open still renders: its live connection is refused."""
    room = get_object_or_404(Room, name=name)
    allowed = room.allows(request.user)
    history = []
    if allowed:
        latest = room.messages.select_related("author").order_by("-pk")[:HISTORY]
        history = [m.to_json() for m in reversed(latest)]
    return render(request, "chat/room.html", {
        "room": room, "allowed": allowed, "realtime_room": PREFIX + room.name,
        "history": history, "max_text": MAX_TEXT,
    })


@login_required
@require_GET
def messages(request, name):
    """Messages after ?after=<pk>, oldest first: how a page catches up after a gap."""
    room = get_object_or_404(Room, name=name)
    if not room.allows(request.user):
        return HttpResponseForbidden()
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        raise Http404 from None
    found = room.messages.select_related("author").filter(pk__gt=after)[:CATCH_UP]
    return JsonResponse({"messages": [m.to_json() for m in found]})


@login_required
@require_GET
def users(request):
    """Usernames for ?id=<pk>&id=...: the names behind the user ids presence reports."""
    ids = [i for i in request.GET.getlist("id") if i.isdigit()][:100]
    found = get_user_model().objects.filter(pk__in=ids)
    return JsonResponse({str(u.pk): u.get_username() for u in found})


@staff_member_required
@require_POST
def announce(request, name):
    """Post an announcement from a plain (sync) Django view: stored, then broadcast to the room."""
    room = get_object_or_404(Room, name=name)
    text = request.POST.get("text", "").strip()[:MAX_TEXT]
    if text:
        message = Message.objects.create(room=room, text=text, announcement=True)
        publish(PREFIX + room.name, message.to_json())
    return redirect("room", name=room.name)
