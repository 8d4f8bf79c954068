"""A short summary of a dataset for people: counts, floor, representations, size on disk."""

from __future__ import annotations

from pathlib import Path

from facegen.data.dataset.reader import Dataset


def dataset_summary(root: Path | str) -> dict[str, object]:
    """Counts by split, sex, BMI band and group; floor; representation shapes; bytes on disk."""
    ds = Dataset.open(root)
    card = ds.card
    size = sum(p.stat().st_size for p in ds.root.rglob("*") if p.is_file())
    return {
        "path": str(ds.root),
        "kind": card.get("kind"),
        "generator_version": card.get("generator_version"),
        "seed": card.get("seed"),
        "subjects": len(ds.rows),
        "counts": card.get("counts", {}),
        "floor_surface_mm": card.get("floor", {}).get("surface_mm"),
        "floor_depth_mae_mm": card.get("floor", {}).get("depth_mae_mm"),
        "representation": card.get("representation"),
        "ct": card.get("ct"),
        "size_mb": round(size / 1e6, 1),
    }
