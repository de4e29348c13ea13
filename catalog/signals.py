"""What the catalog tells other apps, without importing them: `catalog_changed` is sent when
products may have been added or changed in what a model sees of them (an import job applied
rows, a product was saved or deleted in the admin). The compatibility model refreshes its
active version on it (embeddings.version_refresh.request_refresh)."""

from django.dispatch import Signal

catalog_changed = Signal()
