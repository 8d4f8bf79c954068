"""The browser app at `/`: static files from the package (no CDN, no build step) under a CSP of their own."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from facegen.use.viewer import APP as VIEWER_JS
from facegen.use.viewer import ASSETS, THREE_DIR, THREE_MODULES

router = APIRouter(include_in_schema=False)
APP_DIR = ASSETS / "app"
STATIC: dict[str, Path] = {
    "app.js": APP_DIR / "app.js",
    "app.css": APP_DIR / "app.css",
    "viewer.js": VIEWER_JS,
    **{f"three/{name}": THREE_DIR / name for name in THREE_MODULES},
}
"""Every file the app loads, by its name under /app/: nothing else of the package is served."""
_IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.S)


@cache
def app_policy() -> str:
    """The app's Content-Security-Policy: same-origin scripts, styles and calls; its one inline script (the import
    map) allowed by hash; no frames, no forms posted elsewhere, never framed."""
    found = _IMPORT_MAP.search((APP_DIR / "index.html").read_text(encoding="utf-8"))
    if found is None:
        raise ValueError("the app's index.html has no import map")
    digest = base64.b64encode(hashlib.sha256(found.group(1).encode()).digest()).decode()
    return (f"default-src 'none'; script-src 'self' 'sha256-{digest}'; style-src 'self'; connect-src 'self'; "
            "img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")  # fmt: skip


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": app_policy()}


@router.get("/", response_class=HTMLResponse)
def index() -> HTMLResponse:
    """The app's one page."""
    return HTMLResponse((APP_DIR / "index.html").read_text(encoding="utf-8"), headers=_headers())


@router.get("/app/{name:path}", response_class=FileResponse)
def static(name: str) -> FileResponse:
    """One of the app's scripts or styles (404 for any other name)."""
    path = STATIC.get(name)
    if path is None:
        raise HTTPException(404, "no such file of the app")
    media = "text/css; charset=utf-8" if name.endswith(".css") else "text/javascript; charset=utf-8"
    return FileResponse(path, media_type=media, headers=_headers())
