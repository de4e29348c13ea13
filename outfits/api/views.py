"""Storefront REST API, version 1: thin views over outfits.recommendations and outfits.events."""

import hashlib
from collections.abc import Sequence

from django.db.models import Q
from django.http import HttpResponse, QueryDict
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.image_sources import ImageRejected, decode_image
from catalog.models import Product
from catalog.shopper_photos import PhotoRefused, limit_photo_upload
from outfits import events, exports, metrics, rec_ids, recommendations
from outfits.match_filters import remembered_facts
from outfits.models import ApiKey
from outfits.serving import ProductCard, current_snapshot

from .authentication import ApiKeyAuthentication
from .errors import ErrorResponseSerializer
from .renderers import FastJSONRenderer
from .serializers import (
    BatchMatchesSerializer,
    BatchMatchRequestSerializer,
    CompletedOutfitSerializer,
    CompleteOutfitRequestSerializer,
    EventReceiptSerializer,
    EventRequestSerializer,
    GoesWellWithSerializer,
    ImageMatchesSerializer,
    ImageMatchOptionsSerializer,
    ImageMatchRequestSerializer,
    MatchPageQuerySerializer,
    MatchPageSerializer,
    MatchQuerySerializer,
    ProductQuerySerializer,
    ProductSerializer,
)
from .throttling import ApiKeyRateThrottle

ERRORS = {
    400: OpenApiResponse(ErrorResponseSerializer, description="Invalid parameters."),
    401: OpenApiResponse(ErrorResponseSerializer, description="No API key, or a revoked one."),
    403: OpenApiResponse(ErrorResponseSerializer, description="Origin not allowed for the key."),
    404: OpenApiResponse(ErrorResponseSerializer, description="No active product with that SKU."),
    429: OpenApiResponse(ErrorResponseSerializer, description="Over the key's rate limit."),
    503: OpenApiResponse(
        ErrorResponseSerializer,
        description="database_unavailable (with Retry-After): the database cannot be reached "
        "and this answer needs it (matches are served from memory meanwhile); for photos, "
        "also model_not_ready.",
    ),
}


class StorefrontView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [ApiKeyRateThrottle]


def unknown_skus(skus: Sequence[str]) -> exceptions.NotFound:
    return exceptions.NotFound(
        f"No active product with SKU {', '.join(map(repr, skus))}.", code="unknown_sku"
    )


def active_products(skus: Sequence[str]) -> list[ProductCard]:
    """The active products with these SKUs; an unknown or inactive one is a 404."""
    serving = current_snapshot()
    unknown = [sku for sku in skus if serving.product(sku) is None]
    if unknown:
        raise unknown_skus(unknown)
    return [serving.products[sku] for sku in skus]


def category_names(values: Sequence[str], field: str) -> list[str]:
    """Category names from names or slugs, in any case (blanks skipped); an unknown one is a
    400 that names it."""
    wanted = [v.strip() for v in values if v.strip()]
    known = current_snapshot().rules.category_by_name_or_slug
    unknown = [v for v in wanted if v.casefold() not in known]
    if unknown:
        raise exceptions.ValidationError({field: [f"unknown category: {', '.join(unknown)}"]})
    return [known[v.casefold()].name for v in wanted]


def fields_of(data: QueryDict | dict) -> dict:
    """A query string's or a form's fields as a plain dict, so a serializer reads them as it
    reads JSON: from a QueryDict DRF takes an absent boolean for false and an empty value
    for an absent one, which a schema-driven client would call wrong. (A request without a
    body has a plain empty dict.)"""
    return data.dict() if isinstance(data, QueryDict) else dict(data)


def form_and_query(request: Request) -> dict:
    """An upload's form fields with its query string's: the options (`limit`, `category`...)
    may come in either, as on the GET endpoints; the same one given two ways is an error."""
    form, query = fields_of(request.data), fields_of(request.query_params)
    if clashing := sorted(key for key in form.keys() & query.keys() if form[key] != query[key]):
        raise exceptions.ValidationError(
            {key: ["given differently in the query string and the form"] for key in clashing}
        )
    return query | form


