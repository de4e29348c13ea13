"""The catalog: products, categories, images, and the import of merchandisers' files (the
shop's pages are in shop/)."""
