"""Change tracking for the web processes' in-memory serving snapshot (outfits.serving).

Every write to what shoppers may be shown (products, categories, merchandising rules, API keys,
the active model) bumps one counter row inside the writer's own transaction and logs which
products it touched. A web process reads the counter (one indexed row) per request: it sees a
new number exactly when the change is committed, and the log tells it how little to reload.

Writes through model instances are caught by signals, bulk writes by the QuerySets below; a raw
SQL write must call `note_change` itself."""

import secrets
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, connections, models, transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save

# More changed products than this in one change: log "reload everything" instead of the ids.
MAX_LOGGED_IDS = 20_000
# Log rows kept; a process further behind than this reloads everything.
KEPT_CHANGES = 5_000

Generation = tuple[int, str]  # (number, stamp)
NOTHING_SEEN: Generation = (0, "")

_this_thread = threading.local()


def changes_noted_in_this_thread() -> int:
    """How many changes this thread has noted: a reader that memoises the generation within
    a request sees its own request's writes."""
    return getattr(_this_thread, "noted", 0)


def note_change(product_ids: Iterable[int] | None = ()) -> None:
    """Record a change: `product_ids` the products it touched (empty: rules, keys or the model
    only; None: anything, reload everything)."""
    from .models import ServingChange, ServingGeneration

    ids = None if product_ids is None else sorted(set(product_ids))
    if ids is not None and len(ids) > MAX_LOGGED_IDS:
        ids = None
    stamp = secrets.token_hex(8)
    _this_thread.noted = changes_noted_in_this_thread() + 1
    with transaction.atomic():
        # The UPDATE locks the row until the writer commits: numbers follow commit order.
        bumped = ServingGeneration.objects.filter(pk=1).update(number=F("number") + 1, stamp=stamp)
        if not bumped:
            ServingGeneration.objects.get_or_create(pk=1)
            ServingGeneration.objects.filter(pk=1).update(number=F("number") + 1, stamp=stamp)
        number = ServingGeneration.objects.values_list("number", flat=True).get(pk=1)
        ServingChange.objects.create(number=number, stamp=stamp, product_ids=ids)
        if number % 500 == 0:
            ServingChange.objects.filter(number__lte=number - KEPT_CHANGES).delete()


def current_generation() -> Generation:
    """The latest committed change: one primary-key lookup, no ORM on the hot path."""
    from .models import ServingGeneration

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT number, stamp FROM {ServingGeneration._meta.db_table} WHERE id = 1")
        row = cursor.fetchone()
    return (int(row[0]), row[1]) if row else NOTHING_SEEN


def products_changed_between(seen: Generation, now: Generation) -> set[int] | None:
    """Ids of the products changed after `seen` up to `now`, or None when everything must be
    reloaded: a change said so, the log no longer reaches back, or `seen` is not in this
    history (a rolled-back or restored database)."""
    from .models import ServingChange

    if seen == NOTHING_SEEN or not seen[0] < now[0]:
        return None
    log = {
        number: (stamp, ids)
        for number, stamp, ids in ServingChange.objects.filter(
            number__gte=seen[0], number__lte=now[0]
        ).values_list("number", "stamp", "product_ids")
    }
    complete = len(log) == now[0] - seen[0] + 1
    if not complete or log[seen[0]][0] != seen[1] or log[now[0]][0] != now[1]:
        return None
    changed: set[int] = set()
    for number in range(seen[0] + 1, now[0] + 1):
        ids = log[number][1]
        if ids is None:
            return None
        changed.update(ids)
    return changed


