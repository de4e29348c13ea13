"""The run page's inline SVG charts are well-formed and show what they say."""

import xml.etree.ElementTree as ElementTree

from embeddings.engine.charts import loss_curve_svg, metric_bars_svg

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(
        svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    )


def test_loss_curve_has_a_point_per_epoch_highest_first_epoch_on_top():
    chart = parse(loss_curve_svg([0.9, 0.5, 0.3]))
    points = [
        tuple(map(float, p.split(","))) for p in chart.find(f"{SVG}polyline").get("points").split()
    ]
    assert len(points) == 3
    assert points[0][1] < points[1][1] < points[2][1]  # SVG y grows downward: loss falls
    assert "0.9000" in chart.get("aria-label") and "0.3000" in chart.get("aria-label")
    assert loss_curve_svg([]) == ""


def test_metric_bars_compare_versions_and_skip_missing_values():
    chart = parse(
        metric_bars_svg(
            {"fitb": "FITB", "fitb_cold": "FITB cold", "auc": "AUC"},
            {"fitb": 0.6, "fitb_cold": None, "auc": 0.9},
            {"fitb": 0.5, "auc": 0.95},
            "active (<v1>)",
        )
    )
    bars = chart.findall(f"{SVG}rect")[2:]  # after the two legend swatches
    titles = [bar.find(f"{SVG}title").text for bar in bars]
    assert titles == ["new FITB: 0.600", "active (<v1>) FITB: 0.500", "new AUC: 0.900",
                      "active (<v1>) AUC: 0.950"]  # fmt: skip
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[0] > heights[1] and heights[2] < heights[3]
