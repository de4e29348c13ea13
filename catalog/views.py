"""Shopper-facing product pages."""

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from outfits.services import goes_well_with

from .models import Category, Product

PRODUCTS_PER_PAGE = 24


def product_list(request: HttpRequest) -> HttpResponse:
    products = Product.objects.filter(active=True).select_related("category")
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
        "catalog/product_list.html",
        {
            "page": page,
            "categories": Category.objects.filter(products__active=True).distinct(),
            "current_category": category,
            "query": query,
        },
    )


def product_detail(request: HttpRequest, sku: str) -> HttpResponse:
    product = get_object_or_404(Product.objects.select_related("category"), sku=sku, active=True)
    return render(
        request,
        "catalog/product_detail.html",
        {
            "product": product,
            "recommendations": goes_well_with(product),
        },
    )
