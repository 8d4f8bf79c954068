"""Checkpoints: written atomically at intervals, carrying everything an exact resume needs.

A checkpoint holds the step, the config, the code version, the data fingerprint, every network's and
optimiser's state and the random states. A kill at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegen import __version__
from facegen.io.atomic import write_bytes_atomic

CHECKPOINTS = "checkpoints"
_NAME = re.compile(r"^step-(\d{7,})\.pt$")


def checkpoint_path(run: Path, step: int) -> Path:
    return Path(run) / CHECKPOINTS / f"step-{step:07d}.pt"


def checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(step, path) of every finished checkpoint of a run, oldest first (temporary files are ignored)."""
    folder = Path(run) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(run: Path) -> Path | None:
    found = checkpoints(run)
    return found[-1][1] if found else None


def save_checkpoint(run: Path, step: int, payload: dict[str, Any], *, keep: int) -> Path:
    """Write step's checkpoint atomically, then drop all but the newest `keep`."""
    buf = io.BytesIO()
    torch.save({"step": step, **payload}, buf)
    path = checkpoint_path(run, step)
    write_bytes_atomic(path, buf.getvalue())
    for _, old in checkpoints(run)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's content, or a ValueError naming the damaged file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many kinds for a truncated or foreign file
        raise ValueError(f"checkpoint {path} is unreadable ({type(exc).__name__}: {exc}); delete it to resume "
                         "from the one before") from exc  # fmt: skip


def code_version() -> dict[str, str | None]:
    """facegen and torch versions, and the git commit when the code runs from a checkout."""
    try:
        root = Path(__file__).resolve().parents[2]
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"facegen": __version__, "torch": torch.__version__, "git_commit": commit}


def data_fingerprint(root: Path) -> str:
    """sha256 of the dataset card, which itself lists the checksum of every file of the dataset."""
    return hashlib.sha256((Path(root) / "dataset.json").read_bytes()).hexdigest()


def random_states() -> dict[str, Any]:
    states: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state()}
    states["torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
