"""The "Pose" section of the case report (HTML and a PDF page): method, fit quality, landmarks, the figure.

It reads the `pose` entry of case.json (see `facegen.use.pose`), so the report shows exactly what the case
records.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

WHAT_IT_MEANS = (
    "The face is predicted with the skull in the Frankfurt frame this pose puts it in (origin mid-porion, x to "
    "the left, y up, z forward, mm); a wrong pose misplaces the face. Check the figure: the porions (red) should "
    "sit at the top of the ear canals and the orbitale at the lowest point of the orbit's rim (the orange "
    "Frankfurt line runs through them), and the cyan line down the middle of the face."
)


def pose_facts(pose: dict[str, Any]) -> list[tuple[str, str]]:
    """The pose's figures as (label, value) rows: method, share of bone matched, residual, verdict, thresholds."""
    share, residual = pose["bone_matched_share"], pose["residual_mm"]
    rows = [("method", pose["method"])]
    if share is not None:
        rows += [
            ("share of the skull model's bone matched", f"{share:.0%} (weak below {pose['weak_below_share']:.0%})"),
            ("residual (median distance of the matches)", f"{residual:.2f} mm"),
        ]
    if pose.get("symmetry_matched_share") is not None:  # a bone-only fit: the bone's own mirror symmetry
        rows += [
            ("bone matched by its mirror image", f"{pose['symmetry_matched_share']:.0%}"),
            ("midline's angle to the bone's symmetry plane", f"{pose['midline_tilt_from_symmetry_deg']:.1f} degrees"),
        ]
    rows.append(("verdict", verdict(pose)))
    if pose.get("thresholds_hu"):
        t = pose["thresholds_hu"]
        rows.append(("segmentation thresholds", f"bone {t['bone']:g} HU, skin {t['skin']:g} HU"))
    return rows


def verdict(pose: dict[str, Any]) -> str:
    """One line: trusted, set by the examiner's landmarks, or weak and accepted."""
    if pose["bone_matched_share"] is None:
        return "set by the examiner's landmarks"
    if pose["weak"]:
        return "WEAK: accepted by the examiner (--accept-weak-pose); the face may be misplaced"
    return "trusted"


def pose_html(pose: dict[str, Any], figure_png: bytes | None) -> str:
    """The section as HTML: a warning when weak, the figures, the landmark table and the figure."""
    parts = ["<h2>Pose</h2>"]
    if pose["weak"]:
        parts.append(f"<p class='warn'>Weak pose: {html.escape(verdict(pose))}. Give porions and left orbitale with "
                     "<code>--landmarks FILE</code> to set it.</p>")  # fmt: skip
    facts = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pose_facts(pose))
    parts += [f"<table>{facts}</table>", f"<p>{html.escape(WHAT_IT_MEANS)}</p>", _landmark_table(pose)]
    if figure_png is not None:
        data = base64.b64encode(figure_png).decode()
        parts.append(f'<img alt="pose: canonical alignment, front and profile" src="data:image/png;base64,{data}">')
    return "".join(parts)


def _landmark_table(pose: dict[str, Any]) -> str:
    """The pose's landmarks (canonical frame, mm) as an HTML table."""
    head = "<tr><th>landmark</th><th>x (mm, left)</th><th>y (mm, up)</th><th>z (mm, forward)</th></tr>"
    cells = "".join(
        f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{v + 0.0:.1f}</td>" for v in point) + "</tr>"
        for name, point in pose["landmarks_canonical_mm"].items()
    )
    return f"<table><caption>Landmarks, canonical frame</caption>{head}{cells}</table>"


def pose_pdf_page(pdf: PdfPages, pose: dict[str, Any], figure_png: bytes | None) -> None:
    """One PDF page: the figures and the landmark table as text, the figure below."""
    fig = plt.figure(figsize=(8.27, 11.69))
    lines = ["Pose", "", *(f"{k}: {v}" for k, v in pose_facts(pose)), "", *textwrap.wrap(WHAT_IT_MEANS, 110), ""]
    lines += ["Landmarks, canonical frame (mm):", f"  {'':<26}{'x left':>8}{'y up':>8}{'z fwd':>8}"]
    lines += [f"  {name:<26}{p[0] + 0.0:8.1f}{p[1] + 0.0:8.1f}{p[2] + 0.0:8.1f}"  # + 0.0: no "-0.0"
              for name, p in pose["landmarks_canonical_mm"].items()]  # fmt: skip
    fig.text(0.06, 0.96, "\n".join(lines), va="top", family="monospace", fontsize=7)
    if figure_png is not None:
        ax = fig.add_axes((0.04, 0.03, 0.92, 0.28))
        ax.imshow(plt.imread(io.BytesIO(figure_png), format="png"))
        ax.set_axis_off()
    pdf.savefig(fig)
    plt.close(fig)
