"""Content-Security-Policy on every response (Django 5.2 has none of its own): scripts, styles,
images and requests from the site's own origin only, no inline script anywhere. The API docs
pages get a policy of their own (content_security_policy)."""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


# What every policy shares: no plugins, no <base> elsewhere, forms post only here, no framing.
_COMMON = [
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]

SITE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # data: for the admin's and the browsers' own small icons
        *_COMMON,
    ]
)

# Swagger UI and Redoc (drf-spectacular's sidecar files): their scripts are files of ours too,
# but they style the page from script and inline <style>, and Redoc runs its search in a worker
# made from a blob. Inline styles, never inline scripts.
API_DOCS_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        *_COMMON,
    ]
)


class ContentSecurityPolicyMiddleware:
    """Sets SITE_POLICY on responses that have no policy of their own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault(HEADER, SITE_POLICY)
        return response


def content_security_policy(policy: str) -> Callable:
    """A view decorator: this view's responses carry `policy` instead of the site's."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def with_policy(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            response = view(request, *args, **kwargs)
            response.headers[HEADER] = policy
            return response

        return with_policy

    return decorate
