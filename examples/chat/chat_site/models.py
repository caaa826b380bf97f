"""The chat's data: rooms, and the messages posted to them (the history a page shows on opening a room)."""
from django.conf import settings
from django.db import models


class Room(models.Model):
    """A chat room. `staff_only` rooms can be opened and joined by staff users only."""

    name = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=100)
    description = models.CharField(max_length=200, blank=True)
    staff_only = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.title

    def allows(self, user) -> bool:
        return user.is_authenticated and (user.is_staff or not self.staff_only)


class Message(models.Model):
    """One message in a room. An announcement has no author."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    text = models.TextField(max_length=2000)
    announcement = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def to_json(self) -> dict:
        """What the page receives, live and from history alike."""
        return {
            "pk": self.pk,
            "author": self.author.get_username() if self.author_id else None,
            "text": self.text,
            "announcement": self.announcement,
            "created": self.created.isoformat(),
        }
