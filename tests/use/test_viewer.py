"""The offline case viewer: self-contained on vendored three.js, reproducible, and it works in real headless Chromium.

The browser tests drive the page as a user does (menu, slider, colouring, view buttons, drag, clicks to measure)
through Playwright on the system's Chromium with WebGL on SwiftShader, and read the pictures it draws.
"""

import base64
import colorsys
import fnmatch
import hashlib
import io
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from facegen.use import viewer as viewer_module
from facegen.use.viewer import (
    BACKGROUND,
    BONE,
    SKIN,
    THREE_DIR,
    THREE_MODULES,
    THREE_VERSION,
    ColourLegend,
    ViewerMesh,
    render_viewer,
    write_viewer,
)

CAPTION = "Approximation to aid identification; model trained on synthetic data"
TITLE = "Case 0001: skull and reconstructed faces"
CHROMIUM = shutil.which("chromium")
ROOT = Path(__file__).resolve().parents[2]
# headless, no network at all (no DNS, a dead proxy), and WebGL on the SwiftShader software rasteriser via ANGLE
NO_NETWORK = ["--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"]  # fmt: skip
SWIFTSHADER = ["--no-sandbox", "--headless", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
LEGEND = ColourLegend("spread of the face (SD, mm)", "mm", 0.0, 2.5, [(0.05, 0.1, 0.6), (0.1, 0.5, 0.95)])
WIDTH, HEIGHT = 900, 700
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: cannot render the viewer")


def _face(scale: list[float]) -> trimesh.Trimesh:
    face = trimesh.creation.icosphere(subdivisions=5, radius=60.0)
    face.apply_scale(scale)
    return face


def _blue(mesh: trimesh.Trimesh) -> np.ndarray:
    """Vertex colours in blues (no skin or bone hue), lighter toward the top: what 'uncertainty' shows."""
    t = (mesh.vertices[:, 1:2] - mesh.vertices[:, 1].min()) / np.ptp(mesh.vertices[:, 1])
    return np.round(255 * ((1 - t) * np.array(LEGEND.stops[0]) + t * np.array(LEGEND.stops[1]))).astype(np.uint8)


def _case() -> tuple[list[ViewerMesh], dict[str, list[ViewerMesh]]]:
    """A sphere 'skull' and two 'faces' around it, wider than deep: bone above and below, skin at the sides.

    Variant "narrow" is plain; variant "broad" (flatter and wider) carries vertex colours."""
    skull = trimesh.creation.icosphere(subdivisions=4, radius=60.0)
    narrow, broad = _face([1.15, 0.75, 1.12]), _face([1.5, 0.6, 1.12])
    return [ViewerMesh("Skull", skull, BONE, 1.0, False)], {
        "narrow": [ViewerMesh("Face", narrow, SKIN, 0.5, True)],
        "broad": [ViewerMesh("Face", broad, SKIN, 0.5, True, vertex_colours=_blue(broad))],
    }


def _write(path: Path) -> Path:
    shared, variants = _case()
    return write_viewer(path, shared, variants=variants, title=TITLE, caption=CAPTION, legend=LEGEND)


@pytest.fixture(scope="module")
def page_file(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("viewer") / "viewer.html")


def _json_block(text: str, element_id: str) -> object:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', text, re.S)
    assert found, f"no {element_id} block in the page"
    return json.loads(found.group(1))


# --- the file itself ------------------------------------------------------------------------------------------


def test_page_is_self_contained_and_carries_three_from_npm(page_file):
    text = page_file.read_text(encoding="utf-8")
    modules = _json_block(text, "viewer-modules")
    assert modules == {name: (THREE_DIR / name).read_text(encoding="utf-8") for name in THREE_MODULES}
    assert "const REVISION = '" + THREE_VERSION.split(".")[1] + "'" in modules["three.core.js"]
    assert viewer_module.APP.read_text(encoding="utf-8") in text  # the viewer program, inline and unchanged
    # outside the embedded library (whose comments cite web pages), nothing points outside the file
    ours = re.sub(r'<script type="application/json" id="viewer-modules">.*?</script>', "", text, flags=re.S)
    for forbidden in ("http://", "https://", "src=", "href=", "<link", "fetch(", "XMLHttpRequest", "@import",
                      "url(", "import(", "//cdn", "unpkg", "jsdelivr"):  # fmt: skip
        assert forbidden not in ours, f"viewer refers outside itself: {forbidden!r}"
    assert len(re.findall(r"<script\b", text)) == 4 and "<script src" not in text  # data, library, loader, viewer
    assert "default-src 'none'" in text  # the browser itself refuses any load from the network
    assert CAPTION in text and f"<title>{TITLE}</title>" in text


def test_vendored_three_is_the_npm_release_the_readme_names():
    readme = (THREE_DIR / "README.md").read_text(encoding="utf-8")
    assert f"three.js {THREE_VERSION}, vendored from npm" in readme and f"`npm pack three@{THREE_VERSION}`" in readme
    for name in THREE_MODULES:
        digest = hashlib.sha256((THREE_DIR / name).read_bytes()).hexdigest()
        assert re.search(rf"\| `{re.escape(name)}` \|[^|\n]*\| `{digest}` \|", readme), f"{name} changed since npm"
    assert "MIT License" in (THREE_DIR / "LICENSE").read_text(encoding="utf-8")


def test_package_data_ships_every_asset():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["facegen"]
    package = ROOT / "facegen"
    assets = [p.relative_to(package).as_posix() for p in (package / "assets").rglob("*") if p.is_file()]
    assert "assets/vendor/three/three.core.js" in assets and "assets/viewer.js" in assets
    for asset in assets:  # setuptools globs: "*" does not cross a "/"
        assert any(fnmatch.fnmatch(asset, p) and asset.count("/") == p.count("/") for p in patterns), asset


def test_page_embeds_the_meshes_exactly(page_file):
    data = _json_block(page_file.read_text(encoding="utf-8"), "viewer-data")
    shared, variants = _case()
    embedded = [(None, m) for m in data["shared"]] + [(v["name"], m) for v in data["variants"] for m in v["meshes"]]
    expected = [(None, m) for m in shared] + [(name, m) for name, meshes in variants.items() for m in meshes]
    assert [v["name"] for v in data["variants"]] == ["narrow", "broad"]  # the caller's order: the first shows first
    for (got_variant, got), (want_variant, item) in zip(embedded, expected, strict=True):
        assert got_variant == want_variant
        vertices = np.frombuffer(base64.b64decode(got["vertices"]), dtype="<f4").reshape(-1, 3)
        faces = np.frombuffer(base64.b64decode(got["faces"]), dtype=f"<u{got['index_bytes']}").reshape(-1, 3)
        np.testing.assert_allclose(vertices, item.mesh.vertices, atol=1e-4)
        np.testing.assert_array_equal(faces, item.mesh.faces)
        assert (got["name"], got["opacity"], got["transparency_slider"]) == (
            item.name, item.opacity, item.transparency_slider)  # fmt: skip
        if item.vertex_colours is None:
            assert got["vertex_colours"] is None
        else:
            colours = np.frombuffer(base64.b64decode(got["vertex_colours"]), dtype=np.uint8).reshape(-1, 3)
            np.testing.assert_array_equal(colours, item.vertex_colours)
    assert data["legend"] == {"title": LEGEND.title, "units": "mm", "min_value": 0.0, "max_value": 2.5,
                              "stops": [list(s) for s in LEGEND.stops]}  # fmt: skip
    assert data["radius"] == pytest.approx(np.linalg.norm([2 * 1.5 * 60, 2 * 60, 2 * 1.12 * 60]) / 2, rel=0.01)


def test_page_is_deterministic(page_file, tmp_path):
    assert _write(tmp_path / "again.html").read_bytes() == page_file.read_bytes()
    shared, variants = _case()
    variants["broad"] = [ViewerMesh("Face", _face([1.5, 0.6, 1.13]), SKIN, 0.5, True)]
    changed = render_viewer(shared, variants=variants, title=TITLE, caption=CAPTION, legend=LEGEND)
    assert changed.encode() != page_file.read_bytes()


def test_caller_text_is_escaped(tmp_path):
    shared, _ = _case()
    odd = [ViewerMesh("</script><b>", shared[0].mesh, BONE, 1.0, False)]
    text = write_viewer(tmp_path / "odd.html", odd, variants={"<!--x</script>": odd}, title="<i>t</i>",
                        caption="a < b & <script>").read_text()  # fmt: skip
    assert "<b>" not in text and "<i>" not in text and "<!--x" not in text
    assert "a &lt; b &amp; &lt;script&gt;" in text
    assert text.count("</script>") == 4  # data, library, loader, viewer: nothing closed early
    assert [v["name"] for v in _json_block(text, "viewer-data")["variants"]] == ["<!--x</script>"]


def test_bad_input_is_refused(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=1)
    n = len(sphere.vertices)
    with pytest.raises(ValueError, match="opacity"):
        ViewerMesh("Face", sphere, SKIN, 1.5, True)
    with pytest.raises(ValueError, match="colour"):
        ViewerMesh("Face", sphere, (255.0, 0.0, 0.0), 0.5, True)
    with pytest.raises(ValueError, match="vertex_colours"):
        ViewerMesh("Face", sphere, SKIN, 0.5, True, vertex_colours=np.zeros((n, 3), np.float64))
    with pytest.raises(ValueError, match="vertex_colours"):
        ViewerMesh("Face", sphere, SKIN, 0.5, True, vertex_colours=np.zeros((n - 1, 3), np.uint8))
    with pytest.raises(ValueError, match="min < max"):
        ColourLegend("spread", "mm", 2.0, 1.0, [(0, 0, 0), (1, 1, 1)])
    with pytest.raises(ValueError, match="two colour stops"):
        ColourLegend("spread", "mm", 0.0, 1.0, [(0, 0, 0)])
    with pytest.raises(ValueError, match="colour"):
        ColourLegend("spread", "mm", 0.0, 1.0, [(0, 0, 0), (0, 2, 0)])
    coloured = ViewerMesh("Face", sphere, SKIN, 0.5, True, vertex_colours=np.zeros((n, 3), np.uint8))
    with pytest.raises(ValueError, match="ColourLegend"):
        write_viewer(tmp_path / "v.html", [coloured], title="t", caption="c")
    with pytest.raises(ValueError, match="at least one mesh"):
        write_viewer(tmp_path / "v.html", [], variants={"a": []}, title="t", caption="c")
    with pytest.raises(ValueError, match="at least one"):
        write_viewer(tmp_path / "empty.html", [], title="t", caption="c")


# --- in the browser -------------------------------------------------------------------------------------------


@needs_chromium
def test_plain_chromium_opens_the_file_offline_and_reads_the_hash(page_file, tmp_path):
    """Without Playwright: the page as a double-click opens it (file://), the state taken from the URL hash."""
    command = [CHROMIUM, *SWIFTSHADER, "--disable-gpu", *NO_NETWORK, f"--user-data-dir={tmp_path / 'profile'}",
               "--virtual-time-budget=5000", "--dump-dom", page_file.resolve().as_uri() + "#variant=broad&opacity=0.3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    body = re.search(r"<body[^>]*>", result.stdout)
    assert body, f"no DOM from chromium: {result.stderr[-2000:]}"
    assert 'data-webgl="ok"' in body.group(0), f"viewer failed: {body.group(0)}"
    assert 'data-variant="broad"' in body.group(0)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: cannot render the viewer")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (a dev dependency) is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=SWIFTSHADER + NO_NETWORK)
        yield launched
        launched.close()


class Viewer:
    """One open viewer page: its requests and errors recorded, its pictures as arrays."""

    def __init__(self, browser, url: str, shots: Path) -> None:
        self.page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.shots = shots
        self.page.goto(url)
        self.page.wait_for_function("document.body.dataset.webgl !== 'pending'", timeout=60_000)
        status = self.page.evaluate("document.body.dataset.webgl")
        assert status == "ok", f"viewer failed: {status}; errors: {self.errors}"

    def picture(self, name: str) -> np.ndarray:
        """What the 3D view draws, without the panels over it (after two frames, so every requested redraw has
        happened); the page as the user sees it goes to `shots` as NAME.png."""
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        self.page.screenshot(path=str(self.shots / f"{name}.png"))
        url = self.page.evaluate("document.getElementById('view').toDataURL('image/png')")
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
        assert image.shape == (HEIGHT, WIDTH, 3)
        return image


@pytest.fixture
def viewer(browser, page_file, tmp_path):
    opened = Viewer(browser, page_file.resolve().as_uri(), tmp_path)
    yield opened
    assert not opened.errors, f"the page reported errors: {opened.errors}"
    outside = [url for url in opened.requests if not url.startswith(("file:", "blob:", "data:"))]
    assert not outside, f"the viewer asked the network for {outside}"
    opened.page.close()


def _drawn(image: np.ndarray) -> np.ndarray:
    """The pixels of the middle of the view (where the meshes are framed) that are not background, as RGB 0-1."""
    centre = image[150:550, 200:700].reshape(-1, 3).astype(float)
    background = np.round(np.array(BACKGROUND) * 255)
    return centre[np.abs(centre - background).max(axis=1) > 12] / 255


def _share(pixels: np.ndarray, kind: str) -> float:
    """Share of `pixels` with the hue of bone, skin or the test's blue vertex colours."""
    hsv = np.array([colorsys.rgb_to_hsv(*p) for p in pixels]) * [360.0, 1.0, 1.0]
    hue, sat, val = hsv.T
    found = {
        "bone": (hue > 38) & (hue < 60) & (sat > 0.08) & (sat < 0.35) & (val > 0.3),  # ivory, not under the face
        "skin": (hue > 5) & (hue < 32) & (sat > 0.25) & (val > 0.2),  # skin, over bone and over the background
        "blue": (hue > 195) & (hue < 250) & (sat > 0.4),
    }[kind]
    return float(found.mean())


def _changed(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels that differ visibly between two pictures."""
    return float((np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 24).mean())


@needs_chromium
def test_screenshot_shows_skull_and_face_in_3d(viewer):
    image = viewer.picture("front")
    drawn = _drawn(image)
    assert len(drawn) > 0.3 * 400 * 500, "the canvas is (nearly) blank"
    assert len(np.unique(np.round(drawn * 255), axis=0)) > 500, "the meshes are drawn flat, not shaded"
    assert _share(drawn, "bone") > 0.05, "no bone-coloured skull in the picture"
    assert _share(drawn, "skin") > 0.2, "no skin-coloured face in the picture"
    assert _share(drawn, "blue") < 0.01  # skin colouring at start
    assert viewer.page.locator("#colour-legend").is_hidden()
    assert viewer.page.locator("#variant").input_value() == "0" and "Skull" in viewer.page.inner_text("#shown")


@needs_chromium
def test_variant_menu_slider_and_colouring_change_the_picture(viewer):
    page = viewer.page
    start = viewer.picture("start")
    page.select_option("#variant", label="broad")
    broad = viewer.picture("broad")
    assert page.evaluate("document.body.dataset.variant") == "broad"
    assert _changed(start, broad) > 0.03, "choosing another face did not change the picture"

    page.fill("#transparency", "100")  # the face gone: bone only
    hidden = viewer.picture("face-hidden")
    assert _share(_drawn(hidden), "skin") < 0.01 and _share(_drawn(hidden), "bone") > 0.5
    assert "100%" in page.inner_text("#transparency-value")
    page.fill("#transparency", "0")  # the face opaque: it hides the bone it covers
    opaque = viewer.picture("face-opaque")
    assert _share(_drawn(opaque), "skin") > 0.3 and _changed(hidden, opaque) > 0.05
    middle = [image[330:370, 430:470].reshape(-1, 3).mean(axis=0) for image in (hidden, broad, opaque)]
    assert _share(np.array(middle) / 255, "bone") == pytest.approx(1 / 3)  # the skull, seen through nothing
    apart = np.linalg.norm(middle[0] - middle[2])
    assert apart > 30 and max(np.linalg.norm(middle[1] - middle[0]), np.linalg.norm(middle[1] - middle[2])) < apart

    assert page.locator("#colour-legend").is_hidden()
    page.check("input[name=colouring][value=uncertainty]")
    coloured = viewer.picture("uncertainty")
    assert _share(_drawn(coloured), "blue") > 0.3, "the vertex colours are not shown"
    assert _share(_drawn(coloured), "skin") < 0.02
    assert page.locator("#colour-legend").is_visible(), "no colour bar with the uncertainty colouring"
    legend = page.inner_text("#colour-legend")
    assert "spread of the face (SD, mm)" in legend and "0 mm" in legend and "2.5 mm" in legend
    assert "linear-gradient" in page.get_attribute("#colour-bar", "style")
    page.select_option("#variant", label="narrow")  # a face without values stays plain, and the legend says so
    plain = viewer.picture("uncertainty-plain-face")
    assert _share(_drawn(plain), "blue") < 0.01 and page.locator("#colour-note").is_visible()
    page.check("input[name=colouring][value=skin]")
    assert page.locator("#colour-legend").is_hidden()


@needs_chromium
def test_url_hash_sets_the_state(browser, page_file, tmp_path):
    url = page_file.resolve().as_uri() + "#variant=1&opacity=0.9&colouring=uncertainty&view=profile"
    opened = Viewer(browser, url, tmp_path)
    page = opened.page
    assert page.evaluate("[document.body.dataset.variant, document.body.dataset.colouring]") == ["broad", "uncertainty"]
    assert page.input_value("#transparency") == "10" and page.locator("#colour-legend").is_visible()
    profile = opened.picture("hash-profile")
    page.click("button[data-view=front]")
    front = opened.picture("hash-front")
    assert _share(_drawn(profile), "blue") > 0.1
    # wider than deep: the face seen from the side is narrower than from the front
    assert len(_drawn(profile)) < 0.85 * len(_drawn(front))
    assert not opened.errors
    opened.page.close()


@needs_chromium
def test_mouse_orbits_and_zooms_and_the_view_buttons_reset(viewer):
    page = viewer.page
    page.click("button[data-view=three-quarter]")
    start = viewer.picture("three-quarter")
    page.mouse.move(450, 450)
    page.mouse.down()
    page.mouse.move(600, 380, steps=8)
    page.mouse.up()
    turned = viewer.picture("dragged")
    assert _changed(start, turned) > 0.03, "dragging did not turn the view"
    page.mouse.move(450, 350)
    page.mouse.wheel(0, -600)  # zoom in: the head fills more of the window
    zoomed = viewer.picture("zoomed")
    assert len(_drawn(zoomed)) > 1.1 * len(_drawn(turned))
    page.click("button[data-view=three-quarter]")
    assert _changed(start, viewer.picture("three-quarter-again")) < 0.002


@needs_chromium
def test_two_clicks_measure_a_distance_on_the_surface(viewer):
    page = viewer.page
    page.fill("#transparency", "100")  # the face hidden: clicks land on the skull, a sphere of radius 60 mm
    page.click("#measure")
    assert page.get_attribute("#measure", "aria-pressed") == "true"
    page.mouse.click(WIDTH / 2, HEIGHT / 2)
    assert "second point" in page.inner_text("#measure-result")
    page.mouse.click(WIDTH / 2 + 60, HEIGHT / 2 - 90)
    result = page.locator("#measure-result")
    a, b = np.array(json.loads(result.get_attribute("data-points")))
    distance = float(result.get_attribute("data-distance-mm"))
    assert np.linalg.norm(a) == pytest.approx(60, abs=0.5) and np.linalg.norm(b) == pytest.approx(60, abs=0.5)
    assert a[2] > 59  # the first click, the middle of the front view, is the front of the sphere
    assert distance == pytest.approx(np.linalg.norm(a - b), abs=0.01) and distance > 20
    assert f"{distance:.1f} mm" in result.inner_text() and "Skull to Skull" in result.inner_text()
    marker = np.array([0x22, 0xD3, 0xEE])  # the page's marker colour
    with_markers = viewer.picture("measured")
    assert (np.abs(with_markers.astype(int) - marker).max(axis=2) < 30).sum() > 40, "the points and line are not drawn"
    page.click("#measure-clear")
    assert result.get_attribute("data-distance-mm") is None
    assert (np.abs(viewer.picture("cleared").astype(int) - marker).max(axis=2) < 30).sum() == 0
