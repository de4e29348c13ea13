"""The catalog: products, categories, images, catalog import and the shopper-facing product pages."""
