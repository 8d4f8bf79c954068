"""The report's account of what the model does not know: its uncertainty, how unusual the skull is, missing
bone, face that fell inside the bone, and tissue depths beside the published ranges.

Every figure measured on synthetic data is labelled so; published figures are labelled as real-adult figures.
"""

from __future__ import annotations

import html
from typing import Any

NO_LANDMARKS = ("None of the standard landmarks is known for this skull: the pose came from a landmark file that "
                "names only the Frankfurt points. Add glabella, nasion, pogonion... to it to see their depths.")
WARN = "warn"
"""CSS class of a paragraph an examiner must not miss."""


def trust_lines(record: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(topic, statement, is a warning) for each check the case made, in reading order."""
    lines = []
    if "uncertainty" in record:
        u = record["uncertainty"]
        lines.append(("uncertainty", u["statement"], u.get("source") is None))
    if "skull_novelty" in record:
        n = record["skull_novelty"]
        lines.append(("how unusual is the skull", n["statement"], bool(n.get("out_of_distribution"))))
    if "missing_bone" in record:
        m = record["missing_bone"]
        lines.append(("missing bone", m["statement"], bool(m.get("parts"))))
    if "inside_bone" in record:
        i = record["inside_bone"]
        lines.append(("face inside the bone", i["statement"], not i["model_fits"]))
    return lines


def _depth_table(rows: list[dict[str, Any]]) -> str:
    head = ("<tr><th>landmark</th><th>this face (model, mm)</th><th>published mean (real adults, mm)</th>"
            "<th>published range, mean &plusmn; 2 SD (mm)</th><th>inside the range</th>"
            "<th>landmark moved onto the scanned bone (mm)</th></tr>")  # fmt: skip
    body = "".join(
        f"<tr><td>{html.escape(r['landmark'])}</td><td>{r['face_mm']:.1f}</td><td>{r['published_mean_mm']:.1f}</td>"
        f"<td>{r['published_low_mm']:.1f}-{r['published_high_mm']:.1f}</td>"
        f"<td>{'yes' if r['within'] else 'NO'}</td><td>{r.get('moved_to_bone_mm', 0.0):.1f}</td></tr>"
        for r in rows
    )
    return f"<table>{head}{body}</table>"


def trust_html(record: dict[str, Any]) -> str:
    """The section as HTML: each check's statement (warnings highlighted), then the tissue-depth tables."""
    parts = ["<h2>What the model does not know</h2>"]
    for topic, statement, warning in trust_lines(record):
        style = f" class='{WARN}'" if warning else ""
        parts.append(f"<p{style}><b>{html.escape(topic)}:</b> {html.escape(statement)}</p>")
    depth = record.get("tissue_depth")
    if depth:
        parts.append(f"<h3>Soft-tissue depth at the standard landmarks</h3><p>Measured {html.escape(depth['measured'])}"
                     f". Published: {html.escape(depth['published'])}.</p>")  # fmt: skip
        for name, rows in depth["faces"].items():
            if rows:
                parts += [f"<h4>{html.escape(name)}</h4>", _depth_table(rows)]
        if not any(depth["faces"].values()):
            parts.append(f"<p>{NO_LANDMARKS}</p>")
    return "".join(parts)


def trust_text(record: dict[str, Any]) -> list[str]:
    """The same section as lines of text for the PDF."""
    lines = ["What the model does not know:"]
    lines += [f"  {'WARNING ' if warn else ''}{topic}: {statement}" for topic, statement, warn in trust_lines(record)]
    depth = record.get("tissue_depth")
    if depth:
        lines += ["", f"Soft-tissue depth: measured {depth['measured']}; published: {depth['published']}."]
        for name, rows in depth["faces"].items():
            cells = [f"{r['landmark']} {r['face_mm']:.1f} ({r['published_low_mm']:.0f}-{r['published_high_mm']:.0f})"
                     f"{'' if r['within'] else ' OUT'}" for r in rows]  # fmt: skip
            lines.append(f"  {name}: " + "; ".join(cells))
    return lines
