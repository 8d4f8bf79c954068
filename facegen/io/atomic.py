"""Atomic writes: a file or folder appears whole under its final name, or not at all."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, value: object) -> None:
    """JSON with sorted keys and a final newline, written atomically."""
    write_bytes_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


@contextlib.contextmanager
def staged_directory(final: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder beside `final`; on success it replaces `final`, on error it is removed."""
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists; choose another --out or pass --overwrite")
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".partial"))
    try:
        yield stage
        if final.exists():
            shutil.rmtree(final)
        os.replace(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
