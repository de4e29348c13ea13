"""The shop's pages: the product list, a product with "Goes well with", complete the look,
match a photo, and staff's view of kept photos. Thin views over outfits.recommendations (what
goes with what) and catalog (the products)."""
