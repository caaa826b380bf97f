from django.contrib import admin

from chat_site.models import Message, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "staff_only")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("room", "author", "text", "announcement", "created")
    list_filter = ("room", "announcement")
