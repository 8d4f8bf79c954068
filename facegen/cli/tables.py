"""Rich tables the commands print: the model comparison beside the floor."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

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


def print_comparison(record: dict[str, Any], console: Console) -> None:
    """Print the comparison at least 132 columns wide (a narrow log would fold every figure in two)."""
    wide = Console(width=max(console.width, 132), force_terminal=console.is_terminal, color_system=console.color_system)
    wide.print(comparison_table(record))
