"""Where facegen keeps what it builds once and reuses (head template, skull model, default model)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$FACEGEN_CACHE, default ~/.cache/facegen."""
    return Path(os.environ.get("FACEGEN_CACHE", Path.home() / ".cache" / "facegen"))
