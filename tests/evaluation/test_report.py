"""`facegen evaluate --out`: the HTML report and its JSON, reproducible, rendered by headless Chromium."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.models.base import DepthData

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def report(tiny_dataset, tmp_path_factory):
    """Template and PCA trained on the tiny set's train split, reported on all its subjects, twice."""
    root = tmp_path_factory.mktemp("report")
    runs = []
    for family in ("template", "pca"):
        options = ["--set", "model.skull_components=8"] if family == "pca" else []
        command = ["train", "--model", family, "--data", str(tiny_dataset), "--out", str(root / family), *options]
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        runs += ["--run", str(root / family)]
    outs = []
    for name in ("a", "b"):
        result = runner.invoke(app, ["evaluate", *runs, "--data", str(tiny_dataset), "--split", "all", "--out",
                                     str(root / name)])  # fmt: skip
        assert result.exit_code == 0, result.output
        outs.append(root / name)
    return outs, result.output


def test_samples_bring_the_uncertainty_section(report, tiny_dataset, tmp_path):
    (a, _), _ = report
    by_name = {m["name"]: m for m in json.loads((a / "report.json").read_text())["models"]}
    assert "calibration" not in by_name["template"]  # one face and no stated spread: nothing to calibrate
    stated = by_name["pca"]["calibration"]  # one face with its closed-form predictive SD, checked as such
    assert stated["samples"] is None and stated["spread"] == "predictive SD stated by the model"
    assert 0.5 < stated["coverage"] <= 1 and stated["mean_sd_mm"] > 0
    runs = [part for family in ("template", "pca") for part in ("--run", str(a.parent / family))]
    result = runner.invoke(app, ["evaluate", *runs, "--data", str(tiny_dataset), "--split", "all", "--samples", "4",
                                 "--out", str(tmp_path / "c")])  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "c" / "report.json").read_text())
    for m in record["models"]:
        c = m["calibration"]
        assert m["samples"] == c["samples"] == 4
        assert -1 <= c["spearman_sd_error"] <= 1 and 0 < c["coverage"] <= 1 and c["mean_sd_mm"] > 0
        assert len(c["reliability"]) == 5
    page = (tmp_path / "c" / "report.html").read_text()
    assert "Uncertainty: is the spread of the samples honest?" in page and "95% band coverage" in page
    assert "Spearman(SD, |error|)" in result.output


def test_a_learned_embedding_identifies_the_test_faces_a_second_way(report, tiny_dataset, tmp_path):
    (a, _), _ = report
    runs = [part for family in ("template", "pca") for part in ("--run", str(a.parent / family))]
    command = ["evaluate", *runs, "--data", str(tiny_dataset), "--split", "test", "--embedding-data", str(tiny_dataset),
               "--out", str(tmp_path / "e")]  # fmt: skip
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "e" / "report.json").read_text())
    n_train = len(DepthData.load(tiny_dataset, "train"))
    assert record["embedding"]["split"] == "train" and record["embedding"]["faces"] == n_train
    for m in [*record["models"], record["floor"]]:
        ident = m["identification_embedding"]
        assert 0 <= ident["rank_1"] <= ident["rank_5"] <= 1 and len(ident["cmc"]) == record["gallery"]["size"]
    assert "Identification by a learned face embedding" in (tmp_path / "e" / "report.html").read_text()
    assert "rank-1 (embedding)" in result.output
    # fitted on the faces under test, the embedding would have seen the answers: refused
    result = runner.invoke(app, [*command[:-2], "--split", "all"])
    assert result.exit_code != 0 and "train split" in result.output


def test_report_holds_every_figure_and_is_reproducible(report):
    (a, b), output = report
    for name in ("report.html", "report.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{name} differs between identical runs"
    record = json.loads((a / "report.json").read_text())
    assert record["n_subjects"] == 24 and record["gallery"]["size"] == 24
    assert [m["name"] for m in record["models"]] == ["template", "pca"] and record["floor"]
    for m in [*record["models"], record["floor"]]:
        assert set(m["regions"]) == {"forehead", "eyes", "nose", "mouth", "cheeks", "chin", "jaw_line"}
        ident = m["identification"]
        assert 0 <= ident["rank_1"] <= 1 and len(ident["cmc"]) == 24 and ident["rank_1_chance"] == 1 / 24
        assert set(m["bias"]["mae_mm"]) == {"sex", "age", "bmi", "group"}
    # the noise-free faces identify their own people far better than chance: the ceiling is real
    assert record["floor"]["identification"]["rank_1"] > 0.5
    assert "floor" in output and "template" in output


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    (page, _), _ = report
    probe = tmp_path / "probe.html"
    script = ("<script>window.addEventListener('load', () => document.body.setAttribute('data-check', "
              "JSON.stringify({tables: document.querySelectorAll('table').length, images: document.images.length, "
              "decoded: [...document.images].filter(i => i.complete && i.naturalWidth > 0).length})));</script>")
    probe.write_text((page / "report.html").read_text().replace("</body>", script + "</body>"))
    dom = subprocess.run([CHROMIUM, *HEADLESS, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    check = json.loads(dom.split("data-check=\"", 1)[1].split('"', 1)[0].replace("&quot;", '"'))
    assert check["tables"] >= 3 + 4 * 2 and check["images"] >= 8 and check["decoded"] == check["images"], check

    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *HEADLESS, "--window-size=1200,1600", f"--screenshot={shot}",
                    (page / "report.html").as_uri()], capture_output=True, timeout=120, check=True)  # fmt: skip
    pixels = np.asarray(Image.open(shot).convert("L"), float)
    assert pixels.shape == (1600, 1200) and pixels.std() > 10, "the screenshot is blank"