def filters_from(data: dict, categories: list[str] | None) -> recommendations.MatchFilters:
    return recommendations.MatchFilters(
        categories=categories,
        in_stock_only=data["in_stock"],
        price_max=data.get("price_max"),
        exclude=data.get("exclude", frozenset()),
        attributes=data.get("attributes", {}),
        boosts=data.get("boost", ()),
    )


def shopper(request: Request, params: dict) -> str | None:
    """The shopper's id: `uid`, else the X-Shopper-Id header (at most 128 characters)."""
    return params.get("uid") or request.headers.get("X-Shopper-Id", "")[:128] or None


def last_change(product: Product | ProductCard) -> int:
    """The product's last change in microseconds: two saves in one second differ."""
    return int(product.updated_at.timestamp() * 1_000_000)


def with_etag(request: Request, data: dict, *parts: object) -> HttpResponse:
    """An ETag of the answer (without its rec_id), the model version and the product's last
    change; If-None-Match with it gets 304 and no body."""
    rest = {k: v for k, v in data.items() if k != "rec_id"}
    body = FastJSONRenderer().render(rest)
    digest = hashlib.sha256(body).hexdigest()[:16]
    etag = '"' + ".".join([*map(str, parts), digest]) + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    sent = request.headers.get("If-None-Match", "")
    if etag in [tag.strip() for tag in sent.split(",")] or sent.strip() == "*":
        return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
    if "rec_id" in data:  # spliced into the hashed body: JSON is rendered once, not twice
        rec_id = FastJSONRenderer().render({"rec_id": data["rec_id"]})
        body = rec_id[:-1] + (b"," + body[1:] if rest else b"}")
    return HttpResponse(body, content_type="application/json", headers=headers)


PRODUCT_EXAMPLE = {
    "sku": "TRS-0042",
    "title": "Wide-leg linen trousers",
    "category": "Trousers",
    "colour": "sand",
    "price": "59.90",
    "in_stock": True,
    "attributes": {"fabric": "linen"},
    "image_url": "https://shop.example.com/media/products/ab/ab12.jpg",
    "thumbnail_url": "https://shop.example.com/media/products/ab/ab12-thumb.jpg",
    "url": "https://shop.example.com/products/TRS-0042/",
    "updated_at": "2026-11-24T10:15:00Z",
}


class ProductPagination(PageNumberPagination):
    page_size = 24
    page_size_query_param = "page_size"
    max_page_size = 100


@extend_schema(
    summary="Active products, paginated",
    parameters=[ProductQuerySerializer],
    responses={
        200: ProductSerializer(many=True),
        **ERRORS,
        404: OpenApiResponse(ErrorResponseSerializer, description="No such page."),
    },
    examples=[OpenApiExample("A page", value=PRODUCT_EXAMPLE, response_only=True)],
)
class ProductListView(StorefrontView, generics.ListAPIView):
    """Active products, by SKU; `category` (name or slug), `q` (title or SKU), `in_stock`."""

    serializer_class = ProductSerializer
    pagination_class = ProductPagination

    def get_queryset(self):
        query = ProductQuerySerializer(data=fields_of(self.request.query_params))
        query.is_valid(raise_exception=True)
        params = query.validated_data
        products = Product.objects.filter(active=True).select_related("category")
        if names := category_names([params.get("category", "")], "category"):
            products = products.filter(category__name__in=names)
        if search := params.get("q", "").strip():
            products = products.filter(Q(title__icontains=search) | Q(sku__iexact=search))
        if "in_stock" in params:
            products = products.filter(in_stock=params["in_stock"])
        return products


