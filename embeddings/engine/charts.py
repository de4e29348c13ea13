"""Small inline SVG charts for the training-run page: the loss curve and the new version's
metrics beside the active one's. Plain SVG text, so the admin needs no chart library or CDN."""

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 480, 200, 36
NEW_COLOUR, ACTIVE_COLOUR = "#447e9b", "#c9c9c9"


def loss_curve_svg(losses: Sequence[float]) -> str:
    """The mean training loss of each epoch as a line, with its first and last values."""
    if not losses:
        return ""
    low, high = min(losses), max(losses)
    span = (high - low) or 1.0
    step = (WIDTH - 2 * PAD) / max(1, len(losses) - 1)

    def y(value: float) -> float:
        return HEIGHT - PAD - (value - low) / span * (HEIGHT - 2 * PAD)

    points = " ".join(f"{PAD + i * step:.1f},{y(v):.1f}" for i, v in enumerate(losses))
    dots = "".join(
        f'<circle cx="{PAD + i * step:.1f}" cy="{y(v):.1f}" r="2.5" fill="{NEW_COLOUR}">'
        f"<title>epoch {i + 1}: loss {v:.4f}</title></circle>"
        for i, v in enumerate(losses)
    )
    return (
        f'<svg class="run-chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" aria-label="Training loss by epoch, from {losses[0]:.4f} to '
        f'{losses[-1]:.4f}">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>'
        f'<polyline fill="none" stroke="{NEW_COLOUR}" stroke-width="2" points="{points}"/>'
        f"{dots}"
        f'<text x="{PAD}" y="{PAD - 8}" font-size="12">{high:.4f}</text>'
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="12">{low:.4f}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="12" text-anchor="end">epoch '
        f"{len(losses)}</text>"
        "</svg>"
    )


def metric_bars_svg(
    labels: dict[str, str],
    new: dict[str, float | None],
    active: dict[str, float | None] | None = None,
    active_label: str = "active",
) -> str:
    """Grouped bars on a 0–1 scale: each metric (`labels`: key → label) of the new version,
    beside the active version's when given. Missing values are left out."""
    shown = [name for name in labels if new.get(name) is not None]
    if not shown:
        return ""
    group = (WIDTH - 2 * PAD) / len(shown)
    bar = group / (3 if active else 2)
    parts = []
    for i, name in enumerate(shown):
        x = PAD + i * group + bar / 2
        series = [("new", new.get(name), NEW_COLOUR)]
        if active:
            series.append((active_label, active.get(name), ACTIVE_COLOUR))
        for offset, (label, value, colour) in enumerate(series):
            if value is None:
                continue
            height = max(0.0, min(1.0, value)) * (HEIGHT - 2 * PAD)
            left = x + offset * bar
            parts.append(
                f'<rect x="{left:.1f}" y="{HEIGHT - PAD - height:.1f}" width="{bar - 2:.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{escape(label)} '
                f"{escape(labels[name])}: {value:.3f}</title></rect>"
                f'<text x="{left + (bar - 2) / 2:.1f}" y="{HEIGHT - PAD - height - 3:.1f}" '
                f'font-size="10" text-anchor="middle">{value:.2f}</text>'
            )
        parts.append(
            f'<text x="{PAD + i * group + group / 2:.1f}" y="{HEIGHT - PAD + 14}" '
            f'font-size="11" text-anchor="middle">{escape(labels[name])}</text>'
        )
    legend = f'<rect x="{PAD}" y="6" width="10" height="10" fill="{NEW_COLOUR}"/>'
    legend += f'<text x="{PAD + 14}" y="15" font-size="11">new version</text>'
    if active:
        legend += f'<rect x="{PAD + 110}" y="6" width="10" height="10" fill="{ACTIVE_COLOUR}"/>'
        legend += f'<text x="{PAD + 124}" y="15" font-size="11">{escape(active_label)}</text>'
    return (
        f'<svg class="run-chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" aria-label="Validation metrics of the new version'
        f'{" beside the active one" if active else ""}">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        f'stroke="#999"/>{legend}{"".join(parts)}</svg>'
    )
