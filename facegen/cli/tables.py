"""Rich tables the commands print: the model comparison beside the floor, and the uncertainty check."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from facegen.evaluation.report import scored_rows

COLUMNS = (
    ("mae_mm", "MAE mm", "{:.2f}"),
    ("mae_sd", "SD", "{:.2f}"),
    ("rmse_mm", "RMSE mm", "{:.2f}"),
    ("signed_mm", "signed mm", "{:+.2f}"),
    ("within_2_5mm", "<=2.5 mm", "{:.0%}"),
    ("within_5mm", "<=5 mm", "{:.0%}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("psnr_db", "PSNR dB", "{:.1f}"),
)


def comparison_table(record: dict[str, Any]) -> Table:
    """One row per model (mean and SD over subjects of the MAE, means of the rest) and the floor's row."""
    table = Table(title=f"{record['split']} split of {record['data']}: {record['n_subjects']} subjects, face region")
    table.add_column("model")
    for _, title, _ in COLUMNS:
        table.add_column(title, justify="right")
    table.add_column("coverage", justify="right")
    rows = [(m["name"], m["metrics"], f"{m['coverage']:.0%}") for m in record["models"]]
    if record.get("floor"):
        rows.append(("floor", record["floor"]["metrics"], "100%"))
    for name, summary, coverage in rows:
        cells = []
        for key, _, fmt in COLUMNS:
            value = summary["mae_mm"]["sd"] if key == "mae_sd" else summary[key]["mean"]
            cells.append(fmt.format(value))
        table.add_row(name, *cells, coverage, style="dim" if name == "floor" else None)
    return table


def wide_console(console: Console) -> Console:
    """The console at least 132 columns wide (a narrow log would fold every figure of a wide table in two)."""
    return Console(width=max(console.width, 132), force_terminal=console.is_terminal, color_system=console.color_system)


def print_comparison(record: dict[str, Any], console: Console) -> None:
    """Print the comparison at least 132 columns wide."""
    wide = wide_console(console)
    wide.print(comparison_table(record))
    wide.print(identification_table(record))
    if any("surface" in m for m in record["models"]):
        wide.print(surface_table(record))
    if any("calibration" in m for m in record["models"]):
        wide.print(calibration_table(record))


def surface_table(record: dict[str, Any]) -> Table:
    """Per model that answered with a surface (and the floor): distances to the true face over the facial area."""
    table = Table(title="3D outputs: surface distances to the true face over the facial area")
    for title in ("model", "mean mm", "95% Hausdorff mm", "within 2.5 mm", "subjects", "no surface"):
        table.add_column(title, justify="left" if title == "model" else "right")
    for m in scored_rows(record):
        if "surface" not in m:
            continue
        s, name = m["surface"].get("metrics"), "floor" if m is record.get("floor") else m["name"]
        cells = ["-"] * 4
        if s is not None:
            cells = [f"{s['surface_mean_mm']['mean']:.2f}", f"{s['surface_hd95_mm']['mean']:.2f}",
                     f"{s['surface_within_2_5mm']['mean']:.0%}", str(s["surface_mean_mm"]["n"])]  # fmt: skip
        table.add_row(name, *cells, str(m["surface"]["missing"]), style="dim" if name == "floor" else None)
    return table


def calibration_table(record: dict[str, Any]) -> Table:
    """Per model with a spread (samples or stated SD): does its SD track the error, does its 95% band hold the truth."""
    table = Table(title="uncertainty: per-pixel SD (over samples, or stated) against the real error "
                  "(target coverage 85-98%)")  # fmt: skip
    for title in ("model", "samples", "Spearman(SD, |error|)", "95% band coverage", "mean SD mm", "MAE mm",
                  "MAE expected from SD"):  # fmt: skip
        table.add_column(title, justify="left" if title == "model" else "right")
    for m in record["models"]:
        c = m.get("calibration")
        if c is not None:
            table.add_row(m["name"], str(c["samples"] or "stated SD"), f"{c['spearman_sd_error']:.2f}",
                          f"{c['coverage']:.1%}", f"{c['mean_sd_mm']:.2f}", f"{c['mae_mm']:.2f}",
                          f"{c['expected_mae_mm']:.2f}")  # fmt: skip
    return table


def identification_table(record: dict[str, Any]) -> Table:
    """Rank-1, rank-5 and rank-10 against the gallery per model, the floor and chance, by each matcher."""
    matchers = [("identification", "depth")] + ([("identification_embedding", "embedding")] if "embedding" in record
                                                  else [])  # fmt: skip
    table = Table(title=f"identification in a gallery of {record['gallery']['size']} true faces")
    table.add_column("model")
    for _, label in matchers:
        for k in (1, 5, 10):
            table.add_column(f"rank-{k} ({label})", justify="right")
    for m in scored_rows(record):
        name = "floor" if m is record.get("floor") else m["name"]
        cells = [f"{m[key][f'rank_{k}']:.0%}" for key, _ in matchers for k in (1, 5, 10)]
        table.add_row(name, *cells, style="dim" if name == "floor" else None)
    chance = record["models"][0]["identification"]
    table.add_row("chance", *[f"{chance[f'rank_{k}_chance']:.1%}" for _ in matchers for k in (1, 5, 10)], style="dim")
    return table
