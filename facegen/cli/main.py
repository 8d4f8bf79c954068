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


OVERWRITE_HELP = "Replace an earlier facegen output at --out (a folder holding other files is never replaced)."


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


def parse_split(text: str) -> tuple[float, float, float]:
    """'0.75,0.05,0.2' as (train, val, test) fractions: three non-negative numbers that sum to 1."""
    try:
        values = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"split {text!r} must be three fractions TRAIN,VAL,TEST, e.g. 0.75,0.05,0.2") from None
    if len(values) != 3 or min(values) < 0 or abs(sum(values) - 1.0) > 1e-6:
        raise typer.BadParameter(f"split {text!r} must be three non-negative fractions TRAIN,VAL,TEST summing to 1")
    train, val, test = values
    return train, val, test


def representation_spec(size: int, grid: str):
    """The representation spec of `--size` and `--grid`: square depth maps over the 256 mm field of view."""
    from facegen.data.representations.build import square_spec

    return square_spec(size, parse_grid(grid))


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
    size: Annotated[int, typer.Option(help="Depth-map size in pixels over a 256 mm square (256: 1 mm pixels).")] = 256,
    grid: Annotated[str, typer.Option(help="Voxel grid: N or NXxNYxNZ over a 256 mm cube.")] = "128",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = min(2, os.cpu_count() or 1),
    overwrite: Annotated[bool, typer.Option(help=OVERWRITE_HELP)] = False,
    skull_variation: Annotated[str, typer.Option(
        help="standard (the template's ICT shape modes) or wide (published craniometric variation, asymmetry, "
             "tooth loss, orbit walls and spine, scanner resolution and noise).")] = "standard",
    split: Annotated[str | None, typer.Option(
        help="Train, val and test fractions, e.g. 0.75,0.05,0.2 (stratified by sex and BMI band; "
             "default 0.7,0.15,0.15).")] = None,
) -> None:
    """Generate synthetic skull/face heads with known ground truth and write them as a dataset."""
    from facegen.data.dataset.writer import write_synthetic_dataset

    spec = representation_spec(size, grid)
    fractions = parse_split(split) if split is not None else None
    from facegen.cli.progress import progress_bar

    try:
        with progress_bar() as bar:
            task = bar.add_task("synthesising heads", total=n)
            card = write_synthetic_dataset(
                out, n=n, seed=seed, spec=spec, ct=ct, workers=workers, overwrite=overwrite,
                on_subject=lambda _: bar.advance(task), skull_variation=skull_variation, split=fractions,
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
    size: Annotated[int, typer.Option(help="Depth-map size in pixels over a 256 mm square (256: 1 mm pixels).")] = 256,
    grid: Annotated[str, typer.Option(help="Voxel grid: N or NXxNYxNZ over a 256 mm cube.")] = "128",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = min(2, os.cpu_count() or 1),
    overwrite: Annotated[bool, typer.Option(help=OVERWRITE_HELP)] = False,
) -> None:
    """Turn real scans into a dataset: segment, mesh, align to the canonical frame, represent.

    Re-running the same command skips finished cases; a failed case is reported and the others go on.
    Exit code 2 when some cases failed (the dataset holds the rest)."""
    from facegen.cli.progress import progress_bar
    from facegen.data.dataset.ingest import ingest_dataset, work_dir
    from facegen.data.scans.ingest import IngestOptions
    from facegen.viz.alignment import save_alignment_figure

    options = IngestOptions(
        skin_hu=skin_hu, bone_hu=bone_hu, hu_offset=hu_offset, force_intensity=force_intensity,
        keep_sex_age=keep_sex_age, series=series, mesh_units=mesh_units,
        spec=representation_spec(size, grid),
    )  # fmt: skip
    try:
        with progress_bar() as bar:
            task = bar.add_task("ingesting scans", total=len(inputs))
            card, outcomes = ingest_dataset(
                inputs, out, draw_alignment=save_alignment_figure, metadata=metadata, options=options,
                workers=workers, overwrite=overwrite, on_case=lambda _: bar.advance(task),
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
def models(
    build_default: Annotated[
        bool, typer.Option(help="Build (or rebuild) the default model used by `facegen reconstruct`.")
    ] = False,
) -> None:
    """List the registered model families (and build the default model on request)."""
    from facegen.models.registry import families

    table = Table(title="model families")
    table.add_column("name")
    table.add_column("what it is")
    for name, cls in families().items():
        table.add_row(name, cls.description)
    console.print(table)
    if build_default:
        from facegen.cli.progress import progress_bar
        from facegen.use.default_model import DEFAULT_SUBJECTS, build_default_model

        with progress_bar() as bar:
            task = bar.add_task("synthetic heads for the default model", total=DEFAULT_SUBJECTS)
            folder = build_default_model(on_subject=lambda _: bar.advance(task))
        console.print(f"built the default model in {folder} (statistical model, trained on synthetic heads)")


@app.command()
def train(
    model: Annotated[str, typer.Option(help="Model family (see `facegen models`).")],
    data: Annotated[Path, typer.Option(help="Dataset folder (its train split is used; val for validation).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, TensorBoard logs, model, run.json.")],
    config: Annotated[Path | None, typer.Option(help="TOML or JSON config; [model] holds options.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="key=value, e.g. steps=500 or model.lambda_l1=50 (repeatable).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in --out (fresh if none).")] = False,
    overwrite: Annotated[bool, typer.Option(help=OVERWRITE_HELP)] = False,
) -> None:
    """Train or fit a model family on a dataset. Under torchrun, every process runs this same command (DDP)."""
    from facegen.cli.progress import progress_bar
    from facegen.evaluation.validation import validation_figures
    from facegen.models.base import TrainableModel
    from facegen.models.registry import model_class
    from facegen.training.config import load_config
    from facegen.training.loop import train_run

    try:
        cfg = load_config(config, set_ or [], model=model)
        trained_in_steps = issubclass(model_class(cfg.model), TrainableModel)
        with progress_bar() as bar:
            task = bar.add_task(f"training {model}" if trained_in_steps else f"fitting {model}",
                                total=cfg.steps if trained_in_steps else None)  # fmt: skip

            def on_progress(step: int, total: int, losses: dict[str, float]) -> None:
                shown = ", ".join(f"{k} {v:.3g}" for k, v in losses.items())
                bar.update(task, completed=step, description=f"training {model}: {shown}")

            record = train_run(cfg, data, out, resume=resume, overwrite=overwrite, on_progress=on_progress,
                               validate=validation_figures)  # fmt: skip
    except (ValueError, FileExistsError) as exc:
        _fail(str(exc))
    if record:
        figures = ", ".join(f"{k} {v:.3g}" for k, v in record["figures"].items())
        console.print(f"trained {model} into {out / 'model'} in {record['seconds']:.0f} s; {figures}")


@app.command()
def evaluate(
    run: Annotated[list[Path], typer.Option("--run", help="Run folder of a trained model (repeatable).")],
    data: Annotated[Path, typer.Option(help="Dataset folder.")],
    split: Annotated[str, typer.Option(help="Split to score: test, val, train or all.")] = "test",
    out: Annotated[
        Path | None, typer.Option("--out", help="Report folder to write: report.html (self-contained) and report.json.")
    ] = None,
    distractors: Annotated[
        Path | None, typer.Option(help="Dataset whose faces join the identification gallery as distractors.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and face-pool draws.")] = 0,
    samples: Annotated[
        int | None, typer.Option(min=1, help="Samples per face from stochastic models (default: each model's own).")
    ] = None,
    embedding_data: Annotated[
        Path | None,
        typer.Option(help="Dataset whose train split fits a learned face embedding: identification a second way."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help=OVERWRITE_HELP)] = False,
) -> None:
    """Score trained models on a dataset split beside the dataset's floor: accuracy, identification, bias."""
    from facegen.cli.tables import print_comparison
    from facegen.evaluation.html_report import REPORT_KIND
    from facegen.evaluation.report import evaluate_models
    from facegen.io.output_folder import check_output_folder

    try:
        if out is not None:  # refused before the scoring, not after it
            check_output_folder(out, overwrite=overwrite, kind=REPORT_KIND)
        evaluation = evaluate_models(
            run, data, None if split == "all" else split, distractors=distractors, seed=seed, samples=samples,
            embedding_data=embedding_data,
        )
    except ValueError as exc:
        _fail(str(exc))
    print_comparison(evaluation.record, console)
    if out is not None:
        from facegen.evaluation.html_report import write_report

        try:
            write_report(evaluation, out, overwrite=overwrite)
        except ValueError as exc:
            _fail(str(exc))
        console.print(f"wrote {out / 'report.html'} and {out / 'report.json'}")


@app.command()
def reconstruct(
    input_path: Annotated[Path, typer.Argument(help="Skull: CT (DICOM folder/zip, NIfTI, MHA/NRRD) or mesh.")],
    out: Annotated[Path, typer.Option("--out", help="Case folder to write (a new folder; see --overwrite).")],
    sex: Annotated[str, typer.Option(help="F, M or unknown (then both are reconstructed).")] = "unknown",
    age: Annotated[float | None, typer.Option(help="Age in years (unknown: 30, 50 and 70 are shown).")] = None,
    bmi: Annotated[str, typer.Option(help="BMI value, low, normal, high or unknown (then all three).")] = "unknown",
    model: Annotated[str, typer.Option(help="A run folder from `facegen train`, or 'default'.")] = "default",
    samples: Annotated[
        int | None,
        typer.Option(min=1, help="Samples per face; several give an SD map (default: the model's own)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same input, model and seed give the same files.")] = 0,
    mesh_units: Annotated[str, typer.Option(help="Units of a skull mesh: mm, cm, m or in.")] = "mm",
    hu_offset: Annotated[float | None, typer.Option(help="Add this to stored CT values to get HU.")] = None,
    force_intensity: Annotated[bool, typer.Option(help="Accept a non-CT scan with the thresholds as given.")] = False,
    overwrite: Annotated[bool, typer.Option(help=OVERWRITE_HELP)] = False,
    landmarks: Annotated[
        Path | None,
        typer.Option(help="3D Slicer markups (.mrk.json, .fcsv) or CSV with porion_l, porion_r, orbitale_l (and any "
                     "other landmarks) in the scan's coordinates: they set the pose instead of the automatic fit."),
    ] = None,
    accept_weak_pose: Annotated[
        bool, typer.Option(help="Go on when the automatic pose fit is weak (the case and report flag it).")
    ] = False,
    series: Annotated[int | None, typer.Option(help="DICOM series number to use when a study holds several.")] = None,
    bone_hu: Annotated[float, typer.Option(help="Bone threshold (HU).")] = 300.0,
    skin_hu: Annotated[float, typer.Option(help="Skin threshold (HU).")] = -300.0,
    genotypes: Annotated[
        Path | None,
        typer.Option(help="Genotype file (VCF, 23andMe/AncestryDNA raw file, HIrisPlex-S web-tool CSV): eye and hair "
                     "colour from DNA (HIrisPlex) join the report; the file itself is never copied into the case."),
    ] = None,
    genotype_sample: Annotated[str | None, typer.Option(help="The sample in --genotypes if it holds several.")] = None,
    skin_probabilities: Annotated[
        Path | None, typer.Option(help="The HIrisPlex-S web tool's output CSV: its skin-colour probabilities.")
    ] = None,
    head: Annotated[
        bool, typer.Option("--head/--no-head", help="Also fit the open ICT face model's complete head (eyes, ears, "
                           "neck) to each face, coloured by --genotypes when given (about 3 s per face).")
    ] = True,
) -> None:
    """Reconstruct a face from a skull: meshes, depth maps, renders, 3D viewer, case report and manifest."""
    from facegen.data.scans.ingest import IngestOptions
    from facegen.data.scans.scan import ScanError
    from facegen.use.reconstruct import reconstruct as run_case

    try:
        result = run_case(
            input_path, out, sex=sex, age=age, bmi=bmi, model=model, samples=samples, seed=seed,
            options=IngestOptions(mesh_units=mesh_units, hu_offset=hu_offset, force_intensity=force_intensity,
                                  series=series, bone_hu=bone_hu, skin_hu=skin_hu),
            overwrite=overwrite, landmarks=landmarks, accept_weak_pose=accept_weak_pose, console=console,
            genotypes=genotypes, genotype_sample=genotype_sample, skin_probabilities=skin_probabilities,
            complete_head=head,
        )  # fmt: skip
    except (ValueError, ScanError) as exc:
        _fail(str(exc))
    console.print(f"wrote case {out}: {len(result.variants)} face(s) ({', '.join(result.variants)}), "
                  f"{len(result.manifest)} files; open {out / 'report.html'}")  # fmt: skip


@app.command()
def slurm(
    model: Annotated[str, typer.Option(help="Model family.")],
    data: Annotated[Path, typer.Option(help="Dataset folder (as the cluster nodes see it).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder (a sweep puts one run per task under it).")],
    job_dir: Annotated[Path, typer.Option(help="Where to write train.sbatch, sweep.tsv and logs/.")],
    config: Annotated[Path | None, typer.Option(help="Config file passed to every task.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value for every task (repeatable).")] = None,
    sweep: Annotated[
        list[str] | None, typer.Option(help="key=v1,v2,...: one array task per combination (repeatable).")
    ] = None,
    nodes: Annotated[int, typer.Option(min=1)] = 1,
    gpus_per_node: Annotated[int, typer.Option(min=1)] = 1,
    cpus_per_gpu: Annotated[int, typer.Option(min=1)] = 8,
    mem_gb: Annotated[int, typer.Option(min=1)] = 64,
    time: Annotated[str, typer.Option(help="Wall-time limit, HH:MM:SS or D-HH:MM:SS.")] = "24:00:00",
    partition: Annotated[str | None, typer.Option()] = None,
    account: Annotated[str | None, typer.Option()] = None,
    job_name: Annotated[str, typer.Option()] = "facegen-train",
) -> None:
    """Write a SLURM job (torchrun across nodes and GPUs, requeue on preemption) or a sweep as a job array."""
    from facegen.training.config import load_config
    from facegen.training.slurm import SlurmResources, expand_sweep, write_slurm_job

    try:
        load_config(config, set_ or [], model=model)  # refuse a bad config here, not on the cluster
        for combination in expand_sweep(sweep) if sweep else []:
            load_config(config, [*(set_ or []), *(f"{k}={v}" for k, v in combination.items())], model=model)
        resources = SlurmResources(
            nodes=nodes, gpus_per_node=gpus_per_node, cpus_per_gpu=cpus_per_gpu, mem_gb=mem_gb, time=time,
            partition=partition, account=account,
        )  # fmt: skip
        script = write_slurm_job(
            job_dir, model=model, data=data.resolve(), run=out.resolve(), config=config.resolve() if config else None,
            overrides=set_ or [], resources=resources, sweep=sweep or None, job_name=job_name,
        )  # fmt: skip
    except ValueError as exc:
        _fail(str(exc))
    console.print(f"wrote {script}; submit it with: sbatch {script}")


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
    n: Annotated[int, typer.Option(min=12, help="Subjects to generate.")] = 80,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    steps: Annotated[int, typer.Option(min=1, help="Training steps of the small GAN and diffusion model.")] = 300,
    overwrite: Annotated[bool, typer.Option(help=OVERWRITE_HELP)] = False,
) -> None:
    """Run the main job end to end on embedded defaults: synthetic heads, every model trained and compared."""
    from facegen.cli.demo import run_demo

    try:
        run_demo(out, n=n, seed=seed, steps=steps, console=console, overwrite=overwrite)
    except ValueError as exc:
        _fail(str(exc))


from facegen.cli.phenotype import phenotype  # noqa: E402 (appearance from DNA: facegen/cli/phenotype.py)
from facegen.cli.service import admin_app, serve, worker  # noqa: E402 (the service commands: facegen/cli/service.py)
from facegen.cli.submit import submit  # noqa: E402 (the service's client command: facegen/cli/submit.py)

app.command()(serve)
app.command()(worker)
app.command()(submit)
app.command()(phenotype)
app.add_typer(admin_app, name="admin")

if __name__ == "__main__":
    app()
