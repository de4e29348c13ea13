"""The catalog: products, categories, images, catalog import and the shop's product pages."""
