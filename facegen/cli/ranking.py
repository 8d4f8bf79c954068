"""The families' ranking as the benchmark measured it (bench/families.py), for the demo to show beside its own.

The demo trains every family on a few dozen heads for a few hundred steps: enough to run the whole pipeline in
minutes, far too little for a GAN or a diffusion model, which then lose to the template. What the families do
when trained at scale is what `bench/families.py` measured on 1,000 heads; its full run records the figures in
RANKING_FILE, shipped with the package, and the demo prints them, with where and when they were measured.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from rich.table import Table

RANKING_FILE = "benchmark_families.json"
"""In facegen/assets: written by a full run of bench/families.py."""


def recorded_ranking() -> dict[str, Any] | None:
    """The benchmark's recorded ranking, or None where no full run has recorded one."""
    path = resources.files("facegen") / "assets" / RANKING_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def ranking_table(ranking: dict[str, Any]) -> Table:
    """One row per family, best mean error first, then the floor: the benchmark's figures as recorded."""
    table = Table(title=f"the families trained at scale: {ranking['heads']:,} synthetic heads, scored on "
                        f"{ranking['test_subjects']} held out (bench/families.py, {ranking['date']}, "
                        f"{ranking['machine']})")  # fmt: skip
    for title in ("rank", "family", "mean error mm", "x floor", "within 2.5 mm", "rank-1", "training"):
        table.add_column(title, justify="left" if title == "family" else "right")
    floor = ranking["floor"]
    for place, row in enumerate(sorted(ranking["families"], key=lambda r: r["mae_mm"]), start=1):
        table.add_row(str(place), row["name"], f"{row['mae_mm']:.2f}", f"{row['mae_mm'] / floor['mae_mm']:.2f}x",
                      f"{row['within_2_5mm']:.0%}", f"{row['rank_1']:.0%}", row["training"])  # fmt: skip
    table.add_row("", "floor (noise-free face)", f"{floor['mae_mm']:.2f}", "1.00x", f"{floor['within_2_5mm']:.0%}",
                  f"{floor['rank_1']:.0%}", "", style="dim")  # fmt: skip
    if ranking.get("default_by_rule"):
        table.caption = ("the real skull's part of the stated rule decides the case default (docs/benchmarks.md); "
                         "first by its held-out parts (a calibrated uncertainty, then the lowest error): "
                         f"{ranking['default_by_rule']}")  # fmt: skip
    return table
