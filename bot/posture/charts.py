"""Small PNG charts for messages (the weekly digest's trend), drawn with matplotlib."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

WIDTH_INCHES = 8.0
HEIGHT_INCHES = 4.0
DPI = 100  # 800 x 400 pixels: readable in Slack's preview, a few tens of kilobytes


class TrendCharts:
    """Draws trend lines as PNGs; one object can be shared by threads (no pyplot state)."""

    def render_trend(
        self, title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]]
    ) -> bytes:
        """Draw one line per series over `labels` and return the PNG bytes."""
        _check(labels, series)
        # Imported here so that importing bot.posture.charts (and starting Leash) stays cheap.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI, layout="tight")
        FigureCanvasAgg(figure)  # Agg, whatever backend the process selected
        axes = figure.add_subplot()
        positions = list(range(len(labels)))
        for name, values in series.items():
            axes.plot(positions, list(values), marker="o", linewidth=2, label=name, clip_on=False)
        axes.set_title(title)
        axes.set_xticks(positions, list(labels))
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        if all(value >= 0 for values in series.values() for value in values):
            axes.set_ylim(bottom=0)  # counts: start at zero so a small change looks small
        axes.grid(True, axis="y", alpha=0.3)
        if series:
            axes.legend(loc="best", frameon=False)
        if len(labels) > 8:  # keep many week labels from overlapping
            for tick in axes.get_xticklabels():
                tick.set_rotation(45)
                tick.set_horizontalalignment("right")
        buffer = io.BytesIO()
        # Fixed metadata: the same data gives the same bytes.
        figure.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()


def _check(labels: Sequence[str], series: Mapping[str, Sequence[float]]) -> None:
    if not labels:
        raise ValueError("a trend chart needs at least one label")
    for name, values in series.items():
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")
