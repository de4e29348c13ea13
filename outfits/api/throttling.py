"""Requests per minute per API key, counted in the shared cache (Redis in production), so every
web process and server counts against the same budget."""

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from outfits.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self) -> str:
        return f"{settings.OUTFITS_API_REQUESTS_PER_MINUTE}/min"

    def allow_request(self, request: Request, view: APIView) -> bool:
        key = request.user
        if isinstance(key, ApiKey) and key.requests_per_minute:
            self.num_requests, self.duration = key.requests_per_minute, 60
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        key = request.user
        return f"throttle_api_key_{key.pk}" if isinstance(key, ApiKey) else None
