"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outfits.settings")
application = get_asgi_application()

from outfits.database import serve_web_requests  # noqa: E402

serve_web_requests()  # a web process: the web statement timeout
