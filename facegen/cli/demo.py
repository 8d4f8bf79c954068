"""The demo: the whole current pipeline on embedded defaults (synthetic data, small sizes)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from facegen.cli.progress import progress_bar
from facegen.cli.ranking import ranking_table, recorded_ranking
from facegen.cli.tables import print_comparison, wide_console
from facegen.data.dataset.verify import verify_dataset
from facegen.data.dataset.writer import write_synthetic_dataset
from facegen.data.representations.build import RepresentationSpec
from facegen.data.representations.depth_map import DepthView
from facegen.data.representations.voxel_grid import GridSpec
from facegen.evaluation.html_report import write_report
from facegen.evaluation.report import evaluate_models
from facegen.evaluation.validation import validation_figures
from facegen.io.output_folder import claim_output_folder
from facegen.training.config import load_config
from facegen.training.loop import train_run
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


DEMO_SPEC = RepresentationSpec(DepthView(shape=(128, 128), pixel_mm=2.0), GridSpec(shape=(32, 32, 32)))
"""Small representations: 128^2 depth maps at 2 mm over the 256 mm field of view, 32^3 grids."""
DEMO_MODELS = {
    "template": [],
    "pca": [],
    "gan2d": ["batch_size=8", "lr=5e-4", "model.channels=[16,32,64,128]", "model.discriminator_channels=32"],
    "diffusion2d": ["batch_size=8", "lr=1e-3", "beta1=0.9", "model.channels=[16,32,64,128]", "model.sampling_steps=20",
                    "model.samples=4", "val_subjects=8"],
}
"""The families the demo trains, with the small neural models' settings (their steps come from --steps)."""
NEURAL = ("gan2d", "diffusion2d")


def train_models(dataset: Path, runs: Path, *, seed: int, steps: int, console: Console) -> list[Path]:
    """Fit or train every demo model into RUNS/NAME; returns the run folders."""
    folders = []
    for family, settings in DEMO_MODELS.items():
        overrides = [*settings, f"seed={seed}"] + ([f"steps={steps}", f"eval_every={steps}"]
                                                    if family in NEURAL else [])  # fmt: skip
        config = load_config(None, overrides, model=family)
        run = runs / family
        with progress_bar() as bar:
            task = bar.add_task(f"training {family}", total=config.steps if family in NEURAL else None)
            record = train_run(config, dataset, run, validate=validation_figures,
                               on_progress=lambda step, *_, t=task: bar.update(t, completed=step))  # fmt: skip
        console.print(f"{family}: validation MAE {record['figures']['val_mae_mm']:.2f} mm, {record['seconds']:.0f} s")
        folders.append(run)
    return folders


def run_demo(out: Path, *, n: int, seed: int, steps: int, console: Console, overwrite: bool = False) -> dict:
    """Generate `n` heads into OUT/dataset, verify and draw them, train every model and compare them (an
    earlier demo at OUT is replaced only with `overwrite`)."""
    claim_output_folder(out, kind="demo", files=["subject.png", "gallery.png"], folders=["runs"], overwrite=overwrite)
    dataset = out / "dataset"
    with progress_bar() as bar:
        task = bar.add_task("synthesising heads", total=n)
        card = write_synthetic_dataset(
            dataset, n=n, seed=seed, spec=DEMO_SPEC, workers=2, on_subject=lambda _: bar.advance(task)
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
    runs = train_models(dataset, out / "runs", seed=seed, steps=steps, console=console)
    evaluation = evaluate_models(runs, dataset, "test", seed=seed, embedding_data=dataset)  # fitted on train
    write_report(evaluation, out / "report")
    console.print(f"the demo's own models ({n} heads; the GAN and diffusion model trained {steps} steps): a check that "
                  "the whole pipeline runs, not a ranking of the families")  # fmt: skip
    print_comparison(evaluation.record, console)
    ranking = recorded_ranking()
    if ranking is None:
        console.print("no benchmark ranking is recorded in this installation (python bench/families.py records one)")
    else:
        wide_console(console).print(ranking_table(ranking))
    console.print(f"pictures: {out / 'subject.png'}, {out / 'gallery.png'}; dataset: {dataset}; runs: {out / 'runs'}; "
                  f"report: {out / 'report' / 'report.html'}")  # fmt: skip
    return card
