"""Admin for model versions (Retrain, activate, roll back) and training runs (a live page per
run, cancel, the history of runs)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import (
    HttpRequest,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from . import training_runs, versions
from .engine.charts import loss_curve_svg, metric_bars_svg
from .forms import RetrainForm
from .models import ModelVersion, TrainingRun, VersionRefresh

MAY_NOT_TRAIN = "Starting or cancelling trainings needs the permission embeddings.add_trainingrun."
MAY_NOT_ACTIVATE = (
    "Activating or rolling back model versions needs the permission embeddings.change_modelversion."
)
MAY_NOT_SEE_RUNS = "Training runs can be seen with the permission embeddings.view_trainingrun."


def require(allowed: bool, message: str) -> None:
    """Custom admin views are reached by any staff user: each checks its model permission."""
    if not allowed:
        raise PermissionDenied(message)


def may_train(request: HttpRequest) -> bool:
    return request.user.has_perm("embeddings.add_trainingrun")


def shown(value: object) -> str:
    """A metric as the changelists show it: three decimals, or — when it was not measured."""
    return f"{value:.3f}" if isinstance(value, float) else "—"


def metric(name: str, description: str):
    @admin.display(description=description)
    def show(model_admin: admin.ModelAdmin, obj) -> str:
        return shown(obj.metrics.get(name))

    return show


@admin.display(description="FITB cold / warm")
def fitb_cold_and_warm(model_admin: admin.ModelAdmin, obj) -> str:
    """Both halves of FITB in one column: a changelist of versions fits 1280 px beside the
    admin's navigation."""
    return " / ".join(shown(obj.metrics.get(name)) for name in ("fitb_cold", "fitb_warm"))


def when(field: str, description: str):
    """A date column as 2026-12-04 11:44 (local time), not "Dec. 4, 2026, 11:44 a.m.",
    sortable by its field."""

    @admin.display(description=description, ordering=field)
    def show(model_admin: admin.ModelAdmin, obj) -> str:
        value = getattr(obj, field)
        return "—" if value is None else timezone.localtime(value).strftime("%Y-%m-%d %H:%M")

    return show


