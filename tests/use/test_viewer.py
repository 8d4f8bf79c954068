"""The offline HTML viewer: self-contained, reproducible, and it draws skull and face in headless Chromium."""

import base64
import colorsys
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import trimesh
from PIL import Image

from facegen.use.viewer import BACKGROUND, BONE, SKIN, ViewerMesh, write_viewer

CAPTION = "Approximation to aid identification; model trained on synthetic data"
CHROMIUM = shutil.which("chromium")
# headless, no network at all (no DNS, a dead proxy), and WebGL on the SwiftShader software rasteriser via ANGLE
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"]  # fmt: skip


def _meshes() -> list[ViewerMesh]:
    """A sphere 'skull' and a wider, flatter 'face' around it: bone shows above and below, skin at the sides."""
    skull = trimesh.creation.icosphere(subdivisions=4, radius=60.0)
    face = trimesh.creation.icosphere(subdivisions=5, radius=60.0)
    face.apply_scale([1.15, 0.75, 1.15])
    return [
        ViewerMesh(name="Skull", mesh=skull, colour=BONE, opacity=1.0, transparency_slider=False),
        ViewerMesh(name="Face", mesh=face, colour=SKIN, opacity=0.5, transparency_slider=True),
    ]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    path = tmp_path_factory.mktemp("viewer") / "viewer.html"
    return write_viewer(path, _meshes(), title="Case 0001: skull and reconstructed face", caption=CAPTION)


def _chromium(page, tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    command = [CHROMIUM, *HEADLESS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_page_is_self_contained_and_carries_caption(page):
    text = page.read_text(encoding="utf-8")
    for forbidden in ("http://", "https://", "<script src", "src=", "fetch(", "XMLHttpRequest", "@import", "url("):
        assert forbidden not in text, f"viewer refers outside itself: {forbidden!r}"
    assert CAPTION in text
    assert "<title>Case 0001: skull and reconstructed face</title>" in text
    assert "THREE." not in text  # hand-written WebGL, no library


def test_page_embeds_the_meshes_exactly(page):
    text = page.read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="meshes">(.*?)</script>', text, re.S).group(1))
    for embedded, item in zip(data["meshes"], _meshes(), strict=True):
        vertices = np.frombuffer(base64.b64decode(embedded["vertices"]), dtype="<f4").reshape(-1, 3)
        faces = np.frombuffer(base64.b64decode(embedded["faces"]), dtype="<u4").reshape(-1, 3)
        np.testing.assert_allclose(vertices, item.mesh.vertices, atol=1e-4)
        np.testing.assert_array_equal(faces, item.mesh.faces)
        assert (embedded["name"], embedded["opacity"], embedded["transparency_slider"]) == (
            item.name, item.opacity, item.transparency_slider)  # fmt: skip


def test_page_is_deterministic(page, tmp_path):
    again = write_viewer(tmp_path / "again.html", _meshes(), title="Case 0001: skull and reconstructed face",
                         caption=CAPTION)  # fmt: skip
    assert again.read_bytes() == page.read_bytes()


def test_caller_text_is_escaped(tmp_path):
    meshes = _meshes()
    odd = [ViewerMesh("</script><b>", meshes[0].mesh, BONE, 1.0, False)]
    text = write_viewer(tmp_path / "odd.html", odd, title="<i>t</i>", caption="a < b & <script>").read_text()
    assert "<b>" not in text and "<i>" not in text
    assert "a &lt; b &amp; &lt;script&gt;" in text
    assert text.count("</script>") == 2  # the data block and the program, nothing closed early


def test_bad_meshes_are_refused(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=1)
    with pytest.raises(ValueError, match="opacity"):
        ViewerMesh("Face", sphere, SKIN, 1.5, True)
    with pytest.raises(ValueError, match="colour"):
        ViewerMesh("Face", sphere, (255.0, 0.0, 0.0), 0.5, True)
    with pytest.raises(ValueError, match="at least one"):
        write_viewer(tmp_path / "empty.html", [], title="t", caption="c")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: cannot render the viewer")
def test_page_gets_webgl_and_draws_its_first_frame(page, tmp_path):
    result = _chromium(page, tmp_path, "--virtual-time-budget=5000", "--dump-dom")
    body = re.search(r"<body[^>]*>", result.stdout)
    assert body, f"no DOM from chromium: {result.stderr[-2000:]}"
    status = re.search(r'data-webgl="([^"]*)"', body.group(0))
    assert status and status.group(1) == "ok", f"viewer failed: {status.group(1) if status else body.group(0)}"


def _hsv(pixels: np.ndarray) -> np.ndarray:
    """Hue (degrees), saturation and value of RGB pixels in 0-1, one row each."""
    return np.array([colorsys.rgb_to_hsv(*p) for p in pixels]) * [360.0, 1.0, 1.0]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: cannot render the viewer")
def test_screenshot_shows_skull_and_face(page, tmp_path):
    shot = tmp_path / "viewer.png"
    result = _chromium(page, tmp_path, "--window-size=900,700", f"--screenshot={shot}", "--virtual-time-budget=5000")
    assert shot.exists(), f"chromium made no screenshot: {result.stderr[-2000:]}"
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (700, 900, 3)
    centre = image[175:525, 225:675].reshape(-1, 3)  # the meshes are framed here; the panels lie outside it
    background = np.round(np.array(BACKGROUND) * 255)
    drawn = np.abs(centre.astype(float) - background).max(axis=1) > 12
    assert drawn.mean() > 0.3, "the canvas is (nearly) blank"
    assert len(np.unique(centre[drawn], axis=0)) > 500, "the meshes are drawn flat, not shaded"

    hsv = _hsv(np.unique(centre[drawn], axis=0).astype(float) / 255)
    counts = np.unique(centre[drawn], axis=0, return_counts=True)[1]
    hue, sat, val = hsv.T
    bone = (hue > 38) & (hue < 56) & (sat > 0.1) & (sat < 0.3) & (val > 0.3)  # ivory, where the face does not cover
    skin = (hue > 5) & (hue < 30) & (sat > 0.25) & (val > 0.25)  # skin, over bone and over the background
    assert counts[bone].sum() > 0.05 * drawn.sum(), "no bone-coloured skull in the picture"
    assert counts[skin].sum() > 0.2 * drawn.sum(), "no skin-coloured face in the picture"
