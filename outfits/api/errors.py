"""Every API error in one JSON shape: {"error": {"code", "message", "details"?}}, from DRF's
views (api_exception_handler) and from Django itself for paths under /api/ (the handler404 /
handler500 / handler400 / handler403 views below: no route, a crash, a refused request)."""

import sys
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler

from outfits.database import is_database_error, unavailable_response


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable, e.g. `invalid_parameters`.")
    message = serializers.CharField(help_text="For people: what went wrong and what to do.")
    details = serializers.DictField(required=False, help_text="Per field, for invalid input.")


class ErrorResponseSerializer(serializers.Serializer):
    error = ErrorSerializer()


def flatten(detail: Any, prefix: str = "") -> list[str]:
    """`field: message` lines of a (nested) DRF error detail."""
    if isinstance(detail, dict):
        return [line for k, v in detail.items() for line in flatten(v, f"{prefix}{k}: ")]
    if isinstance(detail, list):
        return [line for item in detail for line in flatten(item, prefix)]
    return [f"{prefix}{detail}"]


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        error = {
            "code": "invalid_parameters",
            "message": "; ".join(flatten(exc.detail)),
            "details": exc.detail if isinstance(exc.detail, dict) else {"": exc.detail},
        }
    else:
        codes = exc.get_codes()
        error = {
            "code": codes if isinstance(codes, str) else exc.default_code,
            "message": str(exc.detail),
        }
    response.data = {"error": error}
    return response


def is_api_path(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def error_response(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: an unmatched path under /api/ in the error shape; the HTML page elsewhere."""
    if not is_api_path(request):
        return defaults.page_not_found(request, exception)
    return error_response(
        404,
        "not_found",
        f"No API endpoint at {request.path}: the endpoints are listed at /api/docs/.",
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a crash (already logged by Django) in the error shape, saying nothing of
    its cause; the HTML page outside /api/. A lost database outside a view (a middleware's
    query) is a 503, as in a view (outfits.database)."""
    if is_database_error(sys.exc_info()[1]):
        return unavailable_response(request)
    if not is_api_path(request):
        return defaults.server_error(request)
    return error_response(
        500, "server_error", "The server failed to answer; it has been logged. Try again later."
    )


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: a request Django refused (e.g. a Host header not in ALLOWED_HOSTS)."""
    if not is_api_path(request):
        return defaults.bad_request(request, exception)
    return error_response(400, "bad_request", "The request was refused as malformed or unsafe.")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler403, for a PermissionDenied raised outside a DRF view."""
    if not is_api_path(request):
        return defaults.permission_denied(request, exception)
    return error_response(
        403, "permission_denied", str(exception) or "You may not do this with these credentials."
    )
