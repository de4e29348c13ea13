"""Stylist-curated outfits: the training labels of the compatibility model."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from catalog.changes import ServedQuerySet
from catalog.models import Category, Product

from .rec_ids import MAX_LENGTH as REC_ID_MAX_LENGTH


class Outfit(models.Model):
    external_id = models.CharField("outfit id", max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    products = models.ManyToManyField(Product, through="OutfitItem", related_name="outfits")

    class Meta:
        ordering = ["external_id"]

    def __str__(self) -> str:
        return f"Outfit {self.external_id}"


class OutfitItem(models.Model):
    outfit = models.ForeignKey(Outfit, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="outfit_items")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["outfit", "position"]
        constraints = [
            models.UniqueConstraint(fields=["outfit", "product"], name="unique_product_per_outfit")
        ]

    def __str__(self) -> str:
        return f"{self.outfit.external_id}: {self.product.sku}"


class PinnedMatch(models.Model):
    """A merchandiser's pick: `match` shown with `product` at `position` of its category's row,
    whatever the model thinks."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="pinned_matches")
    match = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="pinned_to")
    position = models.PositiveSmallIntegerField(
        default=1, help_text="1 = first in its category's row."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ServedQuerySet.as_manager()

    class Meta:
        ordering = ["product", "position"]
        verbose_name_plural = "pinned matches"
        constraints = [
            models.UniqueConstraint(fields=["product", "match"], name="unique_pinned_match"),
            models.CheckConstraint(
                condition=~models.Q(product=models.F("match")), name="pinned_match_not_itself"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.match.sku} pinned to {self.product.sku} at {self.position}"

    def clean(self) -> None:
        # Matches never come from the product's own category; a pin there would never show.
        if self.product_id and self.match_id and self.product.category_id == self.match.category_id:
            raise ValidationError(
                {
                    "match": f"{self.match.sku} is a {self.match.category}, like "
                    f"{self.product.sku}: matches come from other categories."
                }
            )


class BlockedPair(models.Model):
    """Two products never shown together, in either direction."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    other = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ServedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "other"], name="unique_blocked_pair"),
            models.CheckConstraint(
                condition=~models.Q(product=models.F("other")), name="blocked_pair_not_itself"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} ✕ {self.other.sku}"


class BlockedProduct(models.Model):
    """A product never shown as a match (its own page still shows its matches)."""

    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ServedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.product.sku} blocked from matches"


class ApiKey(models.Model):
    """A storefront's key to the REST API. Only a hash of the secret is stored: the key is
    shown once, when created."""

    name = models.CharField(max_length=120, help_text="Which storefront uses it.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_sha256 = models.CharField(max_length=64, editable=False)
    allowed_origins = models.TextField(
        blank=True,
        help_text="Browser origins allowed to call the API with this key (CORS), one per "
        "line, e.g. https://shop.example.com. Empty: server-to-server only.",
    )
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: OUTFITS_API_REQUESTS_PER_MINUTE."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ServedQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_authenticated(self) -> bool:  # DRF's IsAuthenticated reads this on request.user
        return self.revoked_at is None

    @property
    def origins(self) -> list[str]:
        return [line.strip().rstrip("/") for line in self.allowed_origins.split() if line.strip()]


class RecommendationEvent(models.Model):
    """What a shopper did with a recommendation: seen, clicked, added to the cart. `rec_id`
    ties it to the response (and so to the model version) that showed the product."""

    class Kind(models.TextChoices):
        IMPRESSION = "impression"
        CLICK = "click"
        ADD_TO_CART = "add_to_cart", "Add to cart"

    # Signed, listing the answer's products (outfits.rec_ids): too long for a B-tree entry
    # at its longest, and nothing looks events up by it but the admin's substring search.
    rec_id = models.CharField(max_length=REC_ID_MAX_LENGTH)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    model_version = models.ForeignKey(
        "embeddings.ModelVersion", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    # The product's category when the event happened: CTR per category stays put if it moves.
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+")
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")
    # The A/B test whose arm served the answer (from its rec_id); null outside a test.
    experiment = models.ForeignKey(
        "Experiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    arm = models.CharField(max_length=1, blank=True)  # "A" or "B" within an experiment
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.product_id} ({self.rec_id})"


class EventReceipt(models.Model):
    """A POST /events/ that carried a client `event_id`: the same (API key, event_id) is
    recorded once, so a storefront may retry a call whose answer it did not get."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=64)
    recorded = models.PositiveIntegerField(help_text="Events the first call recorded.")
    # Indexed: receipts older than a rec_id's lifetime are deleted (events.forget_old_receipts).
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "event_id"], name="one_receipt_per_event_id")
        ]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.recorded} events)"


class PairVerdict(models.Model):
    """A stylist's verdict on a match the shop showed: a good pair or a bad one, with the model
    version that showed it. The next training learns from them; a bad pair the active
    version still ranks high is a disagreement to review."""

    class Verdict(models.TextChoices):
        GOOD = "good", "Good pair"
        BAD = "bad", "Bad pair"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    match = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    verdict = models.CharField(max_length=4, choices=Verdict.choices)
    note = models.TextField(blank=True, max_length=2000)
    model_version = models.ForeignKey(
        "embeddings.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The version whose answer showed the pair.",
    )
    given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            # One verdict per pair and direction: a stylist's second thought replaces the first.
            models.UniqueConstraint(fields=["product", "match"], name="one_verdict_per_pair"),
            models.CheckConstraint(
                condition=~models.Q(product=models.F("match")), name="verdict_not_on_itself"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} + {self.match.sku}: {self.get_verdict_display()}"


class Experiment(models.Model):
    """An A/B test of two model versions on shoppers' traffic: each shopper (a storefront's
    `uid`, a page's cookie) is served A or B, always the same one, B with `share_b`; every
    answer and event carries its arm. One runs at a time."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"
        PROMOTED = "promoted", "B promoted"

    name = models.CharField(max_length=120)
    # SET_NULL: a finished test's old versions may be collected; its events keep its results.
    version_a = models.ForeignKey(
        "embeddings.ModelVersion",
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The control: usually the active version.",
    )
    version_b = models.ForeignKey(
        "embeddings.ModelVersion",
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The candidate.",
    )
    share_b = models.FloatField(
        default=0.5, help_text="The share of shoppers served B, between 0.01 and 0.99."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ServedQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="running"),
                name="one_running_experiment",
            ),
            models.CheckConstraint(
                condition=~models.Q(version_a=models.F("version_b")),
                name="experiment_of_two_versions",
            ),
            models.CheckConstraint(
                condition=models.Q(share_b__gte=0.01, share_b__lte=0.99),
                name="experiment_share_within_bounds",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def versions_in_use(cls) -> set[int]:
        """The versions a running test serves: garbage collection keeps them
        (embeddings.versions.VERSIONS_IN_USE, registered by outfits.apps)."""
        running = cls.objects.filter(status=cls.Status.RUNNING)
        pairs = running.values_list("version_a_id", "version_b_id")
        return {pk for pair in pairs for pk in pair if pk is not None}
