"""A/B tests of two model versions (Experiment): which arm answers a shopper, and how each arm
does. A shopper is assigned by a hash of the experiment and their id (a storefront's `uid`, a
page's cookie), so they see the same arm on every page and every process, with no storage; a
request without an id is served the active version, outside the test."""

import hashlib
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from embeddings import versions
from embeddings.engine.index import CompatibilityIndex
from embeddings.loaded_versions import active_compatibility_index, arm_compatibility_index
from embeddings.models import ModelVersion

from .models import Experiment, RecommendationEvent
from .serving import ServingSnapshot

Kind = RecommendationEvent.Kind


def arm_of(experiment: Experiment, uid: str) -> str:
    """ "A" or "B" for the shopper `uid`: B for a share_b of all ids, always the same."""
    digest = hashlib.sha256(f"{experiment.pk}:{uid}".encode()).digest()
    return "B" if int.from_bytes(digest[:8], "big") / 2**64 < experiment.share_b else "A"


@dataclass(frozen=True)
class ServedModel:
    version: ModelVersion
    index: CompatibilityIndex
    arm: tuple[int, str] | None  # (experiment id, "A" or "B") inside an A/B test


def model_for(serving: ServingSnapshot, uid: str | None = None) -> ServedModel | None:
    """What answers a shopper: the running experiment's arm for one with an id, else the
    active version (None: no model yet)."""
    experiment = serving.rules.experiment
    if experiment is not None and uid and experiment.version_a and experiment.version_b:
        arm = arm_of(experiment, uid)
        version = experiment.version_a if arm == "A" else experiment.version_b
        loaded = arm_compatibility_index(version, arm)
        if loaded is not None:
            return ServedModel(loaded[0], loaded[1], (experiment.pk, arm))
    active = active_compatibility_index(serving.rules.active_version)
    return None if active is None else ServedModel(active[0], active[1], None)


@dataclass(frozen=True)
class ArmResult:
    arm: str
    version: str
    impressions: int
    clicks: int
    add_to_carts: int

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def ctr_interval(self) -> tuple[float, float] | None:
        """The 95% Wilson score interval of the click-through rate."""
        return wilson_interval(self.clicks, self.impressions)

    @property
    def cart_rate(self) -> float | None:
        return self.add_to_carts / self.impressions if self.impressions else None


@dataclass(frozen=True)
class ExperimentResults:
    arms: list[ArmResult]  # A, then B
    b_beats_a: float | None  # P(CTR of B > CTR of A), Beta posteriors; None without data
    enough_data: bool
    verdict: str  # what the page says


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    if trials == 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def probability_b_beats_a(a: ArmResult, b: ArmResult, draws: int = 200_000) -> float | None:
    """P(CTR_B > CTR_A) under uniform priors (Beta(1 + clicks, 1 + misses) each), by sampling
    (a fixed seed: the page shows the same figure for the same counts)."""
    if not a.impressions or not b.impressions:
        return None
    rng = np.random.default_rng(0)
    ctr_a = rng.beta(1 + a.clicks, 1 + a.impressions - a.clicks, draws)
    ctr_b = rng.beta(1 + b.clicks, 1 + b.impressions - b.clicks, draws)
    return float((ctr_b > ctr_a).mean())


def experiment_results(experiment: Experiment) -> ExperimentResults:
    """Impressions, clicks and add-to-carts of each arm (events whose rec_id the arm issued),
    CTR with its interval, P(B beats A), and a verdict that waits for enough data."""
    counts = {
        row["arm"]: row
        for row in RecommendationEvent.objects.filter(experiment=experiment)
        .values("arm")
        .annotate(
            impressions=Count("pk", filter=Q(kind=Kind.IMPRESSION)),
            clicks=Count("pk", filter=Q(kind=Kind.CLICK)),
            add_to_carts=Count("pk", filter=Q(kind=Kind.ADD_TO_CART)),
        )
    }
    arms = []
    for arm, version in (("A", experiment.version_a), ("B", experiment.version_b)):
        row = counts.get(arm, {})
        arms.append(
            ArmResult(
                arm,
                version.name if version else "(deleted version)",
                row.get("impressions", 0),
                row.get("clicks", 0),
                row.get("add_to_carts", 0),
            )
        )
    a, b = arms
    chance = probability_b_beats_a(a, b)
    needed = settings.OUTFITS_EXPERIMENT_MIN_IMPRESSIONS
    enough = min(a.impressions, b.impressions) >= needed and a.clicks + b.clicks >= 20
    if not enough:
        verdict = (
            f"Too little data to call a winner: each arm needs {needed:,} impressions and the "
            f"two together 20 clicks (now {a.impressions:,} and {b.impressions:,} impressions, "
            f"{a.clicks + b.clicks} clicks)."
        )
    elif chance is not None and chance >= 0.95:
        verdict = f"B is ahead: {chance:.0%} probability that its CTR is higher."
    elif chance is not None and chance <= 0.05:
        verdict = f"A is ahead: {1 - chance:.0%} probability that its CTR is higher."
    else:
        verdict = "No clear winner yet: neither arm's CTR is ahead with 95% probability."
    return ExperimentResults(arms, chance, enough, verdict)


class ExperimentRefused(ValueError):
    """An experiment that cannot start or change; the message says why."""


def stop(experiment: Experiment) -> None:
    """End the test: every shopper gets the active version again."""
    if experiment.status != Experiment.Status.RUNNING:
        raise ExperimentRefused(f"{experiment} is not running.")
    experiment.status, experiment.ended_at = Experiment.Status.STOPPED, timezone.now()
    experiment.save(update_fields=["status", "ended_at"])


def promote_b(experiment: Experiment) -> ModelVersion:
    """End the test with B activated for every shopper."""
    if experiment.status != Experiment.Status.RUNNING:
        raise ExperimentRefused(f"{experiment} is not running.")
    if experiment.version_b is None:
        raise ExperimentRefused("Version B was deleted: there is nothing to promote.")
    versions.activate(experiment.version_b)
    experiment.status, experiment.ended_at = Experiment.Status.PROMOTED, timezone.now()
    experiment.save(update_fields=["status", "ended_at"])
    return experiment.version_b
