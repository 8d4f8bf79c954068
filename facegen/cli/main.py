"""The facegen command line: a thin shell over the Python API."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from facegen import __version__

app = typer.Typer(help="facegen: forensic craniofacial reconstruction from the skull.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect and check datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(soft_wrap=True)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


def parse_grid(text: str) -> tuple[int, int, int]:
    """'128' or '512x512x102' as a grid shape."""
    parts = text.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise typer.BadParameter(f"grid {text!r} must be N or NXxNYxNZ, e.g. 128 or 512x512x102") from None
    if len(sizes) == 1:
        sizes *= 3
    if len(sizes) != 3 or min(sizes) < 2:
        raise typer.BadParameter(f"grid {text!r} must be N or NXxNYxNZ with sizes of at least 2")
    return tuple(sizes)


@app.command()
def version() -> None:
    """Print the facegen version."""
    console.print(__version__)


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Dataset folder to create.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of subjects.")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same dataset, byte for byte.")] = 0,
    ct: Annotated[bool, typer.Option("--ct", help="Also write a CT-like NIfTI volume per subject.")] = False,
    size: Annotated[int, typer.Option(help="Depth-map size in pixels (square, 1 mm per pixel).")] = 256,
    grid: Annotated[str, typer.Option(help="Voxel grid: N or NXxNYxNZ over a 256 mm cube.")] = "128",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = min(2, os.cpu_count() or 1),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset folder.")] = False,
) -> None:
    """Generate synthetic skull/face heads with known ground truth and write them as a dataset."""
    from facegen.data.dataset.writer import write_synthetic_dataset
    from facegen.data.representations.build import RepresentationSpec
    from facegen.data.representations.depth_map import DepthView
    from facegen.data.representations.voxel_grid import GridSpec

    spec = RepresentationSpec(DepthView(shape=(size, size)), GridSpec(shape=parse_grid(grid)))
    from facegen.cli.progress import progress_bar

    try:
        with progress_bar() as bar:
            task = bar.add_task("synthesising heads", total=n)
            card = write_synthetic_dataset(
                out, n=n, seed=seed, spec=spec, ct=ct, workers=workers, overwrite=overwrite,
                on_subject=lambda _: bar.advance(task),
            )  # fmt: skip
    except (FileExistsError, ValueError) as exc:
        _fail(str(exc))
    floor = card["floor"]
    console.print(
        f"wrote {card['n_subjects']} subjects to {out}; floor {floor['surface_mm']['mean']:.2f} mm (surface), "
        f"{floor['depth_mae_mm']['mean']:.2f} mm (depth MAE)"
    )


@app.command()
def ingest(
    inputs: Annotated[
        list[Path], typer.Argument(help="CT scans (DICOM folder or .zip, NIfTI, MHA/MHD, NRRD) or skull meshes.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Dataset folder to build (same layout as `facegen synth`).")],
    metadata: Annotated[
        Path | None,
        typer.Option(
            help="CSV with subject_id, sex, age_years, bmi[, group, input, landmarks]; rows match inputs by "
            "the input column or by file name."
        ),
    ] = None,
    skin_hu: Annotated[float, typer.Option(help="Skin threshold (HU).")] = -300.0,
    bone_hu: Annotated[float, typer.Option(help="Bone threshold (HU).")] = 300.0,
    hu_offset: Annotated[
        float | None, typer.Option(help="Add this to stored values to get HU (e.g. -1000); detected when not given.")
    ] = None,
    force_intensity: Annotated[bool, typer.Option(help="Accept a non-CT scan with the thresholds as given.")] = False,
    keep_sex_age: Annotated[
        bool, typer.Option(help="Keep sex and age from DICOM headers (nothing else is kept).")
    ] = False,
    series: Annotated[int | None, typer.Option(help="DICOM series number to use when a study holds several.")] = None,
    mesh_units: Annotated[str, typer.Option(help="Units of skull meshes: mm, cm, m or in.")] = "mm",
    size: Annotated[int, typer.Option(help="Depth-map size in pixels (square, 1 mm per pixel).")] = 256,
    grid: Annotated[str, typer.Option(help="Voxel grid: N or NXxNYxNZ over a 256 mm cube.")] = "128",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = min(2, os.cpu_count() or 1),
) -> None:
    """Turn real scans into a dataset: segment, mesh, align to the canonical frame, represent.

    Re-running the same command skips finished cases; a failed case is reported and the others go on.
    Exit code 2 when some cases failed (the dataset holds the rest)."""
    from facegen.cli.progress import progress_bar
    from facegen.data.dataset.ingest import ingest_dataset, work_dir
    from facegen.data.representations.build import RepresentationSpec
    from facegen.data.representations.depth_map import DepthView
    from facegen.data.representations.voxel_grid import GridSpec
    from facegen.data.scans.ingest import IngestOptions

    options = IngestOptions(
        skin_hu=skin_hu, bone_hu=bone_hu, hu_offset=hu_offset, force_intensity=force_intensity,
        keep_sex_age=keep_sex_age, series=series, mesh_units=mesh_units,
        spec=RepresentationSpec(DepthView(shape=(size, size)), GridSpec(shape=parse_grid(grid))),
    )  # fmt: skip
    try:
        with progress_bar() as bar:
            task = bar.add_task("ingesting scans", total=len(inputs))
            card, outcomes = ingest_dataset(
                inputs, out, metadata=metadata, options=options, workers=workers,
                on_case=lambda _: bar.advance(task),
            )  # fmt: skip
    except ValueError as exc:
        _fail(str(exc))
    table = Table(title="ingest")
    for column in ("subject", "result"):
        table.add_column(column)
    for o in outcomes:
        done = "done (earlier run)" if o.resumed else "done"
        table.add_row(o.subject_id, done if o.ok else f"[red]{escape(o.message)}")
    console.print(table)
    failed = [o for o in outcomes if not o.ok]
    if card is not None:
        console.print(f"wrote {card['n_subjects']} subjects to {out}")
    if failed:
        console.print(
            f"[red]{len(failed)} of {len(outcomes)} cases failed[/red]; listed in {work_dir(out) / 'failures.json'}. "
            "Fix them and run the same command again: finished cases are kept."
        )
        raise typer.Exit(2)


@app.command()
def models() -> None:
    """List the registered model families."""
    from facegen.models.registry import families

    table = Table(title="model families")
    table.add_column("name")
    table.add_column("what it is")
    for name, cls in families().items():
        table.add_row(name, cls.description)
    console.print(table)


@data_app.command("info")
def data_info(dataset: Annotated[Path, typer.Argument(help="Dataset folder.")]) -> None:
    """Summarise a dataset: counts, floor, representations, size."""
    from facegen.data.dataset.info import dataset_summary

    try:
        summary = dataset_summary(dataset)
    except ValueError as exc:
        _fail(str(exc))
    table = Table(title=f"dataset {dataset}", show_header=False)
    for key, value in summary.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    console.print(table)


@data_app.command("verify")
def data_verify(dataset: Annotated[Path, typer.Argument(help="Dataset folder.")]) -> None:
    """Check every file of a dataset; name each broken one. Exit code 1 when anything is wrong."""
    from facegen.data.dataset.verify import verify_dataset

    problems = verify_dataset(dataset)
    for p in problems:
        console.print(f"[red]broken:[/] {p}")
    if problems:
        raise typer.Exit(code=1)
    console.print(f"[green]ok:[/] {dataset} is whole")


@app.command()
def show(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder.")],
    subject: Annotated[str, typer.Option(help="Subject id, e.g. S00000.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file to write.")],
) -> None:
    """Draw skull depth, face depth, tissue depth and shaded 3D views of one subject."""
    from facegen.viz.show import show_subject

    try:
        show_subject(dataset, subject, output)
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"wrote {output}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's outputs.")] = Path("demo-output"),
    n: Annotated[int, typer.Option(min=3, help="Subjects to generate.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Run the main job end to end on embedded defaults: generate a small dataset and draw it."""
    from facegen.cli.demo import run_demo

    run_demo(out, n=n, seed=seed, console=console)


if __name__ == "__main__":
    app()
