"""CORS for the storefront API, per API key. A preflight carries no key, so it is answered for
any origin that some live key allows; the real request is then checked against its own key's
origins by the authentication, and its response names the origin back."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from outfits.models import ApiKey

API_PREFIX = "/api/v1/"
ALLOWED_HEADERS = "Authorization, X-Api-Key, Content-Type, If-None-Match"
PREFLIGHT_CACHE_SECONDS = "600"


def any_key_allows(origin: str) -> bool:
    keys = ApiKey.objects.filter(revoked_at__isnull=True, allowed_origins__contains=origin)
    return any(origin in key.origins for key in keys)


def allowed_origin(request: HttpRequest) -> str | None:
    origin = request.headers.get("Origin", "").rstrip("/")
    if not origin:
        return None
    key = getattr(request, "user", None)
    if isinstance(key, ApiKey):
        return origin if origin in key.origins else None
    return origin if any_key_allows(origin) else None


class ApiCorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX) or "Origin" not in request.headers:
            return self.get_response(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = HttpResponse(status=204)
            origin = allowed_origin(request)
            if origin:
                response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
                response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response["Access-Control-Max-Age"] = PREFLIGHT_CACHE_SECONDS
        else:
            response = self.get_response(request)
            origin = allowed_origin(request)
        if origin:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = "ETag, Retry-After"
        response["Vary"] = ", ".join(filter(None, [response.get("Vary"), "Origin"]))
        return response