class ServedQuerySet(models.QuerySet):
    """A QuerySet of a model shoppers' answers depend on: its bulk writes note the change, and
    track_changes notes its instances' saves and deletes. `changed_products` (the rows of
    this QuerySet) and `products_of` (given instances) say which products a write touched:
    this default, none; None, all of them."""

    # Fields no answer depends on (import bookkeeping): writing only these notes nothing.
    unserved_fields: frozenset[str] = frozenset()

    def changed_products(self) -> list[int] | None:
        return []

    def serves(self, fields: Iterable[str]) -> bool:
        return not set(fields) <= self.unserved_fields

    def update(self, **kwargs: Any) -> int:
        if not self.serves(kwargs):
            return super().update(**kwargs)
        touched = self.changed_products()
        count = super().update(**kwargs)
        if count:
            note_change(touched)
        return count

    def bulk_create(self, objs: Iterable[models.Model], *args: Any, **kwargs: Any) -> list:
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            note_change(self.products_of(created))
        return created

    def bulk_update(self, objs: Iterable[models.Model], fields: Sequence[str], **kwargs: Any):
        objs = list(objs)
        if connections[self.db].vendor == "postgresql" and not kwargs:
            count = update_from_arrays(self.model, objs, fields, self.db)
        else:
            count = super().bulk_update(objs, fields, **kwargs)
        if objs and self.serves(fields):
            note_change(self.products_of(objs))
        return count

    def products_of(self, objs: Sequence[models.Model]) -> list[int] | None:
        return []


UPDATE_BATCH_ROWS = 5_000


def update_from_arrays(
    model: type[models.Model], objs: Sequence[models.Model], field_names: Sequence[str], using: str
) -> int:
    """Django's bulk_update on PostgreSQL, as one `UPDATE … FROM unnest(arrays)` per batch: a
    column per field, a row per object, joined on the primary key. Django's own builds a
    CASE WHEN per field over every row of the batch, which PostgreSQL evaluates row by row:
    an import updating 20,000 products took minutes where creating them took seconds."""
    connection = connections[using]
    quote = connection.ops.quote_name
    primary_key = model._meta.pk
    fields = [model._meta.get_field(name) for name in field_names]
    columns = [primary_key, *fields]
    names = ", ".join(quote(field.column) for field in columns)
    arrays = ", ".join(f"%s::{field.cast_db_type(connection)}[]" for field in columns)
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields)
    sql = (
        f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} "
        f"FROM unnest({arrays}) AS v({names}) "
        f"WHERE t.{quote(primary_key.column)} = v.{quote(primary_key.column)}"
    )
    updated = 0
    with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
        for start in range(0, len(objs), UPDATE_BATCH_ROWS):
            batch = objs[start : start + UPDATE_BATCH_ROWS]
            values = [
                [field.get_db_prep_save(getattr(obj, field.attname), connection) for obj in batch]
                for field in columns
            ]
            cursor.execute(sql, values)
            updated += cursor.rowcount
    return updated


class ProductQuerySet(ServedQuerySet):
    unserved_fields = frozenset({"import_job", "import_line", "image_sha256", "image_source"})

    def changed_products(self) -> list[int] | None:
        return list(self.order_by().values_list("pk", flat=True))

    def products_of(self, objs: Sequence[models.Model]) -> list[int] | None:
        ids = [obj.pk for obj in objs]
        return None if None in ids else ids


class EverythingQuerySet(ServedQuerySet):
    """For categories: product answers carry their category, so reload everything."""

    def changed_products(self) -> list[int] | None:
        return None

    def products_of(self, objs: Sequence[models.Model]) -> list[int] | None:
        return None


def track_changes(model: type[models.Model]) -> None:
    """Note a change whenever an instance of `model` is saved or deleted; its ServedQuerySet
    says which products that touches and which fields serve nothing."""
    served = model._default_manager.get_queryset()
    assert isinstance(served, ServedQuerySet), f"{model.__name__}.objects is not served"

    def saved(instance: models.Model, update_fields: frozenset[str] | None = None, **_) -> None:
        if update_fields is None or served.serves(update_fields):
            note_change(served.products_of([instance]))

    def deleted(instance: models.Model, **_) -> None:
        note_change(served.products_of([instance]))

    uid = f"serving-changes-{model._meta.label}"
    post_save.connect(saved, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(deleted, sender=model, weak=False, dispatch_uid=uid)
