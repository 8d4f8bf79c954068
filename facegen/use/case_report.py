"""The case report: what went in (by hash), what was used, the faces, how far to trust them, and what it is not.

HTML (self-contained, pictures inline) and PDF (matplotlib, no timestamps). Personal data never appears:
the input is named by its file name and sha256 only; DICOM headers were dropped at the reader.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from typing import Any
from urllib.parse import quote

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from facegen.use.case_frames import frames_summary  # noqa: E402
from facegen.use.phenotype_section import phenotype_html, phenotype_pdf_page  # noqa: E402
from facegen.use.pose_section import pose_html, pose_pdf_page, verdict  # noqa: E402
from facegen.use.trust_section import trust_html, trust_text  # noqa: E402

PICTURES = ("front_profile", "three_quarter", "overlay", "uncertainty")


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _rows(items: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in items)
    return f"<table>{cells}</table>"


def _facts(record: dict[str, Any]) -> list[tuple[str, Any]]:
    given, model = record["metadata_given"], record["model"]
    age, bmi = given["age_years"] or "unknown", given["bmi"] or "unknown"
    return [
        ("input", f"{record['input']['name']} (sha256 {record['input']['sha256']})"),
        ("metadata given", f"sex {given['sex']}, age {age}, BMI {bmi}"),
        ("scan", _scan_kind(record)),
        ("faces made", ", ".join(record["variants"])),
        ("model", f"{model['name']} ({model['family']}), trained on {model['trained_on']}"),
        ("weights sha256", record["model"]["weights_sha256"]),
        ("samples per face / seed", f"{record['samples']} / {record['seed']}"),
        ("coordinates", frames_summary(record["frames"]) if "frames" in record else "not recorded"),
        ("pose", f"{record['pose']['method']}: {verdict(record['pose'])}" if "pose" in record else "not recorded"),
        ("software", f"facegen {record['software_version']}"),
    ]


def _scan_kind(record: dict[str, Any]) -> str:
    """What the input held: a skull mesh, a dry skull (bone only), or a CT with skin."""
    skin = record.get("skin")
    if skin is None:
        return "skull surface mesh (bone only)" if record["input"]["reader"].startswith("mesh") else "not recorded"
    return "dry skull: CT of bone only, no skin (the pose is from the bone alone)" if skin.get("dry_skull") else (
        "CT with skin (the skin helped the pose; the face is predicted from the skull alone)")


def _accuracy_rows(accuracy: dict[str, Any] | None) -> str:
    if not accuracy:
        return ("<p>No evaluation of this model is attached: its accuracy is unknown here. Run <code>facegen "
                "evaluate --run RUN --out RUN/evaluation</code> to attach one.</p>")  # fmt: skip
    return _rows([(k, v) for k, v in accuracy.items()])


def case_report_html(record: dict[str, Any], files: dict[str, bytes]) -> str:
    """The report page; `files` holds the case's pictures by their case-folder path."""
    parts = [f"<h1>facegen case report</h1><p class='warn'>{html.escape(record['statement'])}</p>",
             "<h2>Case</h2>", _rows(_facts(record)),
             "<h2>How far to trust it</h2>", _accuracy_rows(record.get("accuracy")), trust_html(record)]  # fmt: skip
    if "pose" in record:
        parts.append(pose_html(record["pose"], files.get(record["pose"]["figure"])))
    if record.get("phenotype"):
        parts.append(phenotype_html(record["phenotype"]))
    for variant in record["variants"]:
        parts.append(f"<h2>Face: {html.escape(variant)}</h2>")
        for picture in PICTURES:
            png = files.get(f"{variant}/{picture}.png")
            if png is not None:
                parts.append(_img(png, f"{variant} {picture}"))
        link = html.escape(f"viewer.html#variant={quote(variant, safe='')}")
        parts.append(f"<p>3D: <a href='{link}'>viewer.html</a> (skull and every face; this one is <code>"
                     f"{html.escape(variant)}</code> in its menu); meshes in the scan's coordinates in <code>"
                     f"{html.escape(variant)}/</code> (<code>face.ply/.obj/.stl/.glb</code>) and canonical copies "
                     "beside them.</p>")  # fmt: skip
    style = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
             "img{max-width:100%;margin:.5em 0}.warn{background:#fff3cd;padding:.8em;border:1px solid #e0c36b}")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>facegen case report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")  # fmt: skip


