"""Log-log line charts of benchmark figures against catalog size, as plain SVG text (no
plotting library): side-by-side panels, a coloured line per series, an optional dashed
target line."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

WIDTH, HEIGHT, PAD = 360, 260, 52


@dataclass
class Panel:
    title: str
    lines: dict[str, dict[int, float]]  # series → {size: value}, values > 0
    target: tuple[float, str] | None = None  # a value drawn dashed, and its label


def write_loglog_svg(panels: list[Panel], colours: dict[str, str], path: Path) -> None:
    """`panels` side by side, each series in its colour of `colours` (its legend order)."""
    sizes = sorted({size for panel in panels for line in panel.lines.values() for size in line})
    columns = 2 if len(panels) > 1 else 1  # the legend's: one panel is too narrow for two
    legend_rows = (len(colours) + columns - 1) // columns
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{len(panels) * WIDTH}" '
        f'height="{HEIGHT + 24 + 16 * legend_rows}" font-family="sans-serif" font-size="11">'
    ]
    for number, panel in enumerate(panels):
        left = number * WIDTH
        values = [v for line in panel.lines.values() for v in line.values()]
        low, high = np.log10(min(values)), np.log10(max(values))

        def x(size: int, left: int = left) -> float:
            span = np.log10(sizes[-1] / sizes[0]) or 1.0
            return left + PAD + np.log10(size / sizes[0]) / span * (WIDTH - 2 * PAD)

        def y(value: float, low: float = low, high: float = high) -> float:
            height = HEIGHT - 2 * PAD
            return HEIGHT - PAD + 20 - (np.log10(value) - low) / ((high - low) or 1) * height

        parts.append(f'<text x="{left + PAD}" y="16" font-weight="bold">{panel.title}</text>')
        if panel.target and low < np.log10(panel.target[0]) < high:
            level = y(panel.target[0])
            parts.append(
                f'<line x1="{x(sizes[0]):.1f}" x2="{x(sizes[-1]):.1f}" y1="{level:.1f}" '
                f'y2="{level:.1f}" stroke="#444" stroke-dasharray="4 3"/>'
                f'<text x="{x(sizes[-1]) + 4:.1f}" y="{level + 4:.1f}">{panel.target[1]}</text>'
            )
        for size in sizes:
            parts.append(
                f'<text x="{x(size):.1f}" y="{HEIGHT + 10}" text-anchor="middle">{size:,}</text>'
            )
        for tick in (10**low, 10**high):
            parts.append(
                f'<text x="{left + PAD - 4}" y="{y(tick):.1f}" text-anchor="end">{tick:.3g}</text>'
            )
        for name, line in panel.lines.items():
            points = " ".join(f"{x(size):.1f},{y(line[size]):.1f}" for size in sorted(line))
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colours[name]}" '
                'stroke-width="2"/>'
            )
    for i, (name, colour) in enumerate(colours.items()):
        parts.append(
            f'<text x="{PAD + (i % columns) * WIDTH}" y="{HEIGHT + 30 + (i // columns) * 16}" '
            f'fill="{colour}">{name}</text>'
        )
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")
