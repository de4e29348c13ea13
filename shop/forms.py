"""The shop's forms: a shopper's photo of a garment they own; staff's export of matches."""

import base64
import binascii

from django import forms
from django.conf import settings

from catalog.models import Category
from catalog.shopper_photos import keep_photo, megabytes, too_large
from outfits.match_filters import InvalidFilter, filters_from_text


class PhotoMatchForm(forms.Form):
    """A shopper's photo of a garment they own."""

    label_suffix = ""

    photo = forms.ImageField(
        required=False,  # when the page sends back the photo it showed (`shown_photo`)
        widget=forms.ClearableFileInput(attrs={"accept": "image/*"}),
    )
    # The photo the result page showed, sent back with a corrected category: no new upload.
    shown_photo = forms.CharField(required=False, widget=forms.HiddenInput)
    category = forms.ModelChoiceField(
        Category.objects.filter(products__active=True).distinct(),
        required=False,
        to_field_name="name",
        empty_label="Recognise it from the photo",
        label="What is it?",
    )
    keep_photo = forms.BooleanField(
        required=False,
        label="Keep my photo to help improve matches",
        help_text="Unticked, the photo is used for this answer only and never stored.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["photo"].help_text = (
            "A photo of one garment, on its own if you can (JPEG or PNG, up to "
            f"{megabytes(settings.OUTFITS_PHOTO_MAX_BYTES)})."
        )

    def clean_photo(self):
        photo = self.cleaned_data["photo"]
        if photo is None:
            return None  # the page sent back the photo it showed (or none: see clean)
        if photo.size > settings.OUTFITS_PHOTO_MAX_BYTES:  # limit_photo_upload stops it sooner
            raise forms.ValidationError(str(too_large(photo.size)))
        photo.seek(0)
        return photo

    def clean_shown_photo(self) -> bytes:
        text = self.cleaned_data["shown_photo"]
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            raise forms.ValidationError(
                "The photo could not be read back: upload it again."
            ) from None

    def clean(self) -> dict:
        cleaned = super().clean()
        if not cleaned.get("photo") and not cleaned.get("shown_photo") and not self.errors:
            self.add_error("photo", "Choose a photo of a garment.")
        return cleaned

    def photo_bytes(self) -> bytes:
        """The uploaded photo's bytes, or those of the photo the page sent back."""
        if photo := self.cleaned_data.get("photo"):
            return photo.read()
        return self.cleaned_data["shown_photo"]

    def clean_category(self) -> str:
        category = self.cleaned_data["category"]
        return category.name if category else ""

    def keep(self, data: bytes) -> str:
        """Store the photo (the shopper agreed): re-encoded without metadata, staff-only."""
        return keep_photo(data)


class ExportMatchesForm(forms.Form):
    """What staff export: every active product's matches, as CSV or JSON Lines, filtered as
    the storefront API filters them."""

    format = forms.ChoiceField(
        choices=[("csv", "CSV (a row per match)"), ("jsonl", "JSON Lines (a line per product)")]
    )
    limit = forms.IntegerField(
        min_value=1,
        max_value=50,
        required=False,
        label="Matches per category",
        help_text="Empty: as many as product pages show.",
    )
    categories = forms.ModelMultipleChoiceField(
        Category.objects.all(),
        required=False,
        to_field_name="name",
        help_text="Only matches of these categories; none chosen: every complementary one.",
    )
    attributes = forms.CharField(
        required=False,
        help_text="Only products with these values, e.g. gender:female,line:woman",
    )
    boost = forms.CharField(
        required=False,
        help_text="Lift new_arrivals, in_stock or attribute:value up each row.",
    )
    exclude = forms.CharField(
        required=False, help_text="SKUs never shown, comma-separated (discontinued, sold out)."
    )
    include_out_of_stock = forms.BooleanField(required=False)

    def clean(self) -> dict:
        data = super().clean()
        words = {
            "categories": [c.name for c in data.get("categories") or []],
            "in_stock_only": not data.get("include_out_of_stock"),
            "exclude": data.get("exclude") or "",
            "attributes": data.get("attributes") or "",
            "boost": data.get("boost") or "",
        }
        try:
            filters_from_text(**words)
        except InvalidFilter as invalid:
            raise forms.ValidationError(str(invalid)) from None
        data["filter_words"] = words  # what the export task is given
        return data


class AssortmentGapsForm(forms.Form):
    """Which gaps staff look at: below which score a best match is weak, in which category."""

    threshold = forms.FloatField(
        required=False,
        label="Weak below",
        help_text="A best match scoring less is weak; empty: the weakest tenth of today's "
        "best matches.",
    )
    category = forms.ModelChoiceField(
        Category.objects.all(), required=False, to_field_name="name", empty_label="Every category"
    )
