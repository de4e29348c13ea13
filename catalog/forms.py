"""The forms staff fill in: the import upload (admin page and, field for field, the REST API),
a product in the admin."""

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from .catalog_rows import sku_problem
from .csv_import import CsvFormatError, parse_mapping
from .image_sources import ImageRejected, check_image, store_image
from .import_jobs import (
    check_images_folder,
    create_import_job,
    enqueue_import_job,
    importer_class,
)
from .models import ImportJob, Product


class ProductAdminForm(forms.ModelForm):
    """A product added or edited by hand: its SKU must pass what the importer checks, or
    the product's pages and API addresses could not carry it; a picture is stored as the
    importer stores it (by its content, with its thumbnail and hash), or lists would keep
    the old thumbnail and a retraining the old picture's cached vectors. (No Meta: the admin
    builds it for Product with the fields the admin shows.)"""

    def clean_sku(self) -> str:
        sku = self.cleaned_data["sku"]
        if problem := sku_problem(sku):
            raise forms.ValidationError(f"This SKU cannot be used: it {problem}.")
        return sku

    def clean_image(self) -> UploadedFile | bool | None:
        image = self.cleaned_data.get("image")
        if isinstance(image, UploadedFile):
            try:
                check_image(image.read())
            except ImageRejected as error:
                raise forms.ValidationError(str(error)) from None
            image.seek(0)
        return image

    def save(self, commit: bool = True) -> Product:
        product = super().save(commit=False)
        if "title" in self.changed_data:  # staff wrote it: it tells twins apart again
            product.title_made_up = False
        if "image" in self.changed_data:
            upload = self.cleaned_data.get("image")
            if upload:
                stored = store_image(upload.read())
                product.image, product.thumbnail = stored.name, stored.thumbnail_name
                product.image_sha256, product.image_source = stored.sha256, ""
            else:  # cleared
                product.thumbnail, product.image_sha256, product.image_source = "", "", ""
        if commit:
            product.save()
            self._save_m2m()
        return product


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
