"""Write a synthetic dataset: subjects in parallel worker processes, arrays into one chunk per subject.

Every subject draws from its own child of the dataset seed (numpy SeedSequence), so the output does not
depend on the number of workers or their order. The folder is built under a staging name and renamed when
complete: an interrupted run leaves no half-written dataset.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import zarr

from facegen import __version__
from facegen.data.dataset import layout
from facegen.data.dataset.card import build_card
from facegen.data.dataset.split import SPLIT_FRACTIONS, stratified_split
from facegen.data.representations.build import HeadRepresentations, RepresentationSpec, represent
from facegen.data.subject import Subject
from facegen.io.atomic import write_bytes_atomic, write_json_atomic
from facegen.io.output_folder import check_output_folder, staged_directory

_COMPRESSOR = zarr.codecs.ZstdCodec(level=3, checksum=True)


@dataclass(frozen=True)
class SubjectResult:
    """What one worker hands back: metadata, floors, tissue depths and the arrays to store."""

    index: int
    subject: Subject
    floor_mm: float
    floor_depth_mae_mm: float
    tissue_depth_mm: dict[str, float]
    arrays: dict[str, np.ndarray]


_GENERATORS: dict = {}


def _generator(skull_variation: str = "standard"):
    """The process's head generator of this skull variation, built once (forked workers inherit it)."""
    if skull_variation not in _GENERATORS:
        from facegen.data.synthetic.generator import HeadGenerator

        _GENERATORS[skull_variation] = HeadGenerator(skull_variation=skull_variation)
    return _GENERATORS[skull_variation]


def subject_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of subject `index` in a dataset of this seed."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def synthesize_subject(
    index: int, *, seed: int, spec: RepresentationSpec, stage: Path, ct: bool, skull_variation: str = "standard"
) -> SubjectResult:
    """Generate, represent and write the files of subject `index` (runs in a worker process)."""
    from facegen.data.synthetic.population import sample_subject

    rng = subject_rng(seed, index)
    subject = sample_subject(rng, f"S{index:05d}")
    head = _generator(skull_variation).generate(subject, rng)
    rep = represent(head.skull, head.face, spec=spec, noise_free_face=head.noise_free_face,
                    skull_landmarks=head.skull_landmarks)  # the skull as a case's is read: no neck bones
    folder = layout.DatasetLayout(stage).subject_dir(subject.subject_id)
    for name, mesh in (
        ("skull.ply", head.skull),
        ("face.ply", head.face),
        ("noise_free_face.ply", head.noise_free_face),
    ):
        write_bytes_atomic(folder / name, mesh.export(file_type="ply"))
    landmarks = {
        "frame": "canonical: +x subject's left, +y superior, +z anterior; origin porion midpoint; mm",
        "face": {k: np.round(v, 4).tolist() for k, v in sorted(head.face_landmarks.items())},
        "skull": {k: np.round(v, 4).tolist() for k, v in sorted(head.skull_landmarks.items())},
        "tissue_depth_mm": {k: round(v, 4) for k, v in sorted(head.tissue_depth_mm.items())},
    }
    write_json_atomic(folder / "landmarks.json", landmarks)
    if ct:
        from facegen.data.synthetic.ct import render_ct
        from facegen.io.volume import write_nifti

        write_nifti(render_ct(head, seed=int(rng.integers(2**31))), folder / layout.CT_FILE)
    region = rep.face_region
    nf = rep.noise_free_face_depth
    floor_depth = float(np.abs(rep.face_depth.depth_mm - nf.depth_mm)[region & nf.mask].mean())
    arrays = representation_arrays(rep, spec)
    return SubjectResult(index, subject, head.floor_mm, floor_depth, head.tissue_depth_mm, arrays)


def representation_arrays(rep: HeadRepresentations, spec: RepresentationSpec) -> dict[str, np.ndarray]:
    """One subject's stored arrays; what a head lacks (noise-free face, face) is stored as zeros."""
    nf = rep.noise_free_face_depth
    return {
        "skull_depth": rep.skull_depth.depth_mm.astype(np.float32),
        "face_depth": rep.face_depth.depth_mm.astype(np.float32),
        "noise_free_face_depth": nf.depth_mm.astype(np.float32)
        if nf is not None
        else np.zeros(spec.view.shape, np.float32),
        "skull_mask": rep.skull_depth.mask.astype(np.uint8),
        "face_mask": rep.face_depth.mask.astype(np.uint8),
        "face_region": rep.face_region.astype(np.uint8),
        "skull_grid": rep.skull_grid.occupancy,
        "face_grid": rep.face_grid.occupancy if rep.face_grid is not None else np.zeros(spec.grid.shape, np.uint8),
    }


