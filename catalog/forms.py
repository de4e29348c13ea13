"""The forms staff and shoppers fill in: the import upload (admin page and, field for field,
the REST API), a product in the admin, a shopper's photo."""

import base64
import binascii

from django import forms
from django.conf import settings
from django.db import transaction

from .catalog_rows import sku_problem
from .csv_import import CsvFormatError, parse_mapping
from .import_jobs import (
    check_images_folder,
    create_import_job,
    enqueue_import_job,
    importer_class,
)
from .models import Category, ImportJob
from .shopper_photos import keep_photo, megabytes, too_large


class ProductAdminForm(forms.ModelForm):
    """A product added or edited by hand: its SKU must pass what the importer checks, or
    the product's pages and API addresses could not carry it. (No Meta: the admin builds it
    for Product with the fields the admin shows.)"""

    def clean_sku(self) -> str:
        sku = self.cleaned_data["sku"]
        if problem := sku_problem(sku):
            raise forms.ValidationError(f"This SKU cannot be used: it {problem}.")
        return sku


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(choices=ImportJob.Kind.choices, initial=ImportJob.Kind.CATALOG)
    csv_file = forms.FileField(label="CSV file")
    images_zip = forms.FileField(
        label="Images (zip)",
        required=False,
        help_text="Relative image paths in the CSV are read from this archive.",
    )
    images_folder = forms.CharField(
        label="…or images folder on the server",
        required=False,
        help_text="Must lie under an allowed import root (OUTFITS_IMPORT_ROOTS).",
    )
    column_mapping = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Our field=your column, comma-separated, e.g. sku=cod_modelo_color, "
        "image=des_filename, category=des_product_family. Catalog fields: sku, title, "
        "category, group, colour, price, in_stock, image; outfits: outfit_id, sku, "
        "position. Other columns are kept as product attributes.",
    )
    dry_run = forms.BooleanField(
        required=False, initial=True, help_text="Show what would change; write nothing."
    )
    deactivate_missing = forms.BooleanField(
        label="Full catalog",
        required=False,
        help_text="Deactivate active products this file does not list (never deletes).",
    )
    create_categories = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Unchecked: rows of unknown categories are rejected.",
    )

    def clean_column_mapping(self) -> dict[str, str]:
        try:
            return parse_mapping(self.cleaned_data["column_mapping"])
        except CsvFormatError as error:
            raise forms.ValidationError(str(error)) from error

    def clean_images_folder(self) -> str:
        folder = self.cleaned_data["images_folder"].strip()
        try:
            check_images_folder(folder)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from error
        return folder

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("images_zip") and cleaned.get("images_folder"):
            raise forms.ValidationError("Give an images zip or a folder, not both.")
        kind, mapping = cleaned.get("kind"), cleaned.get("column_mapping")
        if kind and mapping:
            # Checked here, not only when the job is created: a refused upload stores nothing.
            known = importer_class(kind).known_fields
            unknown = sorted(set(mapping) - set(known))
            if unknown:
                self.add_error(
                    "column_mapping",
                    f"Names unknown field(s) {', '.join(unknown)}; the {kind} fields are "
                    f"{', '.join(known)}",
                )
        return cleaned

    def start_job(self, requested_by) -> ImportJob:
        """Record the upload as a job and enqueue it once committed (call after is_valid)."""
        data = self.cleaned_data
        with transaction.atomic():
            job = create_import_job(
                data["kind"],
                data["csv_file"],
                data["csv_file"].name,
                column_mapping=data["column_mapping"],
                images_archive=data["images_zip"],
                images_folder=data["images_folder"],
                dry_run=data["dry_run"],
                deactivate_missing=data["deactivate_missing"],
                create_categories=data["create_categories"],
                requested_by=requested_by,
            )
            enqueue_import_job(job)
        return job


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
