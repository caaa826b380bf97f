from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from chat_site import views

urlpatterns = [
    path("", views.rooms, name="rooms"),
    path("rooms/<slug:name>/", views.room, name="room"),
    path("rooms/<slug:name>/messages", views.messages, name="messages"),
    path("rooms/<slug:name>/announce", views.announce, name="announce"),
    path("users", views.users, name="users"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