class ProductDetailView(StorefrontView):
    @extend_schema(
        summary="One active product",
        responses={200: ProductSerializer, 304: None, **ERRORS},
        examples=[OpenApiExample("A product", value=PRODUCT_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, sku: str) -> Response:
        product = Product.objects.select_related("category").filter(sku=sku, active=True).first()
        if product is None:
            raise unknown_skus([sku])
        data = ProductSerializer(product, context={"request": request}).data
        return with_etag(request, data, last_change(product))


MATCHES_EXAMPLE = {
    "sku": "TOP-0001",
    "rec_id": "12.top2v4.kiEBSw.0CwSSXElvUWts1e8zGDAew",
    "model_version": "20261124-101500-ab12cd",
    "in_model": True,
    "matches_pending": False,
    "from_words": False,
    "category_fallback": None,
    "groups": [
        {
            "category": "Trousers",
            "matches": [
                {
                    "sku": "TRS-0042",
                    "title": "Wide-leg linen trousers",
                    "category": "Trousers",
                    "colour": "sand",
                    "price": "59.90",
                    "in_stock": True,
                    "image_url": "https://shop.example.com/media/products/ab/ab12.jpg",
                    "thumbnail_url": "https://shop.example.com/media/products/ab/ab12-thumb.jpg",
                    "url": "https://shop.example.com/products/TRS-0042/",
                    "score": 0.83,
                    "why": "curated",
                }
            ],
        }
    ],
}


class ProductMatchesView(StorefrontView):
    @extend_schema(
        summary="What goes well with a product",
        description="Matches grouped by complementary category, best category first; within a "
        "row best first and diverse. Never the product itself or its own category; pins and "
        "blocks applied. The ETag changes with the model version, the product and the answer.",
        parameters=[MatchQuerySerializer],
        responses={200: GoesWellWithSerializer, 304: None, **ERRORS},
        examples=[OpenApiExample("Matches", value=MATCHES_EXAMPLE, response_only=True)],
    )
    def get(self, request: Request, sku: str) -> Response:
        query = MatchQuerySerializer(data=fields_of(request.query_params))
        query.is_valid(raise_exception=True)
        params = query.validated_data
        (product,) = active_products([sku])
        # None: every complementary category (an empty filter would allow none).
        categories = category_names(params.get("category", "").split(","), "category") or None
        found = recommendations.goes_well_with(
            product, params.get("limit"), filters_from(params, categories), shopper(request, params)
        )
        data = GoesWellWithSerializer(
            {"sku": product.sku, **found.__dict__}, context={"request": request}
        ).data
        metrics.RECOMMENDATIONS.labels("matches", found.model_version or "none").inc()
        version_id = rec_ids.version_part(found.rec_id)
        return with_etag(request, data, version_id, last_change(product))


class ServerSideKeysOnly(BasePermission):
    """The whole-catalog endpoints answer a storefront's back-end, not its shoppers' browsers:
    a key that browsers may use (it has allowed origins, so it is in public pages) is
    refused, or anyone could crawl every product's matches with it."""

    message = (
        "This endpoint is for server-to-server calls: use an API key without allowed origins "
        "(create one in the admin for your back-end)."
    )
    code = "browser_key_refused"

    def has_permission(self, request: Request, view: APIView) -> bool:
        key = request.user
        return not (isinstance(key, ApiKey) and key.origins)


BULK_ERRORS = {
    **ERRORS,
    403: OpenApiResponse(
        ErrorResponseSerializer,
        description="origin_not_allowed, or browser_key_refused: a key with allowed origins.",
    ),
}


def matches_payload(request: Request, answers) -> list[dict]:
    """exports.ProductMatches as GoesWellWithSerializer writes them, counted per version."""
    serializer = GoesWellWithSerializer(context={"request": request})
    payload = []
    for answer in answers:
        found = answer.found
        metrics.RECOMMENDATIONS.labels("matches", found.model_version or "none").inc()
        payload.append(serializer.to_representation({"sku": answer.sku, **found.__dict__}))
    return payload


class BatchMatchesView(StorefrontView):
    parser_classes = [JSONParser]
    permission_classes = [IsAuthenticated, ServerSideKeysOnly]

    @extend_schema(
        summary="Matches of up to 100 products in one call",
        description="For storefront back-ends: each product's answer as GET "
        "/products/{sku}/matches/ gives it (its own rec_id), with the same filters applied to "
        "all. SKUs that are no active product are listed in `unknown_skus`, not refused.",
        request=BatchMatchRequestSerializer,
        responses={200: BatchMatchesSerializer, **BULK_ERRORS},
        examples=[
            OpenApiExample(
                "Two products, women's line, new arrivals first",
                value={
                    "skus": ["TOP-0001", "TRS-0042"],
                    "limit": 4,
                    "attributes": "line:woman",
                    "boost": "new_arrivals",
                    "exclude": "SHO-0007",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        given = BatchMatchRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        params = given.validated_data
        skus = list(dict.fromkeys(params["skus"]))
        serving = current_snapshot()
        unknown = [sku for sku in skus if serving.product(sku) is None]
        categories = category_names(params.get("category", "").split(","), "category") or None
        answers = exports.matches_of_products(
            skus, params.get("limit"), filters_from(params, categories)
        )
        with remembered_facts():  # the answers share candidates: their attributes read once
            results = matches_payload(request, answers)
        return Response({"results": results, "unknown_skus": unknown})


class MatchPagesView(StorefrontView):
    permission_classes = [IsAuthenticated, ServerSideKeysOnly]

    @extend_schema(
        summary="Every active product's matches, a page at a time",
        description="For feeds and back-ends that keep matches of the whole catalog: active "
        "products in SKU order, each with its answer as GET /products/{sku}/matches/ gives it. "
        "Follow `next` until it is null; a page is consistent on its own (products added "
        "meanwhile appear if their SKU comes later). `manage.py export_matches` and the "
        "admin's download give the same as one file.",
        parameters=[MatchPageQuerySerializer],
        responses={200: MatchPageSerializer, **BULK_ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = MatchPageQuerySerializer(data=fields_of(request.query_params))
        query.is_valid(raise_exception=True)
        params = query.validated_data
        categories = category_names(params.get("category", "").split(","), "category") or None
        page_size = params["page_size"]
        skus = exports.active_skus(params.get("after", ""), page_size + 1)
        page = skus[:page_size]
        answers = exports.matches_of_products(
            page, params.get("limit"), filters_from(params, categories)
        )
        with remembered_facts():
            results = matches_payload(request, answers)
        following = None
        if len(skus) > page_size:
            query_string = request.query_params.copy()
            query_string["after"] = page[-1]
            following = request.build_absolute_uri(f"?{query_string.urlencode()}")
        return Response({"results": results, "next": following})


class CompleteOutfitView(StorefrontView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Complete an outfit",
        description="The best product for each category, chosen together to go with the given "
        "products and with each other. `shuffle` gives the next best outfits. With one "
        "category this is the fill-in-the-blank question the model is evaluated on.",
        request=CompleteOutfitRequestSerializer,
        responses={200: CompletedOutfitSerializer, **ERRORS},
        examples=[
            OpenApiExample(
                "A top and trousers",
                value={"skus": ["TOP-0001", "TRS-0042"], "categories": ["shoes", "bags"]},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        given = CompleteOutfitRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        params = given.validated_data
        skus = list(dict.fromkeys(params["skus"]))
        products = active_products(skus)
        categories = category_names(params.get("categories", []), "categories") or None
        look = recommendations.complete_the_look(
            products,
            categories,
            params["shuffle"],
            filters_from(params, None),
            shopper(request, params),
        )
        metrics.RECOMMENDATIONS.labels("complete", look.model_version or "none").inc()
        data = {"skus": skus, **look.__dict__}
        return Response(CompletedOutfitSerializer(data, context={"request": request}).data)


class ImageMatchesView(StorefrontView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Match something the shopper owns",
        description="Upload a photo of one garment: catalog products that go well with it, by "
        "category. The photo is embedded by the active model and not stored. A request over "
        "OUTFITS_PHOTO_MAX_BYTES (10 MB by default) is refused before it is read (413), one of "
        "unknown length (chunked) too (411).",
        request={"multipart/form-data": ImageMatchRequestSerializer},
        parameters=[ImageMatchOptionsSerializer],  # the same options, in the query string
        responses={
            200: ImageMatchesSerializer,
            411: ErrorResponseSerializer,
            413: ErrorResponseSerializer,
            **ERRORS,
        },
        examples=[
            OpenApiExample(
                "Matches for a photo of trousers",
                value={
                    "rec_id": MATCHES_EXAMPLE["rec_id"],
                    "model_version": MATCHES_EXAMPLE["model_version"],
                    "category": "Trousers",
                    "category_guessed": True,
                    "groups": [
                        {
                            "category": "Shoes",
                            "matches": [
                                {
                                    **MATCHES_EXAMPLE["groups"][0]["matches"][0],
                                    "sku": "SHO-0007",
                                    "category": "Shoes",
                                    "why": "learned",
                                }
                            ],
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        try:
            limit_photo_upload(request._request)  # before anything reads the body
            given = ImageMatchRequestSerializer(data=form_and_query(request))
        except PhotoRefused as refused:
            raise PhotoUploadRefused(refused) from None
        given.is_valid(raise_exception=True)
        params = given.validated_data
        category = next(iter(category_names([params.get("category", "")], "category")), None)
        try:
            image = decode_image(params["image"].read())
        except ImageRejected as error:
            raise exceptions.ValidationError({"image": [str(error)]}) from None
        try:
            found = recommendations.matches_for_photo(
                image, category, params.get("limit"), filters_from(params, None)
            )
        except recommendations.ModelNotReady as error:
            unavailable = ServiceUnavailable(str(error))
            unavailable.wait = error.retry_after_seconds  # DRF's handler sends Retry-After
            raise unavailable from None
        metrics.RECOMMENDATIONS.labels("photo", found.model_version or "none").inc()
        return Response(ImageMatchesSerializer(found, context={"request": request}).data)


class PhotoUploadRefused(exceptions.APIException):
    def __init__(self, refused: PhotoRefused) -> None:
        super().__init__(str(refused), refused.code)
        self.status_code = refused.status


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "model_not_ready"


class EventListView(StorefrontView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Record what shoppers did with recommendations",
        description="Impressions, clicks and add-to-carts of products shown by the response "
        "with `rec_id`: they make the click-through rates per model version and category in "
        "the admin. The rec_id is signed and lists the products its response showed: a "
        "changed or made-up rec_id, one older than OUTFITS_REC_ID_MAX_AGE_DAYS, or a SKU that "
        "response did not show is a 400 and records nothing (all events of a call or none). "
        "With `event_id`, a retried call is recorded once: the retry gets 200 and "
        "`duplicate: true`.",
        request=EventRequestSerializer,
        responses={
            201: EventReceiptSerializer,
            200: OpenApiResponse(EventReceiptSerializer, description="A duplicate event_id."),
            **ERRORS,
        },
        examples=[
            OpenApiExample(
                "Two products seen",
                value={
                    "rec_id": MATCHES_EXAMPLE["rec_id"],
                    "type": "impression",
                    "skus": ["TRS-0042", "SHO-0007"],
                    "event_id": "5f0c6e1e-8a5d-4c1e-9a43-2b7d1f0e9c11",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Recorded", value={"recorded": 2, "duplicate": False}, response_only=True
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        given = EventRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        params = given.validated_data
        try:
            recorded = events.record_events(
                params["rec_id"],
                params["type"],
                params["skus"],
                request.user,
                params.get("event_id"),
            )
        except events.InvalidEvent as error:
            raise exceptions.ValidationError({"events": [str(error)]}) from None
        return Response(
            {"recorded": recorded.count, "duplicate": recorded.duplicate},
            status=status.HTTP_200_OK if recorded.duplicate else status.HTTP_201_CREATED,
        )