def case_report_pdf(record: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """The same report as a PDF: a text page, the pose page, then one page of pictures per face (no creation
    date)."""
    buf = io.BytesIO()
    with PdfPages(buf, metadata={"Creator": f"facegen {record['software_version']}", "CreationDate": None}) as pdf:
        fig = plt.figure(figsize=(8.27, 11.69))
        lines = ["facegen case report", "", *_wrap(record["statement"]), ""]
        lines += [f"{k}: {v}" for k, v in _facts(record)]
        accuracy = record.get("accuracy") or {"accuracy": "no evaluation attached"}
        lines += ["", "How far to trust it:", *(f"  {k}: {v}" for k, v in accuracy.items()), "", *trust_text(record)]
        fig.text(0.06, 0.96, "\n".join(_wrap_all(lines)), va="top", family="monospace", fontsize=7.5)
        pdf.savefig(fig)
        plt.close(fig)
        if "pose" in record:
            pose_pdf_page(pdf, record["pose"], files.get(record["pose"]["figure"]))
        if record.get("phenotype"):
            phenotype_pdf_page(pdf, record["phenotype"])
        for variant in record["variants"]:
            pictures = [p for p in PICTURES if f"{variant}/{p}.png" in files]
            fig, axes = plt.subplots(len(pictures), 1, figsize=(8.27, 11.69), squeeze=False)
            for ax, picture in zip(axes[:, 0], pictures, strict=True):
                ax.imshow(plt.imread(io.BytesIO(files[f"{variant}/{picture}.png"]), format="png"))
                ax.set_axis_off()
            fig.suptitle(f"{variant}: approximation to aid identification, not an identification", fontsize=9)
            pdf.savefig(fig)
            plt.close(fig)
    return buf.getvalue()


def _wrap(text: str, width: int = 100) -> list[str]:
    return textwrap.wrap(text, width)


def _wrap_all(lines: list[str]) -> list[str]:
    return [part for line in lines for part in (_wrap(line) or [""])]


def accuracy_for_case(report: dict[str, Any], model_name: str, subject_groups: dict[str, str]) -> dict[str, Any] | None:
    """A model's measured figures from an evaluation report, overall and for this subject's groups."""
    model = next((m for m in report.get("models", []) if m["name"] == model_name), None)
    if model is None:
        return None
    mae = model["metrics"]["mae_mm"]
    out: dict[str, Any] = {
        "evaluated on": f"{report['n_subjects']} {'synthetic' if report.get('floor') else 'scanned'} subjects "
                        f"({report['split']} split)",
        "mean absolute error (all)": f"{mae['mean']:.2f} mm (SD {mae['sd']:.2f})",
        "share within 2.5 mm": f"{model['metrics']['within_2_5mm']['mean']:.0%}",
        "rank-1 identification": f"{model['identification']['rank_1']:.0%} in a gallery of "
                                 f"{model['identification']['gallery_size']} (chance "
                                 f"{model['identification']['rank_1_chance']:.1%})",
    }  # fmt: skip
    calibration = model.get("calibration")
    if calibration is not None:
        out["uncertainty: 95% band holds the truth"] = (
            f"{calibration['coverage']:.1%} of face points (target 95%); the stated SD tracks the error with "
            f"Spearman r = {calibration['spearman_sd_error']:.2f}; mean SD {calibration['mean_sd_mm']:.2f} mm"
        )
    for by, group in subject_groups.items():
        g = model["bias"]["mae_mm"].get(by, {}).get("groups", {}).get(group)
        if g and g.get("mean") is not None:
            low, high = g.get("ci_low"), g.get("ci_high")
            interval = f" [95% CI {low:.2f}-{high:.2f}]" if low is not None and high is not None else ""
            out[f"MAE for {by} {group}"] = f"{g['mean']:.2f} mm{interval} (n={g['n']})"
    return out

