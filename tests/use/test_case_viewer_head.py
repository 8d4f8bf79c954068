"""The complete head in a case's viewer: each face's head is embedded once, with one colour array per colour
variant, and in headless Chromium the page switches from the face to the head and between its colourings.

The case is made as a practitioner makes it (`facegen reconstruct --genotypes`, sex unknown: two faces); the
browser tests reuse the offline viewer's Playwright harness (tests/use/test_viewer.py).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.synthetic.genotypes import random_dosages, vcf_text
from facegen.use.viewer import BONE, SKIN, ViewerHead, ViewerMesh, render_viewer
from tests.conftest import pose_cases_from_landmarks
from tests.use.test_viewer import Viewer, _changed, _drawn, _json_block, browser, needs_chromium  # noqa: F401

PERSON_SEED = 22
"""A made-up person whose shown classes include blue and brown eyes (six colour variants of each head)."""


@pytest.fixture(scope="module")
def case(case_model_run, tiny_dataset, tmp_path_factory) -> Path:
    """A case with two faces (sex unknown), each with its complete head coloured by the person's phenotype."""
    subject = sorted((tiny_dataset / "subjects").iterdir())[0]
    work = tmp_path_factory.mktemp("head-case")
    genotypes = work / "person.vcf"
    genotypes.write_text(vcf_text({"S1": random_dosages(PERSON_SEED, rare=False)}))
    args = [str(subject / "skull.ply"), "--out", str(work / "case"), "--model", str(case_model_run), "--sex",
            "unknown", "--age", "40", "--bmi", "25", "--genotypes", str(genotypes)]  # fmt: skip
    with pytest.MonkeyPatch.context() as monkeypatch:
        pose_cases_from_landmarks(subject, work, monkeypatch)
        result = CliRunner().invoke(app, ["reconstruct", *args])
    assert result.exit_code == 0, result.output
    return work / "case"


def _decoded(b64: str, dtype: str, width: int = 3) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=dtype).reshape(-1, width)


def _head_variants(case: Path, variant: str) -> list[dict]:
    return json.loads((case / variant / "head" / "head.json").read_text())["variants"]


# --- the page's data --------------------------------------------------------------------------------------------


def test_each_face_has_its_head_once_and_a_colour_array_per_colour_variant(case):
    text = (case / "viewer.html").read_text(encoding="utf-8")
    data = _json_block(text, "viewer-data")
    names = json.loads((case / "case.json").read_text())["variants"]
    assert [v["name"] for v in data["variants"]] == names and len(names) == 2
    for variant in data["variants"]:
        head, shown = variant["head"], _head_variants(case, variant["name"])
        assert head["name"] == "Complete head" and "not a reconstruction" in head["note"]
        assert [c["label"] for c in head["colourings"]] == [v["label"] for v in shown] and len(shown) == 6
        vertices = _decoded(head["vertices"], "<f4")
        faces = _decoded(head["faces"], f"<u{head['index_bytes']}")
        assert head["index_bytes"] == 2 and text.count(head["vertices"]) == 1  # the geometry once per face
        for colouring, record in zip(head["colourings"], shown, strict=True):  # the same head as the case's PLYs
            ply = trimesh.load(case / variant["name"] / f"head/head_{record['name']}.ply", process=False)
            np.testing.assert_allclose(vertices, ply.vertices, atol=1e-3)
            np.testing.assert_array_equal(faces, ply.faces)
            np.testing.assert_array_equal(_decoded(colouring["vertex_colours"], "u1"), ply.visual.vertex_colors[:, :3])
    heads = [v["head"]["vertices"] for v in data["variants"]]
    assert heads[0] != heads[1]  # each face its own head


def test_bad_heads_are_refused():
    sphere = trimesh.creation.icosphere(subdivisions=1)
    n = len(sphere.vertices)
    with pytest.raises(ValueError, match="at least one colouring"):
        ViewerHead(sphere, {})
    with pytest.raises(ValueError, match="uint8 RGB"):
        ViewerHead(sphere, {"eyes blue": np.zeros((n - 1, 3), np.uint8)})
    with pytest.raises(ValueError, match="uint8 RGB"):
        ViewerHead(sphere, {"eyes blue": np.zeros((n, 3), np.float32)})
    head = ViewerHead(sphere, {"eyes blue": np.zeros((n, 3), np.uint8)})
    with pytest.raises(ValueError, match=r"heads given for no variant: \['M'\]; the variants are \['F'\]"):
        render_viewer([ViewerMesh("Skull", sphere, BONE, 1.0, False)], variants={"F": [ViewerMesh(
            "Face", sphere, SKIN, 0.5, True)]}, heads={"M": head}, title="t", caption="c")  # fmt: skip


