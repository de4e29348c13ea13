"""A product in words, for the text half of its item vector and for contrastive captions."""

from collections.abc import Iterable, Mapping


def describe(title: str, colour: str, category: str, attributes: Mapping[str, object]) -> str:
    """Title, colour, category and the product's descriptive attribute values (fabric, line,
    product type …), lower-cased and without repeats. Values without a letter (codes,
    numbers) and long ones (paths, notes) say little to a text encoder and are left out."""
    parts: Iterable[object] = [title, colour, category, *attributes.values()]
    words = [
        str(part).strip().lower()
        for part in parts
        if isinstance(part, str) and any(c.isalpha() for c in part) and len(part) <= 60
    ]
    return ", ".join(dict.fromkeys(word for word in words if word))
