"""The summary table every benchmark prints, its machine-readable BENCH_JSON line, a timed child process, and the
families' training configs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any


def print_summary(rows: list[tuple[str, str]], figures: dict[str, Any]) -> None:
    """Print (figure, value) rows as an aligned table, then all figures as one `BENCH_JSON {...}` line."""
    width = max(len(k) for k, _ in rows)
    vwidth = max(len(v) for _, v in rows)
    print("\n== summary ==")
    print(f"{'figure':<{width}}  {'value':>{vwidth}}")
    print(f"{'-' * width}  {'-' * vwidth}")
    for k, v in rows:
        print(f"{k:<{width}}  {v:>{vwidth}}")
    print("BENCH_JSON " + json.dumps(figures, sort_keys=True, default=str))


def run_timed(command: list[str]) -> tuple[float, float]:
    """Run a command; wall seconds and its peak RSS in MiB (from wait4)."""
    start = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024.0


CONFIG_SIZES = {"template": None, "pca": 128, "gan2d": 128, "diffusion2d": 128, "gan3d": 64}
"""Every family, and the size in its configs' names (configs/FAMILY-KIND-SIZE.toml; the template takes none)."""


def family_configs(kind: str) -> dict[str, Path | None]:
    """Every family's training config of one kind ('cpu': bench/models.py, 'bench': bench/families.py); None where
    the family has no config of that kind (its defaults)."""
    configs = Path(__file__).resolve().parents[1] / "configs"
    paths = {f: None if size is None else configs / f"{f}-{kind}-{size}.toml" for f, size in CONFIG_SIZES.items()}
    return {family: path if path is not None and path.exists() else None for family, path in paths.items()}
