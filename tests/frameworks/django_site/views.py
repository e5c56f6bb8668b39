"""Django's HTTP views of the test site."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from tests.frameworks.django_site.consumers import NAME, last_disconnect


async def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"{NAME} home", content_type="text/plain")


async def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "user": str(await request.auser())})


async def disconnect_record(request: HttpRequest) -> JsonResponse:
    return JsonResponse(await last_disconnect.wait())
