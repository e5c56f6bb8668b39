from __future__ import annotations

from django.urls import path

from tests.frameworks.django_site import views

urlpatterns = [
    path("", views.home),
    path("health", views.health),
    path("last-disconnect", views.disconnect_record),
]
