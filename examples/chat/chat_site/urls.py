from django.urls import path

from chat_site import views

urlpatterns = [
    path("", views.index, name="index"),
    path("health", views.health, name="health"),
]
