"""Storefront REST API, version 1."""

from django.shortcuts import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Product
from outfits.services import goes_well_with

from .serializers import GoesWellWithSerializer


class ProductMatchesView(APIView):
    """The products that go well with one product, grouped by complementary category."""

    def get(self, request: Request, sku: str) -> Response:
        product = get_object_or_404(
            Product.objects.select_related("category"), sku=sku, active=True
        )
        recommendations = goes_well_with(product)
        data = {
            "sku": product.sku,
            "model_version": recommendations.model_version,
            "groups": recommendations.groups,
        }
        return Response(GoesWellWithSerializer(data, context={"request": request}).data)
