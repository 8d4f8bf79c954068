"""The evaluation report as one self-contained HTML page (pictures inline) and a JSON file of every figure.

Nothing is fetched from the network and nothing varies between runs: the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from facegen import __version__
from facegen.data.groups import GROUPINGS
from facegen.evaluation.report import FLOOR, Evaluation, scored_rows
from facegen.io.output_folder import staged_directory
from facegen.viz import report_figures as figs

REPORT_KIND = "evaluation report"
"""The output-folder kind of a report folder (see facegen.io.output_folder)."""
CASES = 3
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0 1.6em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead { background: #f0f0f0; }
tr.floor { color: #666; font-style: italic; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
.note { color: #555; font-size: 0.9em; max-width: 60em; }
"""


def _fmt(value: Any, spec: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _accuracy(record: dict[str, Any]) -> str:
    header = ["model", "MAE mm (SD)", "RMSE mm", "signed mm", "<= 2.5 mm", "<= 5 mm", "SSIM", "PSNR dB", "coverage"]
    rows, classes = [], []
    for m in scored_rows(record):
        s = m["metrics"]
        rows.append([m["name"], f"{s['mae_mm']['mean']:.2f} ({s['mae_mm']['sd']:.2f})", _fmt(s["rmse_mm"]["mean"]),
                     _fmt(s["signed_mm"]["mean"], "+.2f"), _fmt(s["within_2_5mm"]["mean"], ".0%"),
                     _fmt(s["within_5mm"]["mean"], ".0%"), _fmt(s["ssim"]["mean"], ".3f"),
                     _fmt(s["psnr_db"]["mean"], ".1f"), _fmt(m["coverage"], ".0%")])  # fmt: skip
        classes.append("floor" if m["name"] == FLOOR else "")
    return _table(header, rows, classes)


def _regions(record: dict[str, Any]) -> str:
    models = scored_rows(record)
    regions = list(models[0]["regions"])
    rows = [[r, *(_fmt(m["regions"][r]["mae_mm"]["mean"]) for m in models)] for r in regions]
    return _table(["region (MAE mm)", *(m["name"] for m in models)], rows)


def _identification(record: dict[str, Any], key: str = "identification") -> str:
    """Rank-k, normalised rank and face pools per model, the floor and chance, by one matcher (`key`)."""
    header = ["model", "rank-1 (95% CI)", "rank-5", "rank-10", "mean normalised rank", "pool of 5", "pool of 10"]
    rows, classes = [], []
    for m in scored_rows(record):
        i = m[key]
        low, high = i["rank_1_ci"]
        rows.append([m["name"], f"{i['rank_1']:.0%} ({low:.0%}-{high:.0%})", f"{i['rank_5']:.0%}",
                     f"{i['rank_10']:.0%}", f"{i['mean_normalised_rank']:.3f}", _fmt(i.get("pool_5"), ".0%"),
                     _fmt(i.get("pool_10"), ".0%")])  # fmt: skip
        classes.append("floor" if m["name"] == FLOOR else "")
    i = record["models"][0]["identification"]
    rows.append(["chance", f"{i['rank_1_chance']:.1%}", f"{i['rank_5_chance']:.1%}", f"{i['rank_10_chance']:.1%}",
                 "0.500", _fmt(i.get("pool_5_chance"), ".0%"), _fmt(i.get("pool_10_chance"), ".0%")])  # fmt: skip
    classes.append("floor")
    return _table(header, rows, classes)


def _surfaces(record: dict[str, Any]) -> list[str]:
    """The 3D section: surface distances of every model that answered with a surface, and of the floor."""
    rows, classes = [], []
    for m in scored_rows(record):
        if "surface" not in m:
            continue
        s, missing = m["surface"].get("metrics"), m["surface"]["missing"]
        if s is None:
            rows.append([m["name"], "-", "-", "-", "-", str(missing)])
        else:
            rows.append([m["name"], f"{s['surface_mean_mm']['mean']:.2f} ({s['surface_mean_mm']['sd']:.2f})",
                         _fmt(s["surface_hd95_mm"]["mean"]), _fmt(s["surface_within_2_5mm"]["mean"], ".0%"),
                         str(s["surface_mean_mm"]["n"]), str(missing)])  # fmt: skip
        classes.append("floor" if m["name"] == FLOOR else "")
    header = ["model", "mean distance mm (SD)", "95% Hausdorff mm", "surface within 2.5 mm", "subjects", "no surface"]
    parts = [
        "<h2>Surface distances (3D outputs)</h2>",
        "<p class='note'>Models that answer with a surface are scored in 3D against the true face mesh over the "
        "facial area (the face region ellipse, in front of the porions), with exact closest-point distances: mean "
        "of both directions, 95th-percentile Hausdorff distance, and the share of the reconstructed surface within "
        "2.5 mm of the true face (54-77% for expert computerized sculpting, Lee 2012, Miranda 2018). The floor "
        "row is the noise-free face.</p>",
        _table(header, rows, classes),
        *(f"<p class='note'>{html.escape(m['name'])}: {html.escape(m['surface']['note'])}</p>"
          for m in scored_rows(record) if "note" in m.get("surface", {})),
    ]  # fmt: skip
    if any("surface_mean_mm" in m["bias"] for m in record["models"]):
        for by in GROUPINGS:
            parts += [f"<h3>by {by}: mean surface distance (mm)</h3>", _bias(record, by, "surface_mean_mm")]
    return parts


def _embedding(record: dict[str, Any]) -> list[str]:
    """Identification a second way: the learned face embedding's table and CMC curves."""
    e = record["embedding"]
    curves = {m["name"]: np.asarray(m["identification_embedding"]["cmc"]) for m in scored_rows(record)}
    return [
        "<h3>Identification by a learned face embedding</h3>",
        f"<p class='note'>Eigenfaces of the {e['faces']} true faces of the {html.escape(e['split'])} split of "
        f"{html.escape(e['data'])} (none of them under test): {e['components']} directions of face-shape variation, "
        f"each weighted by its spread to the power {1 - e['whiten']:g}; faces compared by the cosine of their "
        "coefficients. It weighs the fine ways faces differ above the broad ones the plain depth difference is "
        "dominated by.</p>",
        _identification(record, "identification_embedding"),
        _image(figs.cmc_figure(curves, record["gallery"]["size"]), "CMC curves, learned embedding"),
    ]


def _bias(record: dict[str, Any], by: str, metric: str) -> str:
    """Per-group means with intervals for the models (and floor) that have the metric."""
    rows, groups = [], []
    for m in scored_rows(record):
        if metric not in m["bias"]:
            continue
        report = m["bias"][metric][by]
        groups = groups or list(report["groups"])
        cells = [f"{_fmt(g['mean'])} [{_fmt(g['ci_low'])}, {_fmt(g['ci_high'])}] n={g['n']}"
                 for g in report["groups"].values()]  # fmt: skip
        rows.append([m["name"], *cells, _fmt(report.get("worst_to_best_ratio")),
                     _fmt(report.get("kruskal_p"), ".3g"), _fmt(report.get("permutation_p"), ".3g")])  # fmt: skip
    header = ["model", *groups, "worst/best", "Kruskal-Wallis p", "permutation p"]
    return _table(header, rows)


def _calibration(record: dict[str, Any], evaluation: Evaluation) -> list[str]:
    """The uncertainty section: calibration table, reliability plot, SD maps beside the error heat maps."""
    models = [m for m in scored_rows(record) if "calibration" in m]
    rows = [[m["name"], str(m["calibration"]["samples"] or "stated SD"), _fmt(m["calibration"]["spearman_sd_error"]),
             _fmt(100 * m["calibration"]["coverage"], ".1f") + "%", _fmt(m["calibration"]["mean_sd_mm"]),
             _fmt(m["calibration"]["mae_mm"]), _fmt(m["calibration"]["expected_mae_mm"])] for m in models]  # fmt: skip
    header = ["model", "samples", "Spearman(SD, |error|)", "95% band coverage", "mean SD (mm)", "MAE (mm)",
              "MAE expected from SD (mm)"]  # fmt: skip
    maps = {f"{name}: mean SD": sd for name, sd in evaluation.sd_maps.items()}
    maps |= {f"{name}: mean |error|": evaluation.heat_maps[name] for name in evaluation.sd_maps}
    return [
        "<h2>Uncertainty: is the spread of the samples honest?</h2>",
        "<p class='note'>Per face pixel, the SD over the model's samples against the real error of their mean. "
        "The 95% band is the prediction interval of a new draw from K samples (t quantile, ddof 1); an honest "
        "model holds about 95% of true depths inside it (target 85-98%) and its SD rises with its error.</p>",
        _table(header, rows),
        _image(figs.calibration_figure(models), "reliability of the predicted SD"),
        _image(figs.heat_map_figure(maps, evaluation.data.view, "mm"), "mean SD beside mean error"),
    ]


def render_report(evaluation: Evaluation) -> str:
    """The whole report page."""
    record, data = evaluation.record, evaluation.data
    models = scored_rows(record)
    view = data.view
    parts = [
        f"<h1>facegen evaluation: {len(record['models'])} model(s) on {record['n_subjects']} subjects</h1>",
        f"<p class='note'>Dataset {html.escape(record['data'])}, split {html.escape(record['split'])}; gallery of "
        f"{record['gallery']['size']} faces ({record['gallery']['distractors']} distractors); seed {record['seed']}; "
        f"facegen {__version__}. Errors are over each true face's facial region, where the model answers "
        "(coverage). The floor is the noise-free face: what skull and metadata could at best predict.</p>",
        "<h2>Accuracy</h2>", _accuracy(record),
        "<h2>Accuracy by facial region</h2>", _regions(record), _image(figs.region_figure(models), "errors by region"),
        _image(figs.heat_map_figure(evaluation.heat_maps, view), "error heat maps"),
        "<h2>Identification</h2>",
        "<p class='note'>Each reconstruction is a probe against the gallery of true faces, compared by RMS depth "
        "difference over the shared face region after removing the depth offset. The floor row is the "
        "identification ceiling; chance is what a random face scores.</p>",
        _identification(record),
        _image(figs.cmc_figure(evaluation.cmc, record["gallery"]["size"]), "CMC curves"),
        *(_embedding(record) if "embedding" in record else []),
        "<h2>Bias: the same figures per group</h2>",
        "<p class='note'>Group means with bootstrap 95% intervals; worst-to-best ratio of group means; "
        "Kruskal-Wallis and a permutation test of the worst-best gap say whether a difference is real.</p>",
    ]
    for by in GROUPINGS:
        parts += [f"<h3>by {by}: mean absolute error (mm)</h3>", _bias(record, by, "mae_mm"),
                  _image(figs.bias_figure(models, by), f"MAE by {by}"),
                  f"<h3>by {by}: normalised rank</h3>", _bias(record, by, "normalised_rank")]  # fmt: skip
    if any("surface" in m for m in models):
        parts += _surfaces(record)
    if evaluation.sd_maps:
        parts += _calibration(record, evaluation)
    parts.append("<h2>Example cases</h2>")
    for i in np.linspace(0, len(data) - 1, min(CASES, len(data))).astype(int):
        faces = {m.name: (m.faces[i], m.claimed[i]) for m in evaluation.faces}
        subject = data.subjects[i]
        title = f"{subject.subject_id}: {subject.describe()}"
        picture = figs.cases_figure(data.skull_depth[i], data.skull_mask[i], data.face_depth[i], data.face_mask[i],
                                    faces, view, title)  # fmt: skip
        parts.append(_image(picture, subject.subject_id))
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>facegen evaluation</title>"
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")  # fmt: skip


def json_ready(value: Any) -> Any:
    """Plain JSON values: numpy scalars as Python numbers, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(evaluation: Evaluation, out: Path, *, overwrite: bool = False) -> None:
    """OUT/report.html and OUT/report.json, written together (a folder appears whole or not at all); an earlier
    report at OUT is replaced only with `overwrite`."""
    page = render_report(evaluation)
    with staged_directory(Path(out), overwrite=overwrite, kind=REPORT_KIND) as stage:
        (stage / "report.html").write_text(page)
        (stage / "report.json").write_text(json.dumps(json_ready(evaluation.record), indent=2, sort_keys=True) + "\n")
