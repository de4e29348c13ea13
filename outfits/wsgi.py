"""WSGI entry point (gunicorn outfits.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outfits.settings")
application = get_wsgi_application()