def create_arrays(root: Path, n: int, spec: RepresentationSpec) -> zarr.Group:
    """Empty arrays for n subjects, one chunk per subject, with the representation recorded."""
    group = zarr.open_group(root, mode="w")
    h, w = spec.view.shape
    for name in layout.DEPTH_ARRAYS:
        group.create_array(name, shape=(n, h, w), chunks=(1, h, w), dtype="float32", compressors=_COMPRESSOR)
    for name in layout.MASK_ARRAYS:
        group.create_array(name, shape=(n, h, w), chunks=(1, h, w), dtype="uint8", compressors=_COMPRESSOR)
    for name in layout.GRID_ARRAYS:
        group.create_array(
            name, shape=(n, *spec.grid.shape), chunks=(1, *spec.grid.shape), dtype="uint8", compressors=_COMPRESSOR
        )
    group.attrs["representation"] = spec.to_dict()
    group.attrs["units"] = {
        "depth": "mm, canonical z of the first surface seen from the front",
        "grid": "occupancy 0/1",
    }
    return group


def write_table(
    path: Path, rows: list[tuple[int, Subject, float | None, float | None]], splits: dict[str, str]
) -> None:
    """subjects.csv from (index, subject, floor_mm, floor_depth_mae_mm) rows; unknown values stay empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["index", "subject_id", "sex", "age_years", "bmi", "group", "split", "floor_mm", "floor_depth_mae_mm"]
    )
    for index, s, floor, floor_depth in rows:
        writer.writerow(
            [
                index,
                s.subject_id,
                *s.to_row(),
                splits[s.subject_id],
                "" if floor is None else f"{floor:.4f}",
                "" if floor_depth is None else f"{floor_depth:.4f}",
            ]
        )
    write_bytes_atomic(path, buf.getvalue().encode())


def write_synthetic_dataset(
    out: Path,
    *,
    n: int,
    seed: int,
    spec: RepresentationSpec | None = None,
    ct: bool = False,
    workers: int = 1,
    overwrite: bool = False,
    on_subject: Callable[[SubjectResult], None] | None = None,
    skull_variation: str = "standard",
    split: tuple[float, float, float] | None = None,
) -> dict:
    """Generate `n` subjects into the dataset folder `out`; returns the dataset card. `skull_variation`: see
    `facegen.data.synthetic.skull_variation` (a card records it unless it is "standard"); `split`, the train,
    val and test fractions (None: SPLIT_FRACTIONS; a card records them when given)."""
    from facegen.data.synthetic.skull_variation import check_skull_variation

    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    check_skull_variation(skull_variation)
    if split is not None:
        stratified_split([], seed=seed, fractions=split)  # refuses bad fractions before any head is made
    spec = spec or RepresentationSpec()
    check_output_folder(Path(out), overwrite=overwrite, kind=layout.DATASET_KIND)  # before the template build
    _generator(skull_variation)  # build or load the template once; forked workers inherit it
    with staged_directory(Path(out), overwrite=overwrite, kind=layout.DATASET_KIND) as stage:
        group = create_arrays(layout.DatasetLayout(stage).arrays, n, spec)
        job = partial(synthesize_subject, seed=seed, spec=spec, stage=stage, ct=ct, skull_variation=skull_variation)
        results: list[SubjectResult] = []
        pool = (
            ProcessPoolExecutor(max_workers=workers, initializer=_generator, initargs=(skull_variation,))
            if workers > 1
            else None
        )
        try:
            for result in pool.map(job, range(n)) if pool else map(job, range(n)):
                for name, value in result.arrays.items():
                    group[name][result.index] = value
                results.append(result)
                if on_subject:
                    on_subject(result)
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)
        subjects = [r.subject for r in results]
        splits = stratified_split(subjects, seed=seed, fractions=split or SPLIT_FRACTIONS)
        paths = layout.DatasetLayout(stage)
        write_table(paths.table, [(r.index, r.subject, r.floor_mm, r.floor_depth_mae_mm) for r in results], splits)
        card = build_card(stage, results, splits, seed=seed, spec=spec, ct=ct, software_version=__version__)
        if skull_variation != "standard":
            card["skull_variation"] = skull_variation
        if split is not None:
            card["split_fractions"] = dict(zip(("train", "val", "test"), map(float, split), strict=True))
        write_json_atomic(paths.card, card)
    return json.loads(layout.DatasetLayout(Path(out)).card.read_text())