class VersionRefreshInline(admin.TabularInline):
    """A version's refreshes with new and changed products (embeddings.version_refresh)."""

    model = VersionRefresh
    fields = ["started_at", "status", "added", "changed", "removed", "embedded", "took", "message"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = "Refreshes with new and changed products"

    @admin.display(description="seconds")
    def took(self, refresh: VersionRefresh) -> str:
        if refresh.seconds is None:
            return "—"
        stages = " · ".join(f"{stage} {s:.1f}" for stage, s in refresh.stages)
        return f"{refresh.seconds:.1f} ({stages})" if stages else f"{refresh.seconds:.1f}"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    inlines = [VersionRefreshInline]
    change_list_template = "admin/embeddings/modelversion/change_list.html"
    list_display = [
        "name",
        "serving",
        "activate_button",
        "created",
        "activated",
        "fitb",
        "cold_and_warm",
        "auc",
        "recall_at_10",
        "backbone",
    ]
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    created = when("created_at", "created")
    activated = when("activated_at", "activated")
    fitb = metric("fitb", "FITB")
    cold_and_warm = fitb_cold_and_warm
    auc = metric("auc", "AUC")
    recall_at_10 = metric("recall_at_10", "Recall@10")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # old versions go by garbage collection, which spares active and previous

    @admin.display(description="serving", boolean=True)
    def serving(self, version: ModelVersion) -> bool:
        return version.is_active

    @admin.display(description="switch to")
    def activate_button(self, version: ModelVersion) -> str:
        if version.is_active:
            return ""
        return format_html(
            '<button type="submit" class="button" form="activate-form" name="version" '
            'value="{}">Activate</button>',
            version.pk,
        )

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("retrain/", view(self.retrain_view), name="embeddings_modelversion_retrain"),
            path("activate/", view(self.activate_view), name="embeddings_modelversion_activate"),
            path("rollback/", view(self.rollback_view), name="embeddings_modelversion_rollback"),
            *super().get_urls(),
        ]

    def get_list_display(self, request: HttpRequest):
        shown = super().get_list_display(request)
        if self.has_change_permission(request):
            return shown
        return [name for name in shown if name != "activate_button"]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        running = TrainingRun.objects.filter(status__in=TrainingRun.IN_PROGRESS).first()
        context = {
            "title": "Model versions",
            "previous_version": versions.previous_version(),
            "running_training": running,
            "may_retrain": may_train(request),
            "may_activate": self.has_change_permission(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    def retrain_view(self, request: HttpRequest):
        require(may_train(request), MAY_NOT_TRAIN)
        changelist = reverse("admin:embeddings_modelversion_changelist")
        form = RetrainForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():  # the task is published when this commits
                    run = training_runs.start_training_run(
                        requested_by=request.user, **form.cleaned_data
                    )
            except (
                training_runs.TrainingAlreadyRunning,
                training_runs.TrainingNotQueued,  # the broker is down: its run is failed
                ValueError,
            ) as refused:
                messages.error(request, str(refused))
                return HttpResponseRedirect(changelist)
            messages.success(request, f"Training run {run.pk} started.")
            return HttpResponseRedirect(
                reverse("admin:embeddings_trainingrun_change", args=[run.pk])
            )
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": "Retrain the compatibility model",
            "activation_rule": training_runs.activation_rule(),
            "opts": self.model._meta,
            "running_training": TrainingRun.objects.filter(
                status__in=TrainingRun.IN_PROGRESS
            ).first(),
        }
        return TemplateResponse(request, "admin/embeddings/modelversion/retrain.html", context)

    def activate_view(self, request: HttpRequest):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        require(self.has_change_permission(request), MAY_NOT_ACTIVATE)
        number = request.POST.get("version", "")
        if not number.isdigit():
            return HttpResponseBadRequest(
                f"version={number!r} is not a model version's number: send the id of the "
                "version to activate (the Activate button of its row does).",
                content_type="text/plain; charset=utf-8",
            )
        version = get_object_or_404(ModelVersion, pk=int(number))
        versions.activate(version)
        messages.success(request, f"Model version {version.name} is now serving.")
        return HttpResponseRedirect(reverse("admin:embeddings_modelversion_changelist"))

    def rollback_view(self, request: HttpRequest):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        require(self.has_change_permission(request), MAY_NOT_ACTIVATE)
        try:
            version = versions.roll_back()
        except ValueError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"Rolled back: model version {version.name} is serving.")
        return HttpResponseRedirect(reverse("admin:embeddings_modelversion_changelist"))


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = [
        "run",
        "status",
        "outcome",
        "requested_by",
        "created",
        "duration",
        "data",
        "fitb",
        "cold_and_warm",
        "auc",
        "recall_at_10",
    ]
    list_display_links = ["run", "status"]
    list_filter = ["status", "outcome"]
    created = when("created_at", "started")
    fitb = metric("fitb", "FITB")
    cold_and_warm = fitb_cold_and_warm
    auc = metric("auc", "AUC")
    recall_at_10 = metric("recall_at_10", "Recall@10")

    @admin.display(description="run", ordering="pk")
    def run(self, run: TrainingRun) -> int:
        return run.pk

    @admin.display(description="duration")
    def duration(self, run: TrainingRun) -> str:
        return "—" if run.seconds is None else f"{run.seconds:.0f} s"

    @admin.display(description="data")
    def data(self, run: TrainingRun) -> str:
        if not run.product_count:
            return "—"
        return f"{run.product_count:,} products · {run.outfit_count:,} outfits"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the history stays; a deleted running row would also free the lock

    def changelist_view(self, request: HttpRequest, extra_context=None):
        require(self.has_view_permission(request), MAY_NOT_SEE_RUNS)
        training_runs.fail_stale_training_runs()
        return super().changelist_view(request, {"title": "Training runs", **(extra_context or {})})

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("<int:run_id>/state/", view(self.state_view), name="embeddings_trainingrun_state"),
            path(
                "<int:run_id>/cancel/", view(self.cancel_view), name="embeddings_trainingrun_cancel"
            ),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        require(self.has_view_permission(request), MAY_NOT_SEE_RUNS)
        training_runs.fail_stale_training_runs()
        run = get_object_or_404(TrainingRun, pk=object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Training run {run.pk}",
            "run": run,
            "may_cancel": may_train(request),
            "state": render_to_string("admin/embeddings/trainingrun/_state.html", run_state(run)),
        }
        return TemplateResponse(request, "admin/embeddings/trainingrun/run.html", context)

    def state_view(self, request: HttpRequest, run_id: int):
        """What the run page polls: its state, rendered, and whether to keep polling."""
        require(self.has_view_permission(request), MAY_NOT_SEE_RUNS)
        training_runs.fail_stale_training_runs()
        run = get_object_or_404(TrainingRun, pk=run_id)
        return JsonResponse(
            {
                "status": run.status,
                "finished": run.finished,
                "html": render_to_string(
                    "admin/embeddings/trainingrun/_state.html", run_state(run), request=request
                ),
            }
        )

    def cancel_view(self, request: HttpRequest, run_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        require(may_train(request), MAY_NOT_TRAIN)
        run = get_object_or_404(TrainingRun, pk=run_id)
        try:
            messages.success(request, training_runs.request_cancel(run))
        except ValueError as error:
            messages.error(request, str(error))
        return HttpResponseRedirect(reverse("admin:embeddings_trainingrun_change", args=[run.pk]))


METRIC_LABELS = ("FITB", "FITB cold", "FITB warm", "AUC", "Recall@10")
SCORER_NAMES = {
    "type_aware": "type-aware pairs",
    "outfit_transformer": "outfit-level model",
}


VERDICT_FIGURES = (("fitb", "FITB"), ("fitb_cold", "FITB, new arrivals"), ("auc", "AUC"))


def verdict_effect(metrics: dict) -> dict | None:
    """The stylists' verdicts a run trained on, and its held-out figures with and without them
    (the type-aware scorer's); None for a run without verdicts."""
    if "verdicts_good" not in metrics:
        return None
    return {
        "good": metrics["verdicts_good"],
        "bad": metrics["verdicts_bad"],
        "rows": [
            (label, metrics.get(f"{key}_with_verdicts"), metrics.get(f"{key}_without_verdicts"))
            for key, label in (
                ("fitb", "FITB"),
                ("fitb_cold", "FITB, new arrivals"),
                ("auc", "AUC"),
            )
        ],
    }


def run_state(run: TrainingRun) -> dict:
    """The template context of a run's live part: stage bars, times, results and charts."""
    names = list(training_runs.STAGES) + [s for s in run.stages if s not in training_runs.STAGES]
    stages = []
    for name in names:
        state = run.stages.get(name)
        if state is None:
            stages.append({"name": name, "percent": 0, "text": "waiting"})
            continue
        done, total = state["done"], state["total"]
        info = ", ".join(f"{key} {value:.4f}" for key, value in state.get("info", {}).items())
        unit = "epoch" if name == "training compatibility head" else ""
        text = f"{unit} {done}/{total}".strip() + (f" · {info}" if info else "")
        text += f" · {state['updated'] - state['started']:.0f} s"
        stages.append(
            {"name": name, "percent": round(100 * done / total) if total else 100, "text": text}
        )
    comparison = run.comparison or {}
    rows = [
        {
            "name": label,
            "new": (comparison.get("new") or run.metrics).get(key),
            "active": (comparison.get("active") or {}).get(key),
        }
        for key, label in zip(training_runs.COMPARED_METRICS, METRIC_LABELS, strict=True)
    ]
    metrics = run.metrics or {}
    scorers = [  # what `auto` chose by: new arrivals, known items beyond noise
        (name, metrics.get(f"fitb_cold_{kind}"), metrics.get(f"fitb_warm_{kind}"))
        for kind, name in SCORER_NAMES.items()
        if f"fitb_{kind}" in metrics
    ]
    return {
        "run": run,
        "served_scorer": SCORER_NAMES.get(metrics.get("scorer", "")),
        "scorers": scorers,
        "stages": stages,
        "seconds_left": training_runs.seconds_left(run),
        "comparison": comparison,
        "metric_rows": rows,
        "verdicts": verdict_effect(metrics),
        "loss_chart": loss_curve_svg(run.loss_curve),
        "metric_chart": metric_bars_svg(
            dict(zip(training_runs.COMPARED_METRICS, METRIC_LABELS, strict=True)),
            comparison.get("new") or run.metrics,
            comparison.get("active"),
            f"active ({comparison['active_version']})" if comparison else "active",
        ),
    }
