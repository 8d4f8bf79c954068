"""The demo: the whole current pipeline on embedded defaults (synthetic data, small sizes)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from facegen.cli.progress import progress_bar
from facegen.data.dataset.verify import verify_dataset
from facegen.data.dataset.writer import write_synthetic_dataset
from facegen.viz.gallery import save_gallery
from facegen.viz.show import show_subject


def _tissue_table(card: dict) -> Table:
    table = Table(title="soft-tissue depth at the landmarks (mm): generated vs literature (cfr-facts)")
    for col in ("landmark", "mean", "table mean", "SD", "table SD"):
        table.add_column(col, justify="right" if col != "landmark" else "left")
    for name, row in card["tissue_depth_mm"].items():
        table.add_row(
            name, f"{row['mean']:.1f}", f"{row['table_mean']:.1f}", f"{row['sd']:.1f}", f"{row['table_sd']:.1f}"
        )
    return table


def run_demo(out: Path, *, n: int, seed: int, console: Console) -> dict:
    """Generate `n` heads into OUT/dataset, verify them, draw one subject and a gallery; returns the card."""
    out.mkdir(parents=True, exist_ok=True)
    dataset = out / "dataset"
    with progress_bar() as bar:
        task = bar.add_task("synthesising heads", total=n)
        card = write_synthetic_dataset(
            dataset, n=n, seed=seed, workers=2, overwrite=True, on_subject=lambda _: bar.advance(task)
        )
    problems = verify_dataset(dataset)
    if problems:
        raise RuntimeError("the demo dataset failed verification: " + "; ".join(problems))
    first = "S00000"
    show_subject(dataset, first, out / "subject.png")
    save_gallery(dataset, out / "gallery.png")
    console.print(_tissue_table(card))
    floor = card["floor"]
    console.print(f"counts: {json.dumps(card['counts'])}")
    console.print(
        f"floor (true vs noise-free face): {floor['surface_mm']['mean']:.2f} mm surface, "
        f"{floor['depth_mae_mm']['mean']:.2f} mm depth MAE over the face region"
    )
    console.print(f"pictures: {out / 'subject.png'}, {out / 'gallery.png'}; dataset: {dataset}")
    return card