# --- in the browser ---------------------------------------------------------------------------------------------


def _blue(image: np.ndarray) -> int:
    """Pixels of a clear blue (the blue irises; nothing else in a skin-coloured case is blue)."""
    rgb = image.astype(int)
    return int(((rgb[..., 2] > rgb[..., 0] + 40) & (rgb[..., 2] > rgb[..., 1] + 15)).sum())


@pytest.fixture
def case_viewer(browser, case, tmp_path):  # noqa: F811
    opened = Viewer(browser, (case / "viewer.html").resolve().as_uri(), Path(os.environ.get("FACEGEN_SHOTS", tmp_path)))
    yield opened
    assert not opened.errors, f"the page reported errors: {opened.errors}"
    outside = [url for url in opened.requests if not url.startswith(("file:", "blob:", "data:"))]
    assert not outside, f"the viewer asked the network for {outside}"
    opened.page.close()


@needs_chromium
def test_the_viewer_shows_the_head_and_switches_its_colour_variants(case_viewer, case):
    page, names = case_viewer.page, json.loads((case / "case.json").read_text())["variants"]
    shown = _head_variants(case, names[0])
    blue = next(i for i, v in enumerate(shown) if v["classes"]["eye"] == "blue")
    brown = next(i for i, v in enumerate(shown) if v["classes"]["eye"] == "brown")
    assert page.locator("#surface-row").is_visible() and page.locator("#head-row").is_hidden()
    face = case_viewer.picture("face")
    page.fill("#transparency", "0")  # the surface shown opaque: face or head
    page.check("input[name=surface][value=head]")
    assert page.evaluate("[document.body.dataset.surface, document.body.dataset.headColouring]") == ["head", "0"]
    assert page.locator("#head-colouring option").all_inner_texts() == [v["label"] for v in shown]
    assert "not a reconstruction" in page.inner_text("#head-note")
    listed = page.inner_text("#shown")
    assert f"Complete head: {shown[0]['label']}" in listed and "Face" not in listed
    page.select_option("#head-colouring", str(blue))
    blue_eyed = case_viewer.picture("head-blue-eyes")
    assert len(_drawn(blue_eyed)) > 0.3 * 400 * 500, "the canvas is (nearly) blank"
    assert _changed(face, blue_eyed) > 0.03, "showing the head did not change the picture"
    assert _blue(face) < 5 and _blue(blue_eyed) > 40, "no blue irises on the blue-eyed head"
    page.select_option("#head-colouring", str(brown))
    brown_eyed = case_viewer.picture("head-brown-eyes")
    assert page.evaluate("document.body.dataset.headColouring") == str(brown)
    assert (np.abs(blue_eyed.astype(int) - brown_eyed.astype(int)).max(axis=2) > 24).sum() > 40
    assert _blue(brown_eyed) < 5 and _changed(blue_eyed, brown_eyed) < 0.02  # the same head, other eyes

    page.check("input[name=colouring][value=uncertainty]")  # the head has no spread: plain, and the legend says so
    plain = case_viewer.picture("head-uncertainty")
    assert page.locator("#colour-note").is_visible() and _blue(plain) < 5
    page.check("input[name=colouring][value=skin]")
    page.fill("#transparency", "100")  # the slider hides the head as it hides the face: the skull alone
    no_head = case_viewer.picture("head-hidden")
    page.check("input[name=surface][value=face]")
    assert _changed(no_head, case_viewer.picture("face-hidden")) < 0.002 and _changed(no_head, brown_eyed) > 0.03
    page.fill("#transparency", "0")
    page.check("input[name=surface][value=head]")
    page.select_option("#variant", names[1])  # the other face: its own head, in the colouring chosen
    other = case_viewer.picture("other-face-head")
    assert page.evaluate("[document.body.dataset.variant, document.body.dataset.headColouring]") == [
        names[1], str(brown)]  # fmt: skip
    assert _changed(brown_eyed, other) > 0.002
    page.select_option("#head-colouring", str(blue))
    page.click("button[data-view=three-quarter]")
    case_viewer.picture("case-viewer-head")


@needs_chromium
def test_url_hash_opens_the_head_in_a_colouring(browser, case, tmp_path):  # noqa: F811
    label = _head_variants(case, json.loads((case / "case.json").read_text())["variants"][0])[1]["label"]
    url = (case / "viewer.html").resolve().as_uri() + "#surface=head&opacity=1&head=" + quote(label)
    opened = Viewer(browser, url, tmp_path)
    assert opened.page.evaluate("[document.body.dataset.surface, document.body.dataset.headColouring]") == ["head", "1"]
    assert len(_drawn(opened.picture("hash-head"))) > 0.3 * 400 * 500
    assert not opened.errors
    opened.page.close()
