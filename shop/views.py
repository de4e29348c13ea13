"""Shopper-facing pages: product list, product detail with "Goes well with", "Complete the look"
and "Match something you own". They work without JavaScript."""

import re
import uuid

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from catalog.image_sources import ImageRejected, decode_image
from catalog.models import Category, Product
from catalog.shopper_photos import PhotoRefused, limit_photo_upload, photo_to_show
from outfits import database
from outfits.models import PairVerdict
from outfits.recommendations import (
    ModelNotReady,
    complete_the_look,
    goes_well_with,
    matches_for_photo,
)
from outfits.serving import ProductCard, current_snapshot
from outfits.verdicts import InvalidVerdict, record_verdict, verdicts_on

from .forms import PhotoMatchForm

PRODUCTS_PER_PAGE = 24


def product_list(request: HttpRequest) -> HttpResponse:
    # New arrivals first (the index on created_at serves it at any catalog size).
    products = (
        Product.objects.filter(active=True)
        .select_related("category")
        .order_by("-created_at", "-id")
    )
    category = None
    if slug := request.GET.get("category"):
        category = get_object_or_404(Category, slug=slug)
        products = products.filter(category=category)
    query = request.GET.get("q", "").strip()
    if query:
        products = products.filter(Q(title__icontains=query) | Q(sku__iexact=query))
    page = Paginator(products, PRODUCTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "shop/product_list.html",
        {
            "page": page,
            "categories": Category.objects.filter(products__active=True).distinct(),
            "current_category": category,
            "query": query,
        },
    )


def active_product(sku: str) -> Product | ProductCard:
    """The product, or while the database is unavailable its card in the serving snapshot
    (no attributes): its page and matches are still shown."""
    if not database.unavailable():
        try:
            return get_object_or_404(
                Product.objects.select_related("category"), sku=sku, active=True
            )
        except database.DATABASE_ERRORS as error:
            database.mark_unavailable(error)
    card = current_snapshot().product(sku)
    if card is None:
        raise Http404(f"No active product {sku!r}")
    return card


SHOPPER_COOKIE = "om_uid"
SHOPPER_ID = re.compile(r"^[0-9a-f]{32}$")


def shopper_id(request: HttpRequest) -> tuple[str | None, bool]:
    """The shopper's id from their cookie, so an A/B test shows them the same arm on every
    page; a new one (True) while a test runs and they have none. No test: no cookie needed."""
    uid = request.COOKIES.get(SHOPPER_COOKIE, "")
    if SHOPPER_ID.match(uid):
        return uid, False
    if current_snapshot().rules.experiment is None:
        return None, False
    return uuid.uuid4().hex, True


def remember_shopper(
    request: HttpRequest, response: HttpResponse, new_uid: str | None
) -> HttpResponse:
    if new_uid is not None:
        response.set_cookie(
            SHOPPER_COOKIE,
            new_uid,
            max_age=365 * 86_400,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )
    return response


def may_judge(request: HttpRequest) -> bool:
    """Staff who may tell good pairs from bad on the product pages."""
    return request.user.is_staff and request.user.has_perm("outfits.add_pairverdict")


def product_detail(request: HttpRequest, sku: str) -> HttpResponse:
    product = active_product(sku)
    if isinstance(product, ProductCard):
        image_url = product.image_url
    else:
        image_url = product.image.url if product.image else None
    uid, new_shopper = shopper_id(request)
    recommendations = goes_well_with(product, uid=uid)
    judging = may_judge(request) and not database.unavailable()
    shown = [m.product.sku for group in recommendations.groups for m in group.matches]
    given = verdicts_on(product.sku, shown) if judging else {}
    response = render(
        request,
        "shop/product_detail.html",
        {
            "product": product,
            "image_url": image_url,
            "recommendations": recommendations,
            "judging": judging,
            "good_pairs": {sku for sku, v in given.items() if v == PairVerdict.Verdict.GOOD},
            "bad_pairs": {sku for sku, v in given.items() if v == PairVerdict.Verdict.BAD},
        },
    )
    if judging:  # a stylist's page (verdict forms, a CSRF token): in no shared cache
        patch_cache_control(response, private=True, no_store=True)
    return remember_shopper(request, response, uid if new_shopper else None)


@require_POST
def pair_verdict(request: HttpRequest, sku: str) -> HttpResponse:
    """A stylist's verdict on a match shown on the product's page (staff only)."""
    if not may_judge(request):
        raise PermissionDenied("Judging pairs needs staff status and outfits.add_pairverdict.")
    try:
        verdict = record_verdict(
            sku,
            request.POST.get("match", ""),
            request.POST.get("verdict", ""),
            request.POST.get("note", ""),
            request.user,
            request.POST.get("rec_id", ""),
        )
    except InvalidVerdict as invalid:
        return HttpResponseBadRequest(f"{invalid}.", content_type="text/plain; charset=utf-8")
    anchor = f"#match-{verdict.match.pk}"
    return HttpResponseRedirect(reverse("shop:product-detail", args=[sku]) + anchor)


def complete_look(request: HttpRequest, sku: str) -> HttpResponse:
    product = active_product(sku)
    try:
        shuffle = max(0, int(request.GET.get("shuffle", "0")))
    except ValueError:
        shuffle = 0
    uid, new_shopper = shopper_id(request)
    look = complete_the_look([product], shuffle=shuffle, uid=uid)
    response = render(
        request,
        "shop/complete_look.html",
        {"product": product, "look": look, "next_shuffle": look.shuffle + 1},
    )
    return remember_shopper(request, response, uid if new_shopper else None)


@csrf_exempt  # the size limit goes in before anything (CSRF's check too) reads the body
def match_photo(request: HttpRequest) -> HttpResponse:
    """Upload a photo of a garment, see what in the catalog goes with it. The photo is kept
    only when the shopper ticks the box. One over OUTFITS_PHOTO_MAX_BYTES is refused unread."""
    try:
        if request.method == "POST":
            limit_photo_upload(request)
        return _match_photo(request)
    except PhotoRefused as refused:
        return render(
            request,
            "shop/match_photo.html",
            {"form": PhotoMatchForm(), "found": None, "error": f"{refused} Try a smaller photo."},
            status=refused.status,
        )


@csrf_protect
def _match_photo(request: HttpRequest) -> HttpResponse:
    posted = request.method == "POST"
    form = PhotoMatchForm(request.POST, request.FILES) if posted else PhotoMatchForm()
    found, error, status, shown, refine = None, None, 200, None, None
    if posted:
        if form.is_valid():
            data = form.photo_bytes()
            try:
                image = decode_image(data)
                found = matches_for_photo(image, form.cleaned_data["category"] or None)
                if form.cleaned_data["keep_photo"]:
                    form.keep(data)
                # The photo shown back, and sent again if the shopper corrects its category.
                shown = photo_to_show(image)
                refine = PhotoMatchForm(
                    initial={"shown_photo": shown, "category": found.category},
                    auto_id="refine-%s",  # its own ids beside the upload form's
                )
                form = PhotoMatchForm()  # the upload form, ready for another garment
            except ImageRejected as rejected:
                error, status = f"That file is {rejected}. Try a JPEG or PNG photo.", 400
            except ModelNotReady as not_ready:  # its message is for developers and staff
                error, status = not_ready.for_shoppers, 503
        else:
            status = 400
    response = render(
        request,
        "shop/match_photo.html",
        {"form": form, "found": found, "error": error, "shown_photo": shown, "refine": refine},
        status=status,
    )
    patch_cache_control(response, private=True, no_store=True)  # the shopper's photo is in it
    return response
