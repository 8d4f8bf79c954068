"""Where facegen keeps what it builds once and reuses (head template, skull model, default model)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


def cache_root() -> Path:
    """$FACEGEN_CACHE, default ~/.cache/facegen."""
    return Path(os.environ.get("FACEGEN_CACHE", Path.home() / ".cache" / "facegen"))


def keyed_cache_file(name: str, inputs: Iterable[Path], suffix: str = ".npz") -> Path:
    """`cache_root()/NAME-DIGEST.SUFFIX`, DIGEST hashing the bytes of `inputs` (the code and assets that make
    the cached thing) in the order given: a change to any of them names a new file, so a stale one is never read."""
    digest = hashlib.sha256()
    for path in inputs:
        digest.update(Path(path).read_bytes())
    return cache_root() / f"{name}-{digest.hexdigest()[:12]}{suffix}"
