"""JSON shapes of the storefront API: what it answers and what it accepts."""

from django.conf import settings
from rest_framework import serializers

from catalog.models import Product
from outfits.match_filters import (
    Boost,
    InvalidFilter,
    parse_attribute_filters,
    parse_boosts,
    parse_skus,
)
from outfits.models import RecommendationEvent
from outfits.rec_ids import MAX_LENGTH as REC_ID_MAX_LENGTH
from outfits.recommendations import CURATED, LEARNED, PINNED


class AbsoluteUrls:
    """Absolute URLs of a product's page and pictures, for storefronts on other hosts."""

    def absolute(self, url: str | None) -> str | None:
        if not url:
            return None
        if not url.startswith("/"):
            return url  # already absolute (media on a CDN)
        # The site's address, worked out once per response rather than once per URL.
        base = self.context.get("base_url")
        if base is None:
            base = self.context["base_url"] = self.context["request"].build_absolute_uri("/")[:-1]
        return base + url


class ProductSerializer(AbsoluteUrls, serializers.ModelSerializer):
    category = serializers.CharField(source="category.name")
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = [
            "sku",
            "title",
            "category",
            "colour",
            "price",
            "in_stock",
            "attributes",
            "image_url",
            "thumbnail_url",
            "url",
            "updated_at",
        ]

    def get_image_url(self, product: Product) -> str | None:
        return self.absolute(product.image.url if product.image else None)

    def get_thumbnail_url(self, product: Product) -> str | None:
        return self.absolute(product.card_image_url)

    def get_url(self, product: Product) -> str:
        return self.absolute(product.get_absolute_url())


class MatchSerializer(AbsoluteUrls, serializers.Serializer):
    sku = serializers.CharField(source="product.sku")
    title = serializers.CharField(source="product.title")
    category = serializers.CharField(source="product.category.name")
    colour = serializers.CharField(source="product.colour")
    price = serializers.DecimalField(
        source="product.price", max_digits=10, decimal_places=2, allow_null=True
    )
    in_stock = serializers.BooleanField(source="product.in_stock")
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    score = serializers.FloatField(
        allow_null=True, help_text="Compatibility; null for a pinned product the model lacks."
    )
    why = serializers.ChoiceField(
        [LEARNED, CURATED, PINNED],
        help_text="learned: the model; curated: stylists put them in an outfit together; "
        "pinned: a merchandiser placed it.",
    )

    def get_image_url(self, match) -> str | None:
        return self.absolute(match.product.image_url)

    def get_thumbnail_url(self, match) -> str | None:
        return self.absolute(match.product.card_image_url)

    def get_url(self, match) -> str:
        return self.absolute(match.product.get_absolute_url())

    def to_representation(self, match) -> dict:
        """The declared fields, written out: the hot path of every matches answer, several
        times faster than DRF's field-by-field walk (a test holds the two equal)."""
        product = match.product
        return {
            "sku": product.sku,
            "title": product.title,
            "category": product.category.name,
            "colour": product.colour,
            "price": None if product.price is None else f"{product.price:.2f}",
            "in_stock": product.in_stock,
            "image_url": self.get_image_url(match),
            "thumbnail_url": self.get_thumbnail_url(match),
            "url": self.get_url(match),
            "score": match.score,
            "why": match.why,
        }


class CategoryMatchesSerializer(serializers.Serializer):
    category = serializers.CharField(source="category.name")
    matches = MatchSerializer(
        many=True,
        help_text="In the order to show them: each the best remaining by its score and by how "
        "unlike it is to those before it (OUTFITS_MATCH_DIVERSITY), so a lower score may come "
        "first; pins at their positions.",
    )


class GoesWellWithSerializer(serializers.Serializer):
    sku = serializers.CharField()
    rec_id = serializers.CharField(help_text="Send it back with events (POST /events/).")
    model_version = serializers.CharField(allow_null=True)
    in_model = serializers.BooleanField(
        help_text="false: the product arrived after the active version was built or last "
        "refreshed with new products."
    )
    matches_pending = serializers.BooleanField(
        help_text="true: not in the model yet, and the refresh that adds it (within a minute "
        "of its import) is on its way."
    )
    from_words = serializers.BooleanField(
        help_text="true: the product has no picture; its matches come from its words (title, "
        "colour, category, attributes)."
    )
    category_fallback = serializers.CharField(
        allow_null=True,
        help_text="The product's category is new to the model: it is matched as this known "
        "category (the one its pictures look like) until a training learns it; else null.",
    )
    experiment = serializers.SerializerMethodField(
        help_text="The A/B test whose arm answered (for a `uid` while one runs), else null."
    )
    arm = serializers.SerializerMethodField(help_text='"A", "B" or null.')
    groups = CategoryMatchesSerializer(many=True)

    def get_experiment(self, found: dict) -> int | None:
        return found["arm"][0] if found.get("arm") else None

    def get_arm(self, found: dict) -> str | None:
        return found["arm"][1] if found.get("arm") else None

    def to_representation(self, found: dict) -> dict:
        """Written out, as MatchSerializer's (a test holds it equal to DRF's walk)."""
        match = MatchSerializer(context=self.context)
        arm = found.get("arm")
        return {
            "sku": found["sku"],
            "rec_id": found["rec_id"],
            "model_version": found["model_version"],
            "in_model": found["in_model"],
            "matches_pending": found["matches_pending"],
            "from_words": found["from_words"],
            "category_fallback": found["category_fallback"],
            "experiment": arm[0] if arm else None,
            "arm": arm[1] if arm else None,
            "groups": [
                {
                    "category": group.category.name,
                    "matches": [match.to_representation(m) for m in group.matches],
                }
                for group in found["groups"]
            ],
        }


