"""WSGI entry point (gunicorn outfits.wsgi; runserver too)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outfits.settings")
application = get_wsgi_application()

# A web process: its queries get the web statement timeout (commands and workers get none).
from outfits.database import serve_web_requests  # noqa: E402

serve_web_requests()
