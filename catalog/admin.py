"""Admin for products and categories, and the catalog/outfits upload pages."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .forms import ImportUploadForm, ProductAdminForm
from .import_jobs import (
    enqueue_import_job,
    interrupt_stale_import_jobs,
    may_see_import_jobs,
    may_start_imports,
    rejections_csv,
    rerun_for_real,
    resume_import_job,
)
from .models import Category, ImportJob, Product
from .signals import catalog_changed

REJECTIONS_SHOWN = 100
MAY_NOT_IMPORT = "Importing needs the permission catalog.add_importjob (Can add import job)."
MAY_NOT_SEE_IMPORTS = (
    "Import jobs can be seen with the permission catalog.view_importjob (Can view import job)."
)


def require(allowed: bool, message: str) -> None:
    """Custom admin views are reached by any staff user: each checks its model permission."""
    if not allowed:
        raise PermissionDenied(message)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "group", "slug"]
    list_filter = ["group"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductAdminForm
    list_display = ["picture", "sku", "title", "category", "colour", "price", "in_stock", "active"]
    list_display_links = ["picture", "sku"]
    list_filter = ["active", "in_stock", "category__group", "category"]
    list_editable = ["in_stock", "active"]
    search_fields = ["sku", "title", "style"]
    readonly_fields = ["image_sha256", "image_source", "created_at", "updated_at"]
    list_select_related = ["category"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        catalog_changed.send(sender=Product, product=obj)

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        catalog_changed.send(sender=Product, product=obj)

    list_per_page = 50

    @admin.display(description="")
    def picture(self, product: Product) -> str:
        image = product.thumbnail or product.image
        if not image:
            return ""
        return format_html(
            '<img src="{}" alt="" width="48" height="48" class="admin-thumbnail">', image.url
        )


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    change_list_template = "admin/catalog/importjob/change_list.html"
    list_display = [
        "pk",
        "kind",
        "original_name",
        "dry_run",
        "status",
        "progress",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "requested_by",
        "created_at",
    ]
    list_filter = ["kind", "status", "dry_run"]
    search_fields = ["original_name"]

    @admin.display(description="progress")
    def progress(self, job: ImportJob) -> str:
        return f"{job.progress_percent}%"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        interrupt_stale_import_jobs()  # a dead job shows as interrupted, not running for ever
        context = {"may_import": may_start_imports(request.user), **(extra_context or {})}
        return super().changelist_view(request, context)

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("upload/", view(self.upload_view), name="catalog_importjob_upload"),
            path("<int:job_id>/report/", view(self.job_view), name="catalog_importjob_report"),
            path(
                "<int:job_id>/rejections.csv",
                view(self.rejections_view),
                name="catalog_importjob_rejections",
            ),
            path("<int:job_id>/apply/", view(self.apply_view), name="catalog_importjob_apply"),
            path("<int:job_id>/resume/", view(self.resume_view), name="catalog_importjob_resume"),
            path(
                "<int:job_id>/files/<str:which>/",
                view(self.file_view),
                name="catalog_importjob_file",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:catalog_importjob_report", args=[object_id]))

    def upload_view(self, request: HttpRequest):
        require(may_start_imports(request.user), MAY_NOT_IMPORT)
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            job = form.start_job(request.user)
            return HttpResponseRedirect(reverse("admin:catalog_importjob_report", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Upload a catalog or outfits CSV",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/catalog/importjob/upload.html", context)

    def job_view(self, request: HttpRequest, job_id: int):
        require(may_see_import_jobs(request.user), MAY_NOT_SEE_IMPORTS)
        interrupt_stale_import_jobs()
        job = get_object_or_404(ImportJob, pk=job_id)
        context = {
            **self.admin_site.each_context(request),
            "job": job,
            "opts": self.model._meta,
            "title": str(job),
            "rejections": job.rejections.all()[:REJECTIONS_SHOWN],
            "may_import": may_start_imports(request.user),
        }
        return TemplateResponse(request, "admin/catalog/importjob/report.html", context)

    def rejections_view(self, request: HttpRequest, job_id: int):
        require(may_see_import_jobs(request.user), MAY_NOT_SEE_IMPORTS)
        job = get_object_or_404(ImportJob, pk=job_id)
        response = StreamingHttpResponse(rejections_csv(job), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejected.csv"'
        return response

    def file_view(self, request: HttpRequest, job_id: int, which: str):
        """A job's uploaded CSV (`csv`) or images zip (`images`), from the private store, to
        staff who may view import jobs (MEDIA_ROOT never holds them)."""
        require(may_see_import_jobs(request.user), MAY_NOT_SEE_IMPORTS)
        job = get_object_or_404(ImportJob, pk=job_id)
        files = {
            "csv": (job.source, job.original_name, "text/csv"),
            "images": (job.images_archive, job.images_archive_name, "application/zip"),
        }
        if which not in files:
            raise Http404(f"No file {which!r}: ask for csv or images.")
        stored, name, content_type = files[which]
        if not name:
            raise Http404(f"Import {job.pk} had no {which} file.")
        if not stored:
            raise Http404(
                f"Import {job.pk} keeps its {which} file no more: an images zip is deleted when "
                "its job ends, a failed job's CSV too."
            )
        try:
            handle = stored.storage.open(stored.name, "rb")
        except FileNotFoundError:
            raise Http404(
                f"The {which} file of import {job.pk} is missing from the store."
            ) from None
        return FileResponse(handle, as_attachment=True, filename=name, content_type=content_type)

    def apply_view(self, request: HttpRequest, job_id: int):
        require(may_start_imports(request.user), MAY_NOT_IMPORT)
        dry_run = get_object_or_404(ImportJob, pk=job_id)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:catalog_importjob_report", args=[job_id]))
        try:
            with transaction.atomic():
                job = rerun_for_real(dry_run, requested_by=request.user)
                enqueue_import_job(job)
        except ValueError as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(reverse("admin:catalog_importjob_report", args=[job_id]))
        return HttpResponseRedirect(reverse("admin:catalog_importjob_report", args=[job.pk]))

    def resume_view(self, request: HttpRequest, job_id: int):
        """Resume an interrupted job: a worker continues it after its last committed chunk."""
        require(may_start_imports(request.user), MAY_NOT_IMPORT)
        job = get_object_or_404(ImportJob, pk=job_id)
        if request.method == "POST":
            try:
                with transaction.atomic():
                    resume_import_job(job)
            except ValueError as error:
                messages.error(request, str(error))
            else:
                messages.success(
                    request, f"Import job {job.pk} resumes after line {job.resume_after_line}."
                )
        return HttpResponseRedirect(reverse("admin:catalog_importjob_report", args=[job_id]))