MAX_EXCLUDED = 500


class TrueOrFalse(serializers.BooleanField):
    """A flag spelled true or false (any case), as JSON and the schema spell it: 0, 1, yes or
    on in a query or form are refused rather than guessed."""

    TRUE_VALUES = {True, "true", "True", "TRUE"}
    FALSE_VALUES = {False, "false", "False", "FALSE"}
    default_error_messages = {"invalid": 'Must be "true" or "false".'}


def price_ceiling() -> serializers.DecimalField:
    """`price_max`: a number in the schema (a string pattern would admit ""), read from a
    JSON number or a string alike."""
    return serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, required=False, coerce_to_string=False
    )


class StringField(serializers.CharField):
    """A JSON string only: DRF's CharField takes 0 for "0", which the schema forbids."""

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def sku_list(max_length: int, help_text: str) -> serializers.ListField:
    # SKUs are exact: " A1" is not "A1" (the importer refuses SKUs with spaces at the ends).
    return serializers.ListField(
        child=StringField(max_length=64, trim_whitespace=False),
        min_length=1,
        max_length=max_length,
        help_text=help_text,
    )


class ProductQuerySerializer(serializers.Serializer):
    """GET /products/'s query; read from a plain dict, so an absent `in_stock` is absent."""

    category = serializers.CharField(
        required=False, allow_blank=True, help_text="Only this category: name or slug."
    )
    q = serializers.CharField(
        required=False, allow_blank=True, help_text="Title containing it, or this exact SKU."
    )
    in_stock = TrueOrFalse(
        required=False, help_text="true: only in stock; false: only out of stock; default: both."
    )
    page = serializers.IntegerField(min_value=1, required=False, help_text="From 1.")
    page_size = serializers.IntegerField(
        min_value=1, max_value=100, required=False, help_text="Products per page; default 24."
    )


class MatchFilterFields(serializers.Serializer):
    """The filters every matching endpoint takes (recommendations.MatchFilters; a new one is
    a field here and in api.views.filters_from)."""

    in_stock = TrueOrFalse(default=True, help_text="false: include products that are out of stock.")
    price_max = price_ceiling()
    exclude = StringField(
        required=False,
        allow_blank=True,
        max_length=20_000,
        trim_whitespace=False,
        help_text="SKUs never to show, comma-separated (what the shopper owns or bought; at "
        f"most {MAX_EXCLUDED}).",
    )
    attributes = StringField(
        required=False,
        allow_blank=True,
        max_length=2_000,
        help_text="Only products with these attribute values, as attribute:value, "
        "comma-separated, any case: `gender:female,gender:unisex,line:woman` keeps female or "
        "unisex products of the woman line. The catalog's attribute columns and `colour`; a "
        "product without the attribute is left out.",
    )
    boost = StringField(
        required=False,
        allow_blank=True,
        max_length=2_000,
        help_text="Lift products up their row: `new_arrivals` (created in the last "
        "OUTFITS_NEW_ARRIVAL_DAYS), `in_stock`, `attribute:value`; comma-separated. Each adds "
        "OUTFITS_MATCH_BOOST (0.1) to a product's score, which the answer reports.",
    )

    def validate_exclude(self, value: str) -> frozenset[str]:
        skus = parse_skus(value)
        if len(skus) > MAX_EXCLUDED:
            raise serializers.ValidationError(f"at most {MAX_EXCLUDED} SKUs, not {len(skus)}")
        return skus

    def validate_attributes(self, value: str) -> dict[str, frozenset[str]]:
        try:
            return parse_attribute_filters(value)
        except InvalidFilter as invalid:
            raise serializers.ValidationError(str(invalid)) from None

    def validate_boost(self, value: str) -> tuple[Boost, ...]:
        try:
            return parse_boosts(value)
        except InvalidFilter as invalid:
            raise serializers.ValidationError(str(invalid)) from None


def shopper_id() -> "StringField":
    return StringField(
        required=False,
        max_length=128,
        help_text="The shopper (or session) the answer is for, stable across their visits: "
        "while an A/B test runs, it decides which version answers them. Or the X-Shopper-Id "
        "header. Without it: the active version.",
    )


class MatchQuerySerializer(MatchFilterFields):
    limit = serializers.IntegerField(min_value=1, max_value=50, required=False)
    uid = shopper_id()
    category = StringField(
        required=False,
        allow_blank=True,
        help_text="Only these categories: names or slugs, comma-separated; empty: all.",
    )


