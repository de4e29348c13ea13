"""Storefront authentication: an API key per storefront, sent as `Authorization: Api-Key <key>`
(or `X-Api-Key: <key>`); a browser call must also come from one of the key's origins."""

from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from outfits.api_keys import find_api_key
from outfits.models import ApiKey

HEADER_SCHEME = "Api-Key"


def raw_key_of(request: HttpRequest) -> str | None:
    header = get_authorization_header(request).decode("latin-1")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == HEADER_SCHEME.lower() and key.strip():
        return key.strip()
    return request.headers.get("X-Api-Key") or None


class OriginNotAllowed(exceptions.PermissionDenied):
    default_code = "origin_not_allowed"


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKey, ApiKey] | None:
        raw_key = raw_key_of(request._request)
        if raw_key is None:
            return None  # the permission check answers 401 "not authenticated"
        key = find_api_key(raw_key)
        if key is None:
            raise exceptions.AuthenticationFailed(
                "This API key is unknown or has been revoked.", code="invalid_api_key"
            )
        origin = request.headers.get("Origin")
        if origin and origin.rstrip("/") not in key.origins:
            raise OriginNotAllowed(
                f"Origin {origin} is not allowed for API key {key.prefix}: add it to the key's "
                "allowed origins in the admin."
            )
        return key, key

    def authenticate_header(self, request: Request) -> str:
        return HEADER_SCHEME  # makes a missing key a 401 with WWW-Authenticate


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; keys are created in the admin (API keys).",
        }
