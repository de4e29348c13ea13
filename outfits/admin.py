"""Admin for stylists' outfits, merchandisers' pins and blocks, storefront API keys and the
click-through rates of recommendations."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from embeddings.models import ModelVersion

from .api_keys import create_api_key, revoke_api_key
from .events import click_through_rates
from .experiments import ExperimentRefused, experiment_results, promote_b, stop
from .login_throttle import ThrottledAdminAuthenticationForm
from .models import (
    ApiKey,
    BlockedPair,
    BlockedProduct,
    Experiment,
    Outfit,
    OutfitItem,
    PairVerdict,
    PinnedMatch,
    RecommendationEvent,
)
from .verdicts import disagreements

# The admin login says "try again in N minutes" once failures lock a username or address out.
admin.site.login_form = ThrottledAdminAuthenticationForm
admin.site.site_header = "Outfit Matcher · store admin"
admin.site.site_title = "Outfit Matcher admin"
admin.site.index_title = "Catalog, outfits and the matching model"
admin.site.site_url = "/"


class OutfitItemInline(admin.TabularInline):
    model = OutfitItem
    raw_id_fields = ["product"]
    extra = 0


@admin.register(Outfit)
class OutfitAdmin(admin.ModelAdmin):
    list_display = ["external_id", "item_count", "created_at"]
    search_fields = ["external_id", "items__product__sku"]
    inlines = [OutfitItemInline]

    @admin.display(description="items")
    def item_count(self, outfit: Outfit) -> int:
        return outfit.items.count()


@admin.register(PinnedMatch)
class PinnedMatchAdmin(admin.ModelAdmin):
    list_display = ["product", "match", "match_category", "position", "created_at"]
    list_editable = ["position"]
    autocomplete_fields = ["product", "match"]
    search_fields = ["product__sku", "product__title", "match__sku", "match__title"]
    list_select_related = ["product", "match__category"]

    @admin.display(description="category", ordering="match__category__name")
    def match_category(self, pin: PinnedMatch) -> str:
        return pin.match.category.name


@admin.register(BlockedPair)
class BlockedPairAdmin(admin.ModelAdmin):
    list_display = ["product", "other", "created_at"]
    autocomplete_fields = ["product", "other"]
    search_fields = ["product__sku", "product__title", "other__sku", "other__title"]
    list_select_related = ["product", "other"]


@admin.register(BlockedProduct)
class BlockedProductAdmin(admin.ModelAdmin):
    list_display = ["product", "reason", "created_at"]
    autocomplete_fields = ["product"]
    search_fields = ["product__sku", "product__title", "reason"]
    list_select_related = ["product"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "origins_list", "requests_per_minute", "status", "created_at"]
    fields = ["name", "allowed_origins", "requests_per_minute"]
    fields += ["prefix", "created_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="allowed origins")
    def origins_list(self, key: ApiKey) -> str:
        return ", ".join(key.origins) or "— (server-to-server)"

    @admin.display(description="status")
    def status(self, key: ApiKey) -> str:
        return f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "live"

    def save_model(self, request: HttpRequest, key: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, key, form, change)
            return
        created, raw_key = create_api_key(
            key.name, key.origins, key.requests_per_minute, request.user
        )
        key.pk, key.prefix = created.pk, created.prefix
        key.raw_key = raw_key  # for response_add, on this request only

    def response_add(self, request: HttpRequest, key: ApiKey, post_url_continue=None):
        """The new key, shown once on the answer to the form itself: not in a message, which
        would carry it in a cookie (or keep it in the session) until the next page."""
        response = TemplateResponse(
            request,
            "admin/outfits/apikey/created.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "key": key,
                "raw_key": key.raw_key,
                "title": f"API key for {key.name}",
            },
        )
        add_never_cache_headers(response)  # nor in the browser's cache (Back)
        return response

    @admin.action(description="Revoke the selected keys (they stop working at once)")
    def revoke(self, request: HttpRequest, keys: QuerySet[ApiKey]) -> None:
        for key in keys:
            revoke_api_key(key)
        self.message_user(request, f"Revoked {len(keys)} key(s).", messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, key: ApiKey | None = None) -> bool:
        return False  # revoke instead: events keep pointing at the key


@admin.register(RecommendationEvent)
class RecommendationEventAdmin(admin.ModelAdmin):
    """The events, with click-through rates per model version and per category above them."""

    change_list_template = "admin/outfits/recommendationevent/change_list.html"
    list_display = ["created_at", "kind", "product", "category", "model_version", "rec_id"]
    list_filter = ["kind", "model_version", "category"]
    search_fields = ["rec_id", "product__sku"]
    list_select_related = ["product", "category", "model_version"]
    date_hierarchy = "created_at"

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        context = {
            "rates_by_version": click_through_rates("model_version"),
            "rates_by_category": click_through_rates("category"),
            "now": timezone.now(),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, event=None) -> bool:
        return False


@admin.register(PairVerdict)
class PairVerdictAdmin(admin.ModelAdmin):
    """Stylists' verdicts on shown pairs (given on the product pages or here), and the
    disagreements: bad pairs the active version still ranks in a row."""

    change_list_template = "admin/outfits/pairverdict/change_list.html"
    list_display = [
        "product",
        "match",
        "verdict",
        "note",
        "model_version",
        "given_by",
        "updated_at",
    ]
    list_filter = ["verdict", "model_version"]
    search_fields = ["product__sku", "match__sku", "note"]
    raw_id_fields = ["product", "match"]
    readonly_fields = ["model_version", "given_by", "updated_at"]
    list_select_related = ["product", "match", "model_version", "given_by"]

    def save_model(self, request: HttpRequest, verdict: PairVerdict, form, change: bool) -> None:
        verdict.given_by = request.user
        if verdict.model_version is None:
            verdict.model_version = ModelVersion.objects.filter(is_active=True).first()
        super().save_model(request, verdict, form, change)

    def get_urls(self):
        return [
            path(
                "disagreements/",
                self.admin_site.admin_view(self.disagreements_view),
                name="outfits_pairverdict_disagreements",
            ),
            *super().get_urls(),
        ]

    def disagreements_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied("Disagreements need the permission outfits.view_pairverdict.")
        context = {
            **self.admin_site.each_context(request),
            "title": "Disagreements: bad pairs the model still shows",
            "opts": self.model._meta,
            "disagreements": disagreements(),
        }
        return TemplateResponse(request, "admin/outfits/pairverdict/disagreements.html", context)


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = ["name", "version_a", "version_b", "share_b"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "version_a" in self.fields:  # a new experiment (a started one is read-only)
            self.fields["version_a"].initial = ModelVersion.objects.filter(is_active=True).first()
            for name in ("version_a", "version_b"):
                self.fields[name].required = True

    def clean(self) -> dict:
        data = super().clean()
        a, b, share = data.get("version_a"), data.get("version_b"), data.get("share_b")
        if a is not None and a == b:
            raise forms.ValidationError("Choose two different versions.")
        if share is not None and not 0.01 <= share <= 0.99:
            self.add_error("share_b", "Between 0.01 and 0.99: both arms need shoppers.")
        running = Experiment.objects.filter(status=Experiment.Status.RUNNING)
        if not self.instance.pk and running.exists():
            raise forms.ValidationError(
                f"The experiment {running.first()} is running: stop it first (one at a time)."
            )
        return data


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """A/B tests of two model versions: start one (two versions, B's share of shoppers), watch
    each arm's CTR, then promote B or stop."""

    form = ExperimentForm
    change_form_template = "admin/outfits/experiment/change_form.html"
    list_display = ["name", "status", "version_a", "version_b", "share_b", "started_at", "ended_at"]
    list_filter = ["status"]

    def get_readonly_fields(self, request: HttpRequest, experiment=None):
        if experiment is None:
            return ["status"]
        return ["name", "version_a", "version_b", "share_b", "status", "started_at", "ended_at"]

    def has_delete_permission(self, request: HttpRequest, experiment=None) -> bool:
        return False  # its events keep pointing at it

    def save_model(self, request: HttpRequest, experiment: Experiment, form, change: bool) -> None:
        if not change:
            experiment.started_by = request.user
        super().save_model(request, experiment, form, change)

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        experiment = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if experiment is not None:
            context |= {
                "results": experiment_results(experiment),
                "running": experiment.status == Experiment.Status.RUNNING,
                "may_change": self.has_change_permission(request, experiment),
            }
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path("<int:pk>/promote/", view(self.promote_view), name="outfits_experiment_promote"),
            path("<int:pk>/stop/", view(self.stop_view), name="outfits_experiment_stop"),
            *super().get_urls(),
        ]

    def promote_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._end(request, pk, promote=True)

    def stop_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._end(request, pk, promote=False)

    def _end(self, request: HttpRequest, pk: int, promote: bool) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        experiment = get_object_or_404(Experiment, pk=pk)
        if not self.has_change_permission(request, experiment):
            raise PermissionDenied("Ending experiments needs outfits.change_experiment.")
        if promote and not request.user.has_perm("embeddings.change_modelversion"):
            raise PermissionDenied("Promoting B activates it: embeddings.change_modelversion.")
        try:
            if promote:
                version = promote_b(experiment)
                messages.success(request, f"{experiment}: B ({version.name}) now serves everyone.")
            else:
                stop(experiment)
                messages.success(request, f"{experiment} stopped: the active version serves all.")
        except ExperimentRefused as refused:
            messages.error(request, str(refused))
        return HttpResponseRedirect(reverse("admin:outfits_experiment_change", args=[pk]))
