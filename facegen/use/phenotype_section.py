"""The "Appearance from DNA" section of the case report (HTML and a PDF page): eye and hair colour from HIrisPlex.

It reads the `phenotype` entry of case.json (see `facegen.models.appearance.hirisplex`): the probabilities, their
ranges where markers are missing, the published accuracy, the caveats (admixed populations, no skin model, the
method's patents) and the sources, so the report shows exactly what the case records. No genotype file, sample
name or marker outside HIrisPlex is in that entry, so none can reach the report.
"""

from __future__ import annotations

import html
import textwrap
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

TITLE = "Appearance from DNA (HIrisPlex)"
TRAITS = {"eye": "eye colour", "hair_colour": "hair colour", "hair_shade": "hair shade", "skin": "skin colour"}
WHAT_IT_IS = (
    "Eye colour, hair colour and hair shade predicted from DNA with the published HIrisPlex models (multinomial "
    "logistic regression on the HIrisPlex SNPs). These are probabilities for the person's natural colouring, with "
    "the accuracy the authors measured; they are not a description and must not be read as one."
)


def _p(p: float) -> str:
    return "<0.001" if p < 0.0005 else ">0.999" if p > 0.9995 else f"{p:.3f}"


def phenotype_rows(phenotype: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(trait, class, probability, range over missing genotypes, published accuracy) for every shown class."""
    rows = []
    for trait, label in TRAITS.items():
        probabilities = phenotype["predictions"].get(trait)
        ranges = phenotype["ranges"].get(trait, {})
        accuracy = phenotype["accuracy"].get(trait) or {}
        if probabilities is None:
            shown = "unavailable (no published model)" if trait == "skin" else "refused"
            rows.append((label, "-", shown, "", ""))
            continue
        for k, p in probabilities.items():
            spread = f"{_p(ranges[k][0])} to {_p(ranges[k][1])}" if k in ranges else ""
            figure = accuracy.get("values", {}).get(k)
            rows.append((label, k.replace("_", " "), _p(p), spread,
                         "" if figure is None else f"{figure:.2f} {accuracy['short']}"))  # fmt: skip
    return rows


def phenotype_notes(phenotype: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The section's lists under their headings: what to know, missing markers, caveats, accuracy, sources."""
    missing = [f"{rsid}: {phenotype['missing_reasons'].get(rsid, 'missing')}" for rsid in phenotype["missing"]]
    accuracy = [f"{TRAITS[t]}: {a['measure']} [{a['source']}]" if a else f"{TRAITS[t]}: no published figure in "
                "these sources" for t, a in phenotype["accuracy"].items()]  # fmt: skip
    return [
        ("What to know", list(phenotype["statements"])),
        ("Missing markers", missing or ["none: every HIrisPlex marker was called"]),
        ("Caveats", list(phenotype["caveats"])),
        ("Published accuracy", accuracy),
        ("Sources", [f"[{key}] {text}" for key, text in phenotype["sources"].items()]),
        ("Genetic privacy", [phenotype["privacy"]]),
    ]


def _dosage_table(phenotype: dict[str, Any]) -> str:
    head = "<tr><th>marker</th><th>counted allele (plus strand)</th><th>copies used</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(rsid)}</td><td>{html.escape(phenotype['counted_alleles'][rsid])}</td>"
        f"<td>{'missing' if d is None else d}</td></tr>"
        for rsid, d in phenotype["dosages"].items()
    )
    caption = f"HIrisPlex genotypes used ({html.escape(phenotype['input_format'])})"
    return f"<table><caption>{caption}</caption>{head}{body}</table>"


def phenotype_html(phenotype: dict[str, Any]) -> str:
    """The section as HTML: refusals as warnings, the probability table, the notes, the genotypes used."""
    parts = [f"<h2>{TITLE}</h2>", f"<p>{html.escape(WHAT_IT_IS)}</p>"]
    for trait, reason in phenotype["refused"].items():
        parts.append(f"<p class='warn'><b>{html.escape(TRAITS[trait])} refused:</b> {html.escape(reason)}</p>")
    head = "".join(f"<th>{h}</th>" for h in ("trait", "class", "probability", "range over missing genotypes",
                                             "published accuracy"))  # fmt: skip
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in phenotype_rows(phenotype))  # fmt: skip
    parts.append(f"<table><tr>{head}</tr>{body}</table>")
    for heading, items in phenotype_notes(phenotype):
        parts.append(f"<h3>{html.escape(heading)}</h3><ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items)
                     + "</ul>")  # fmt: skip
    parts.append(_dosage_table(phenotype))
    return "".join(parts)


def phenotype_lines(phenotype: dict[str, Any]) -> list[str]:
    """The same section as lines of text (the PDF page)."""
    lines = [TITLE, "", *textwrap.wrap(WHAT_IT_IS, 110), ""]
    lines += [f"WARNING {TRAITS[t]} refused: {r}" for t, r in phenotype["refused"].items()]
    lines += [f"  {'trait':<13}{'class':<14}{'p':>8}  {'range (missing)':<20}accuracy"]
    lines += [f"  {t:<13}{k:<14}{p:>8}  {r:<20}{a}" for t, k, p, r, a in phenotype_rows(phenotype)]
    for heading, items in phenotype_notes(phenotype):
        lines += ["", f"{heading}:"] + [w for item in items for w in textwrap.wrap(f"- {item}", 110)]
    used = [f"{rsid} {'-' if d is None else d}" for rsid, d in phenotype["dosages"].items()]
    lines += ["", f"HIrisPlex genotypes used (copies of the counted allele; {phenotype['input_format']}):"]
    lines += textwrap.wrap(", ".join(used), 110)
    return lines


def phenotype_pdf_page(pdf: PdfPages, phenotype: dict[str, Any]) -> None:
    """One PDF page holding the section as text."""
    fig = plt.figure(figsize=(8.27, 11.69))
    fig.text(0.06, 0.96, "\n".join(phenotype_lines(phenotype)), va="top", family="monospace", fontsize=6.5)
    pdf.savefig(fig)
    plt.close(fig)
