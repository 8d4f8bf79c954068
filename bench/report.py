"""The summary table every benchmark prints, and its machine-readable BENCH_JSON line."""

from __future__ import annotations

import json
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