def json_type(field: serializers.Field) -> str | None:
    """The JSON type the schema gives `field` (None: any, or not checked here)."""
    if isinstance(field, serializers.BooleanField):
        return "boolean"
    if isinstance(field, serializers.IntegerField):
        return "integer"
    if isinstance(field, serializers.DecimalField | serializers.FloatField):
        return "number"
    if isinstance(field, serializers.CharField):
        return "string"
    return None


def has_json_type(value: object, kind: str | None) -> bool:
    if kind is None:
        return True
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, {"integer": int, "number": int | float, "string": str}.get(kind, ()))


class JsonTypes:
    """A JSON body whose values must have the JSON types of the schema: the fields that also
    read query strings would take "true" for true and "4" for 4."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            wrong = {
                name: [f"must be a JSON {json_type(field)}"]
                for name, field in self.fields.items()
                if name in data and not has_json_type(data[name], json_type(field))
            }
            if wrong:
                raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)


class BatchMatchRequestSerializer(JsonTypes, MatchQuerySerializer):
    skus = sku_list(100, "The products whose matches to answer (at most 100).")


class BatchMatchesSerializer(serializers.Serializer):
    results = GoesWellWithSerializer(
        many=True, help_text="One answer per active product asked for, in the order asked."
    )
    unknown_skus = serializers.ListField(
        child=serializers.CharField(), help_text="SKUs asked for that are no active product."
    )


class MatchPageQuerySerializer(MatchQuerySerializer):
    after = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=64,
        help_text="The SKU the previous page ended with (its `next` link carries it).",
    )
    page_size = serializers.IntegerField(min_value=1, max_value=200, default=50)


class MatchPageSerializer(serializers.Serializer):
    results = GoesWellWithSerializer(many=True, help_text="Active products, by SKU.")
    next = serializers.URLField(allow_null=True, help_text="The next page; null after the last.")


class CompleteOutfitRequestSerializer(MatchFilterFields):
    skus = sku_list(20, "The partial outfit.")
    uid = shopper_id()
    categories = serializers.ListField(
        child=serializers.CharField(max_length=120),
        required=False,
        max_length=20,
        help_text="Categories to fill (names or slugs); default: every complementary one.",
    )
    shuffle = serializers.IntegerField(
        min_value=0, default=0, help_text="0: the best outfit, 1: the next best..."
    )


class CompletedOutfitSerializer(serializers.Serializer):
    skus = serializers.ListField(child=serializers.CharField())
    rec_id = serializers.CharField()
    model_version = serializers.CharField(allow_null=True)
    experiment = serializers.SerializerMethodField(help_text="The A/B test's id, or null.")
    arm = serializers.SerializerMethodField(help_text='"A", "B" or null.')
    in_model = serializers.BooleanField()
    shuffle = serializers.IntegerField()
    score = serializers.FloatField(allow_null=True, help_text="Mean compatibility of its pairs.")
    items = MatchSerializer(many=True, help_text="One product per category.")

    def get_experiment(self, look: dict) -> int | None:
        return look["arm"][0] if look.get("arm") else None

    def get_arm(self, look: dict) -> str | None:
        return look["arm"][1] if look.get("arm") else None


class ImageMatchOptionsSerializer(MatchFilterFields):
    """What a photo's matches may be asked with: as form fields or in the query string."""

    category = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="What the garment is (name or slug); empty or absent: recognised from the photo.",
    )
    limit = serializers.IntegerField(min_value=1, max_value=50, required=False)


class ImageMatchRequestSerializer(ImageMatchOptionsSerializer):
    image = serializers.ImageField(help_text="A photo of one garment (JPEG, PNG or WebP).")


class ImageMatchesSerializer(serializers.Serializer):
    rec_id = serializers.CharField()
    model_version = serializers.CharField(allow_null=True)
    category = serializers.CharField(help_text="The garment's category.")
    category_guessed = serializers.BooleanField(help_text="true: recognised from the photo.")
    groups = CategoryMatchesSerializer(many=True)


class EventRequestSerializer(serializers.Serializer):
    rec_id = serializers.CharField(
        max_length=REC_ID_MAX_LENGTH,
        help_text="From the response that showed the products, unchanged (signed: it lists "
        f"them). Accepted for {settings.OUTFITS_REC_ID_MAX_AGE_DAYS:g} days.",
    )
    type = serializers.ChoiceField(RecommendationEvent.Kind.values)
    skus = sku_list(
        200,
        "The products seen, clicked or added to the cart: only products that response showed.",
    )
    event_id = serializers.CharField(
        max_length=64,
        required=False,
        help_text="Your id of this call, e.g. a UUID: a retry with the same event_id (and API "
        "key) is recorded once.",
    )


class EventReceiptSerializer(serializers.Serializer):
    recorded = serializers.IntegerField(help_text="Events recorded by this call.")
    duplicate = serializers.BooleanField(
        help_text="true: a call with this event_id was recorded before; nothing was now."
    )
