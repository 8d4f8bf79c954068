"""`facegen submit`: send a skull to a facegen service, follow the case, download it into a new folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(soft_wrap=True)
OVERWRITE_HELP = "Replace an earlier facegen case at --out (a folder holding other files is never replaced)."


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


def submit(
    input_path: Annotated[Path, typer.Argument(help="Skull: CT (zip of DICOM, NIfTI, MHA/NRRD) or skull mesh.")],
    server: Annotated[str, typer.Option(help="The service's URL, e.g. http://127.0.0.1:8000.")],
    key: Annotated[str, typer.Option(help="An examiner (or admin) API key.", envvar="FACEGEN_KEY")],
    out: Annotated[Path, typer.Option("--out", help="Case folder to write (a new folder; see --overwrite).")],
    sex: Annotated[str, typer.Option(help="F, M or unknown.")] = "unknown",
    age: Annotated[float | None, typer.Option(help="Age in years.")] = None,
    bmi: Annotated[str, typer.Option(help="BMI value, low, normal, high or unknown.")] = "unknown",
    landmarks: Annotated[Path | None, typer.Option(help="Landmarks that set the pose (as for reconstruct).")] = None,
    genotypes: Annotated[
        Path | None,
        typer.Option(
            help="Genotype file (VCF, 23andMe/AncestryDNA raw file, HIrisPlex-S web-tool CSV): eye and hair "
            "colour from DNA; the service keeps only the HIrisPlex dosages, never the file."
        ),
    ] = None,
    genotype_sample: Annotated[str | None, typer.Option(help="The sample in --genotypes if it holds several.")] = None,
    skin_probabilities: Annotated[
        Path | None, typer.Option(help="The HIrisPlex-S web tool's output CSV: its skin-colour probabilities.")
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the case.")] = 3600.0,
    overwrite: Annotated[bool, typer.Option(help=OVERWRITE_HELP)] = False,
) -> None:
    """Reconstruct on a facegen service: upload, wait with progress, download the case into --out."""
    from facegen.client import CASE_KIND, CaseTimeoutError, Client, FacegenAPIError
    from facegen.io.output_folder import check_output_folder

    try:
        check_output_folder(out, overwrite=overwrite, kind=CASE_KIND)  # refused before the upload, not after
        with Client(server, key) as client:
            case_id = client.submit(input_path, sex=sex, age=age, bmi=bmi, landmarks=landmarks, genotypes=genotypes,
                                    genotype_sample=genotype_sample, skin_probabilities=skin_probabilities)  # fmt: skip
            console.print(f"submitted case {case_id}")
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(),
                          console=console) as bar:  # fmt: skip
                task = bar.add_task("queued", total=1.0)
                state = client.wait(case_id, timeout=timeout, poll=0.5, on_status=lambda s: bar.update(
                    task, completed=s["progress"], description=f"case {s['status']}"))  # fmt: skip
            if state["status"] != "done":
                _fail(f"case {case_id} failed on the server: {state.get('error') or 'no reason given'}")
            client.download(case_id, out, overwrite=overwrite)
    except (ValueError, OSError, FacegenAPIError, CaseTimeoutError) as exc:
        _fail(str(exc))
    console.print(f"wrote case {out}: {len(state['files'])} files; open {out / 'report.html'}")
