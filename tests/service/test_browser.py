"""The browser app at / in real headless Chromium (WebGL on SwiftShader) against a running `facegen serve`: sign in,
upload a skull mesh with its landmarks, follow the case, open it in 3D; a blank canvas fails."""

from __future__ import annotations

import base64
import io
import os
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from facegen.use.viewer import BACKGROUND
from tests.service.conftest import Server

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--enable-unsafe-swiftshader", "--use-angle=swiftshader"]
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
WIDTH, HEIGHT = 1280, 1000
UPLOAD = {"sex": "unknown", "age": "40", "bmi": "25"}
"""Sex unknown: two faces (F and M), so the variant menu has something to change."""
pytestmark = pytest.mark.parametrize("server", ["embedded"], indirect=True)  # the app is the same on any backend


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright; the run fails (not skips) where either is missing."""
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is not installed"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def _canvas(page) -> np.ndarray:
    """What the 3D view draws now (after two frames), as RGB."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    url = page.evaluate("document.getElementById('view').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def _drawn_share(image: np.ndarray) -> float:
    """Share of the canvas that is not background."""
    background = np.round(np.array(BACKGROUND) * 255)
    return float((np.abs(image.astype(float) - background).max(axis=2) > 12).mean())


def _changed(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels that differ visibly between two pictures."""
    return float((np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 24).mean())


def test_index_and_assets_carry_a_same_origin_policy_and_no_cors(server: Server):
    answer = httpx.get(server.url + "/", headers={"Origin": "https://elsewhere.example"})
    assert answer.status_code == 200 and "<title>facegen</title>" in answer.text
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
    assert answer.headers["x-frame-options"] == "DENY" and "access-control-allow-origin" not in answer.headers
    for name in ("app.js", "app.css", "viewer.js", "three/three.module.js", "three/three.core.js"):
        asset = httpx.get(f"{server.url}/app/{name}")
        assert asset.status_code == 200 and asset.headers["x-content-type-options"] == "nosniff", name
    for name in ("index.html", "../viewer.py", "three/LICENSE", "%2e%2e/keys.py"):
        assert httpx.get(f"{server.url}/app/{name}").status_code == 404, name
    api = httpx.get(server.url + "/v1/cases")  # the API's own policy is unchanged
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_sign_in_upload_follow_and_open_a_case_in_3d(server: Server, browser, skull_upload, tmp_path):
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
    shots = Path(os.environ.get("FACEGEN_SHOTS", tmp_path))
    page.goto(server.url + "/")

    page.fill("#key", "not-a-key")  # a wrong key is refused, with the service's reason
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#sign-in-error:not(:empty)")  # selectors: the app's CSP forbids eval
    assert "refused" in page.inner_text("#sign-in-error") and page.locator("#cases-page").is_hidden()
    errors.clear()  # the 401 of the wrong key is logged by the browser
    page.fill("#key", server.keys["a-examiner"])
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#cases-page", state="visible")
    assert page.evaluate("sessionStorage.getItem('facegen.key')") == server.keys["a-examiner"]
    assert page.inner_text("#who") == "signed in: examiner, a" and page.locator("#upload").is_visible()
    with server.client("a-viewer") as client:
        before = len(client.get("/v1/cases").json()["cases"])  # other tests of the session may have made some
    if before:
        page.wait_for_selector(f"#cases tbody tr >> nth={before - 1}")  # the list has loaded

    scan_name, scan_bytes, _ = skull_upload["scan"]
    lm_name, lm_bytes, _ = skull_upload["landmarks"]
    page.set_input_files("input[name=scan]", {"name": scan_name, "mimeType": "model/ply", "buffer": scan_bytes})
    page.fill("input[name=bmi]", "enormous")  # refused (422), the message shown, nothing queued
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#upload-error:not(:empty)")
    assert "422" in page.inner_text("#upload-error") and "BMI" in page.inner_text("#upload-error")
    assert page.locator("#cases tbody tr").count() == before
    errors.clear()

    page.set_input_files("input[name=scan]", {"name": scan_name, "mimeType": "model/ply", "buffer": scan_bytes})
    page.set_input_files("input[name=landmarks]", {"name": lm_name, "mimeType": "application/json", "buffer": lm_bytes})
    page.select_option("select[name=sex]", UPLOAD["sex"])
    page.fill("input[name=age]", UPLOAD["age"])
    page.fill("input[name=bmi]", UPLOAD["bmi"])
    page.click("#upload button[type=submit]")
    page.wait_for_selector(f"#cases tbody tr >> nth={before}")  # the new case is in the list, first
    assert page.inner_text("#upload-error") == ""
    row = page.locator("#cases tbody tr").first
    case_id = row.get_attribute("data-case-id")
    assert row.get_attribute("data-status") in {"queued", "running", "done"}
    # the list follows the case by itself (polling), no reload
    page.wait_for_selector(f"#cases tr[data-case-id='{case_id}'][data-status='done']", timeout=240_000)
    assert "100%" in row.inner_text()
    after_upload = requests[max(i for i, r in enumerate(requests) if r == f"POST {server.url}/v1/cases") :]
    assert after_upload.count(f"GET {server.url}/v1/cases") >= 2, "the list was not polled while the case ran"
    page.screenshot(path=str(shots / "service-cases.png"))

    page.click(f"#cases tr[data-case-id='{case_id}'] a")
    page.wait_for_selector("body:not([data-webgl=none]):not([data-webgl=pending])", timeout=60_000)
    assert page.evaluate("document.body.dataset.webgl") == "ok", page.inner_text("#case-error")
    start = _canvas(page)
    assert start.shape[0] > 300 and start.shape[1] > 600
    assert _drawn_share(start) > 0.08, "the 3D canvas is (nearly) blank"
    assert len(np.unique(start.reshape(-1, 3), axis=0)) > 300, "the meshes are drawn flat, not shaded"
    page.screenshot(path=str(shots / "service-case.png"), full_page=True)

    options = page.locator("#variant option").all_inner_texts()
    assert len(options) == 2 and page.locator("#variant-row").is_visible()
    page.fill("#transparency", "100")
    gone = _canvas(page)
    page.fill("#transparency", "0")
    opaque = _canvas(page)
    assert _changed(gone, opaque) > 0.02, "the transparency slider did not change the picture"
    assert _drawn_share(gone) > 0.03  # the skull stays
    assert _changed(opaque, _canvas(page)) == 0.0  # the same state draws the same picture
    first = page.evaluate("document.body.dataset.variant")
    page.select_option("#variant", index=1)  # the other (opaque) face: its outline differs from the first's
    other = _canvas(page)
    assert page.evaluate("document.body.dataset.variant") == options[1] != first
    assert _changed(opaque, other) > 0.001, "choosing the other face did not change the picture"
    page.check("input[name=colouring][value=uncertainty]")
    coloured = _canvas(page)
    assert page.locator("#colour-legend").is_visible() and "mm" in page.inner_text("#colour-legend")
    assert _changed(other, coloured) > 0.02, "the uncertainty colouring did not change the picture"
    page.screenshot(path=str(shots / "service-case-uncertainty.png"))
    box = page.locator("#view").bounding_box()  # two clicks on the face measure a distance in mm
    page.click("#measure")
    for dx in (-40, 40):
        page.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2)
    distance = float(page.get_attribute("#measure-result", "data-distance-mm"))
    assert 10 < distance < 200 and "Distance:" in page.inner_text("#measure-result")

    # the downloads and the report are there, fetched with the key
    names = page.locator("#file-list button").all_inner_texts()
    assert {"viewer.html", "report.html", "report.pdf", "case.json"} <= set(names)
    assert page.locator("#case-files button[data-name='report.pdf']").first.is_visible()
    with page.expect_download() as download:
        page.locator("#case-files button[data-name='report.pdf']").first.click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")

    page.click("#sign-out")
    page.wait_for_selector("#sign-in-page", state="visible")
    assert page.evaluate("sessionStorage.getItem('facegen.key')") is None
    assert not errors, f"the page reported errors: {errors}"
    outside = [r for r in requests if not r.split(" ", 1)[1].startswith((server.url, "blob:", "data:"))]
    assert not outside, f"the app asked elsewhere for {outside}"
    page.close()


def _sign_in(page, server: Server, key: str) -> None:
    page.goto(server.url + "/#/")
    page.fill("#key", server.keys[key])
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#cases-page", state="visible")


def test_a_viewer_gets_no_upload_form_nor_delete_and_an_examiner_deletes_after_confirming(server: Server, browser):
    broken = b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n"  # accepted, fails at once
    with server.client("a-examiner") as client:
        answer = client.post("/v1/cases", files={"scan": ("skull.ply", broken, "application/octet-stream")},
                             data={"sex": "F", "age": "40", "bmi": "25"})  # fmt: skip
    case_id = answer.json()["id"]
    assert server.wait_for("a-examiner", case_id)["status"] == "failed"
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    confirm = [False, True]  # the first deletion is called off in the dialog, the second confirmed
    page.on("dialog", lambda dialog: dialog.accept() if confirm.pop(0) else dialog.dismiss())
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    _sign_in(page, server, "a-viewer")
    assert page.inner_text("#who") == "signed in: viewer, a"
    assert page.locator("#upload").is_hidden() and page.locator("#new-case").is_hidden()
    page.goto(f"{server.url}/#/case/{case_id}")
    page.wait_for_selector("#case-state[data-status=failed]")
    assert page.locator("#delete-case").is_hidden()
    page.click("#sign-out")

    _sign_in(page, server, "a-examiner")
    assert page.locator("#upload").is_visible()
    page.goto(f"{server.url}/#/case/{case_id}")
    page.wait_for_selector("#case-state[data-status=failed]")
    page.click("#delete-case")  # called off: still there
    assert page.locator("#case-page").is_visible() and len(confirm) == 1
    with server.client("a-viewer") as client:
        assert client.get(f"/v1/cases/{case_id}").status_code == 200
    page.click("#delete-case")  # confirmed: gone, and the app is back on the list
    page.wait_for_selector("#cases-page", state="visible")
    with server.client("a-viewer") as client:
        assert client.get(f"/v1/cases/{case_id}").status_code == 404
    assert page.locator(f"#cases tr[data-case-id='{case_id}']").count() == 0 and not errors
    page.close()
