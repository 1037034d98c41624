"""Small PNG charts for messages (the weekly digest's trend), drawn with matplotlib.

Each series gets its own panel (one measure per y axis, labelled with the series' name), the
panels share the x axis (labelled "Week ending"), counts are ticked in whole numbers, and a
value that is NaN (a week with no data) is left out: the line has a gap there, it is not a zero.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH_INCHES = 8.0
HEIGHT_INCHES = 4.0
DPI = 100  # 800 x 400 pixels: readable in Slack's preview, a few tens of kilobytes
X_LABEL = "Week ending"


class TrendCharts:
    """Draws trend lines as PNGs; one object can be shared by threads (no pyplot state)."""

    def render_trend(
        self, title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]]
    ) -> bytes:
        """Draw each series in its own panel over `labels` and return the PNG bytes."""
        figure = self.trend_figure(title, labels, series)
        buffer = io.BytesIO()
        # Fixed metadata: the same data gives the same bytes.
        figure.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()

    def trend_figure(
        self, title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]]
    ) -> Figure:
        """The figure `render_trend` saves: one panel per series, NaN values left as gaps."""
        _check(labels, series)
        # Imported here so that importing bot.posture.charts (and starting Leash) stays cheap.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI, layout="tight")
        FigureCanvasAgg(figure)  # Agg, whatever backend the process selected
        figure.suptitle(title)
        panels = figure.subplots(max(len(series), 1), 1, sharex=True, squeeze=False)[:, 0]
        positions = list(range(len(labels)))
        for axes, (name, values) in zip(panels, series.items(), strict=False):
            _panel(axes, positions, name, [float(v) for v in values])
        bottom = panels[-1]
        bottom.set_xticks(positions, list(labels))
        bottom.set_xlabel(X_LABEL)
        if len(labels) > 8:  # keep many week labels from overlapping
            for tick in bottom.get_xticklabels():
                tick.set_rotation(45)
                tick.set_horizontalalignment("right")
        return figure


def _panel(axes: Axes, positions: list[int], name: str, values: list[float]) -> None:
    """One measure on its own y axis: a line broken at NaN, whole-number ticks from zero."""
    from matplotlib.ticker import MaxNLocator

    axes.plot(positions, values, marker="o", linewidth=2, clip_on=False)
    axes.set_ylabel(name)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True, min_n_ticks=1))
    known = [value for value in values if not math.isnan(value)]
    if all(value >= 0 for value in known):
        # Counts: start at zero so a small change looks small, and show at least 0..1.
        axes.set_ylim(bottom=0, top=max([*known, 1.0]) * 1.1)
    axes.grid(True, axis="y", alpha=0.3)


def _check(labels: Sequence[str], series: Mapping[str, Sequence[float]]) -> None:
    if not labels:
        raise ValueError("a trend chart needs at least one label")
    for name, values in series.items():
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")
