"""Check every file of a dataset and say which one is broken and how."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import trimesh

from facegen.data.dataset import layout
from facegen.data.dataset.reader import Dataset


def _check_manifest(ds: Dataset) -> list[str]:
    problems = []
    files = ds.card.get("files", {})
    for rel, digest in sorted(files.items()):
        path = ds.root / rel
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{path}: contents changed since the dataset was written (checksum mismatch)")
    return problems


def _check_arrays(ds: Dataset) -> list[str]:
    problems = []
    group = ds.arrays()
    n = len(ds.rows)
    for name in layout.DEPTH_ARRAYS + layout.MASK_ARRAYS + layout.GRID_ARRAYS:
        if name not in group:
            problems.append(f"{ds.paths.arrays / name}: array missing")
            continue
        array = group[name]
        if array.shape[0] != n:
            problems.append(f"{ds.paths.arrays / name}: {array.shape[0]} subjects, the table has {n}")
            continue
        for row in ds.rows:
            try:
                value = np.asarray(array[row.index])
            except Exception as exc:  # a corrupt chunk surfaces as a codec or IO error
                problems.append(f"{ds.paths.arrays / name} (subject {row.subject.subject_id}): unreadable chunk: {exc}")
                continue
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                problems.append(f"{ds.paths.arrays / name} (subject {row.subject.subject_id}): non-finite values")
    return problems


def _check_subject_files(ds: Dataset) -> list[str]:
    problems = []
    for row in ds.rows:
        folder = ds.paths.subject_dir(row.subject.subject_id)
        synthetic = ds.card.get("noise_free_face", True)
        for name in layout.SUBJECT_FILES if synthetic else layout.SCAN_SUBJECT_FILES:
            path = folder / name
            try:
                if not path.is_file():
                    problems.append(f"{path}: missing")
                elif name.endswith(".ply"):
                    mesh = trimesh.load(path, force="mesh")
                    if len(mesh.faces) == 0:
                        problems.append(f"{path}: mesh has no faces")
                elif name.endswith(".json"):
                    json.loads(path.read_text())
            except Exception as exc:
                problems.append(f"{path}: unreadable ({type(exc).__name__}: {exc})")
    return problems


def verify_dataset(root: Path | str) -> list[str]:
    """Problems found, each naming the file; an empty list means the dataset is whole."""
    try:
        ds = Dataset.open(root)
        ds.card, ds.rows  # noqa: B018 - parse both now so their errors are reported here
    except ValueError as exc:
        return [str(exc)]
    return _check_manifest(ds) + _check_arrays(ds) + _check_subject_files(ds)
