"""`facegen phenotype`: eye colour, hair colour and hair shade from a genotype file (HIrisPlex), as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(soft_wrap=True)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code=2)


def phenotype(
    genotypes: Annotated[
        Path,
        typer.Argument(
            help="VCF (.vcf/.vcf.gz), 23andMe or AncestryDNA raw file, or the HIrisPlex-S web tool's input CSV."
        ),
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    sample: Annotated[str | None, typer.Option(help="The sample to read when the file holds several.")] = None,
    skin_probabilities: Annotated[
        Path | None,
        typer.Option(
            help="The HIrisPlex-S web tool's output CSV: its skin-colour probabilities are shown (facegen "
            "has no skin model: its coefficients are not published)."
        ),
    ] = None,
) -> None:
    """Predict eye colour, hair colour and hair shade from DNA with the published HIrisPlex model."""
    from facegen.models.appearance.hirisplex import phenotype_from_files

    try:
        prediction = phenotype_from_files(genotypes, sample=sample, skin_probabilities=skin_probabilities)
    except ValueError as exc:
        _fail(str(exc))
    summary = prediction.summary()
    if json_output:
        typer.echo(json.dumps(summary, indent=2))
        return
    console.print(phenotype_table(summary))
    if summary["missing"]:
        console.print(f"missing: {', '.join(summary['missing'])}")
    for note in summary["notes"]:
        console.print(f"[yellow]note:[/] {escape(note)}")


def phenotype_table(summary: dict) -> Table:
    """The prediction as a Rich table: trait, class, probability, range over the missing genotypes, accuracy."""
    from facegen.models.appearance.hirisplex_coefficients import ACCURACY

    table = Table(title="appearance from DNA (HIrisPlex)")
    for column in ("trait", "class", "probability", "range (missing markers)", "published accuracy"):
        table.add_column(column)
    for trait in ("eye", "hair_colour", "hair_shade", "skin"):
        probabilities, ranges = summary[trait], summary["ranges"].get(trait, {})
        accuracy = ACCURACY.get(trait) or {}
        if probabilities is None:
            shown = "unavailable" if trait == "skin" else "refused"
            table.add_row(trait.replace("_", " "), "-", shown, _range(ranges) if ranges else "", "")
            continue
        for k, p in probabilities.items():
            figure = accuracy.get("values", {}).get(k)
            measure = "" if figure is None else f"{figure:.2f} {accuracy['short']}"
            table.add_row(trait.replace("_", " "), k.replace("_", " "), _p(p),
                          _range({k: ranges[k]}) if k in ranges else "", measure)  # fmt: skip
    return table


def _p(p: float) -> str:
    """A probability to three decimals, with '<0.001' and '>0.999' instead of a rounded 0 or 1."""
    return "<0.001" if p < 0.0005 else ">0.999" if p > 0.9995 else f"{p:.3f}"


def _range(ranges: dict[str, list[float]]) -> str:
    return "; ".join(f"{k.replace('_', ' ')} {_p(lo)} to {_p(hi)}" if len(ranges) > 1 else f"{_p(lo)} to {_p(hi)}"
                     for k, (lo, hi) in ranges.items())  # fmt: skip
