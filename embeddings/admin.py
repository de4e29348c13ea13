"""Admin for model versions (with the Retrain button) and training runs."""

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from . import services
from .models import ModelVersion, TrainingRun


def metric(name: str, description: str):
    @admin.display(description=description)
    def show(model_admin: admin.ModelAdmin, obj) -> str:
        value = obj.metrics.get(name)
        return f"{value:.1%}" if isinstance(value, float) else "—"

    return show


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    change_list_template = "admin/embeddings/modelversion/change_list.html"
    list_display = [
        "name",
        "is_active",
        "created_at",
        "activated_at",
        "fitb",
        "fitb_backbone",
        "backbone",
    ]
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["activate_selected"]
    fitb = metric("fitb", "FITB")
    fitb_backbone = metric("fitb_backbone_only", "FITB (backbone only)")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_urls(self):
        retrain = path(
            "retrain/",
            self.admin_site.admin_view(self.retrain_view),
            name="embeddings_modelversion_retrain",
        )
        return [retrain, *super().get_urls()]

    def retrain_view(self, request: HttpRequest):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("embeddings.add_trainingrun"):
            messages.error(request, "You may not start trainings.")
            return HttpResponseRedirect(reverse("admin:embeddings_modelversion_changelist"))
        with transaction.atomic():
            run = services.start_training_run(requested_by=request.user)
        messages.success(request, f"Training run {run.pk} started; its page shows its progress.")
        return HttpResponseRedirect(reverse("admin:embeddings_trainingrun_change", args=[run.pk]))

    @admin.action(description="Activate the selected version (serve it now)")
    def activate_selected(self, request: HttpRequest, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        version = queryset.get()
        services.activate(version)
        self.message_user(request, f"Model version {version.name} is now active.")


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "status",
        "stage",
        "progress",
        "requested_by",
        "created_at",
        "finished_at",
        "fitb",
        "model_version",
    ]
    list_filter = ["status"]
    readonly_fields = [f.name for f in TrainingRun._meta.fields] + ["progress"]
    fitb = metric("fitb", "FITB")

    @admin.display(description="progress")
    def progress(self, run: TrainingRun) -> str:
        return f"{run.progress_percent}% ({run.progress_done}/{run.progress_total})"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
