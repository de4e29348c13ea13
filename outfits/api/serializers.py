"""JSON shapes of the storefront API."""

from rest_framework import serializers


class MatchSerializer(serializers.Serializer):
    sku = serializers.CharField(source="product.sku")
    title = serializers.CharField(source="product.title")
    category = serializers.CharField(source="product.category.name")
    colour = serializers.CharField(source="product.colour")
    price = serializers.DecimalField(
        source="product.price", max_digits=10, decimal_places=2, allow_null=True
    )
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    score = serializers.FloatField()

    def get_image_url(self, match) -> str | None:
        image = match.product.image
        return self.context["request"].build_absolute_uri(image.url) if image else None

    def get_thumbnail_url(self, match) -> str | None:
        url = match.product.card_image_url
        return self.context["request"].build_absolute_uri(url) if url else None

    def get_url(self, match) -> str:
        return self.context["request"].build_absolute_uri(match.product.get_absolute_url())


class CategoryMatchesSerializer(serializers.Serializer):
    category = serializers.CharField(source="category.name")
    matches = MatchSerializer(many=True)


class GoesWellWithSerializer(serializers.Serializer):
    sku = serializers.CharField()
    model_version = serializers.CharField(allow_null=True)
    groups = CategoryMatchesSerializer(many=True)
