"""Every API error in one JSON shape: {"error": {"code", "message", "details"?}}."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler


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
