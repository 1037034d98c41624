"""The trend chart is a small, readable PNG of exactly the data it was given."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Mapping, Sequence

import pytest

from bot.domain.ports import ChartRenderer
from bot.posture.charts import TrendCharts

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WEEKS = ("Mar 3", "Mar 10", "Mar 17", "Mar 24")


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a PNG must start with."""
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_is_a_chart_renderer() -> None:
    renderer: ChartRenderer = TrendCharts()
    assert isinstance(renderer.render_trend("t", ["a"], {"s": [1]}), bytes)


def test_draws_a_small_png() -> None:
    png = TrendCharts().render_trend(
        "Agents per week", WEEKS, {"active": [3, 4, 4, 6], "inactive": [1, 1, 2, 0]}
    )
    assert png.startswith(PNG_SIGNATURE)
    assert png_size(png) == (800, 400)
    assert len(png) < 200_000


def test_same_data_same_bytes_different_data_different_bytes() -> None:
    charts = TrendCharts()
    first = charts.render_trend("Grants", WEEKS, {"grants": [1, 2, 3, 4]})
    assert charts.render_trend("Grants", WEEKS, {"grants": [1, 2, 3, 4]}) == first
    assert charts.render_trend("Grants", WEEKS, {"grants": [4, 3, 2, 1]}) != first
    assert charts.render_trend("Revokes", WEEKS, {"grants": [1, 2, 3, 4]}) != first


def test_many_labels_and_a_single_point_are_drawn() -> None:
    labels = [f"week {n}" for n in range(1, 27)]
    many = TrendCharts().render_trend("Half a year", labels, {"a": list(range(26))})
    one = TrendCharts().render_trend("One week", ["Mar 3"], {"a": [2.0]})
    assert png_size(many) == png_size(one) == (800, 400)


@pytest.mark.parametrize(
    ("labels", "series"),
    [
        pytest.param((), {"a": []}, id="no labels"),
        pytest.param(WEEKS, {"a": [1, 2, 3]}, id="series too short"),
        pytest.param(WEEKS, {"a": [1, 2, 3, 4], "b": [1, 2, 3, 4, 5]}, id="second series too long"),
    ],
)
def test_bad_input_is_a_value_error(
    labels: Sequence[str], series: Mapping[str, Sequence[float]]
) -> None:
    with pytest.raises(ValueError, match=r"label"):
        TrendCharts().render_trend("bad", labels, series)


def test_importing_the_module_does_not_import_matplotlib() -> None:
    code = "import sys, bot.posture.charts; print('matplotlib' in sys.modules)"
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
