"""Build a dataset from real scans: every case in its own worker, resumable, one failure never stops the rest.

Each case is written to a work folder (`OUT.ingest/cases/ID/`) under a staging name and renamed when
complete, so a re-run skips finished cases and retries the others. When every case has been tried, the
dataset is assembled in the same layout `facegen synth` writes (arrays, table, card, per-subject files).
Failures are listed in `OUT.ingest/failures.json` and the card; the work folder is removed once every case
has gone through.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import trimesh

from facegen import __version__
from facegen.data.dataset import layout
from facegen.data.dataset.card import FRAME, file_manifest, subject_counts
from facegen.data.dataset.split import stratified_split
from facegen.data.dataset.writer import create_arrays, representation_arrays, write_table
from facegen.data.scans.ingest import IngestOptions, head_representations, ingest_input
from facegen.data.subject import Subject
from facegen.io.atomic import write_bytes_atomic, write_json_atomic
from facegen.io.output_folder import (
    MARKER,
    check_output_folder,
    claim_output_folder,
    read_marker,
    remove_output_folder,
    staged_directory,
)

CASE_FILES = ("skull.ply", "landmarks.json", "scan.json", "alignment.png", "arrays.npz")
"""What a finished case folder holds (plus face.ply when the input had a face)."""
METADATA_COLUMNS = ("subject_id", "sex", "age_years", "bmi")
SPLIT_SEED = 0

AlignmentDrawer = Callable[[trimesh.Trimesh, trimesh.Trimesh | None, dict[str, np.ndarray], str, Path], None]
"""Writes the picture of a case's canonical alignment as (skull, face or None, landmarks, title, PNG path).
The caller's drawing layer supplies it (facegen.viz.alignment.save_alignment_figure): data draws nothing. With
several workers it must pickle (a module-level function)."""


@dataclass(frozen=True)
class Case:
    """One input and who it is."""

    input: Path
    subject: Subject
    landmark_file: Path | None = None


@dataclass(frozen=True)
class CaseOutcome:
    """What happened to a case: done (now or in an earlier run), or failed with a message."""

    subject_id: str
    ok: bool
    message: str = ""
    resumed: bool = False


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".zip", ".stl", ".ply", ".obj", ".dcm"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def plan_cases(inputs: list[Path], metadata: Path | None) -> list[Case]:
    """Pair inputs with metadata rows: by the `input` column (relative to the CSV) or by file stem = subject_id.

    An input without a row gets its stem as id and unknown metadata; a row without an input is an error, as
    is a duplicate id."""
    rows: dict[str, dict[str, str]] = {}
    by_input: dict[Path, str] = {}
    if metadata is not None:
        try:
            with Path(metadata).open(newline="") as fh:
                records = list(csv.DictReader(fh))
        except OSError as exc:
            raise ValueError(f"{metadata}: unreadable metadata ({exc})") from exc
        if not records or "subject_id" not in records[0]:
            raise ValueError(f"{metadata}: a metadata table needs a header with columns {', '.join(METADATA_COLUMNS)}")
        for r in records:
            sid = r["subject_id"].strip()
            if sid in rows:
                raise ValueError(f"{metadata}: subject_id {sid!r} appears twice")
            rows[sid] = r
            if r.get("input"):
                by_input[(Path(metadata).parent / r["input"]).resolve()] = sid
    cases, seen = [], set()
    for path in inputs:
        sid = by_input.get(Path(path).resolve(), _stem(Path(path)))
        if sid in seen:
            raise ValueError(f"{path}: subject id {sid!r} is given twice; name the inputs apart or add an input column")
        seen.add(sid)
        r = rows.get(sid, {})
        try:
            subject = Subject.from_cells(
                sid, r.get("sex", ""), r.get("age_years", ""), r.get("bmi", ""), r.get("group", "")
            )
        except ValueError as exc:
            raise ValueError(f"{metadata}: subject {sid}: {exc}") from exc
        landmarks = r.get("landmarks") or None
        cases.append(Case(Path(path), subject, Path(metadata).parent / landmarks if landmarks else None))
    unused = sorted(set(rows) - seen)
    if unused and inputs:
        raise ValueError(f"{metadata}: no input given for subject(s) {', '.join(unused[:5])}")
    return cases


INGEST_WORK_KIND = "ingest in progress"
"""The output-folder kind of the folder where finished cases wait (kept to resume after failures)."""


def work_dir(out: Path) -> Path:
    """Where finished cases wait until the dataset is assembled: beside OUT, named after it."""
    out = Path(os.path.abspath(out))
    return out.with_name(out.name + ".ingest")


def _case_dir(out: Path, subject_id: str) -> Path:
    return work_dir(out) / "cases" / subject_id


def _done(folder: Path) -> bool:
    return all((folder / name).is_file() for name in CASE_FILES)


def process_case(case: Case, *, out: Path, options: IngestOptions, draw_alignment: AlignmentDrawer) -> CaseOutcome:
    """Ingest one case into its work folder (runs in a worker); errors become a failed outcome."""
    sid = case.subject.subject_id
    folder = _case_dir(out, sid)
    if _done(folder):
        return CaseOutcome(sid, True, resumed=True)
    try:
        head = ingest_input(case.input, options, case.landmark_file)
        rep = head_representations(head, options.spec)
        with staged_directory(folder, overwrite=True, kind="ingested case") as stage:
            write_bytes_atomic(stage / "skull.ply", head.skull.export(file_type="ply"))
            if head.face is not None:
                write_bytes_atomic(stage / "face.ply", head.face.export(file_type="ply"))
            alignment = head.alignment.to_dict()
            write_json_atomic(
                stage / "landmarks.json",
                {"frame": FRAME, "skull": alignment["landmarks_canonical_mm"], "method": alignment["method"]},
            )
            write_json_atomic(
                stage / "scan.json", {**head.record, "header_sex": head.sex, "header_age": head.age_years}
            )
            canonical = {k: head.alignment.to_canonical.apply(v) for k, v in head.alignment.landmarks.items()}
            shown = {k: v for k, v in canonical.items() if k.startswith(("porion", "orbitale", "nasion"))}
            draw_alignment(head.skull, head.face, shown, f"{sid}: canonical alignment", stage / "alignment.png")
            np.savez_compressed(stage / "arrays.npz", **representation_arrays(rep, options.spec))
    except Exception as exc:  # one case's failure is reported, never fatal to the batch
        return CaseOutcome(sid, False, f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc))
    return CaseOutcome(sid, True)


def _subject_with_header(case: Case, folder: Path) -> Subject:
    """Metadata from the table, filled from the DICOM header (sex, age) where the user kept them."""
    s = case.subject
    record = json.loads((folder / "scan.json").read_text())
    sex = s.sex if s.sex is not None else record.get("header_sex")
    age = s.age_years if s.age_years is not None else record.get("header_age")
    return Subject(s.subject_id, sex, age, s.bmi, s.group)


def _assemble(out: Path, cases: list[Case], outcomes: list[CaseOutcome], options: IngestOptions) -> dict:
    done = [c for c, o in zip(cases, outcomes, strict=True) if o.ok]
    with staged_directory(out, overwrite=True, kind=layout.DATASET_KIND) as stage:  # checked before the work
        paths = layout.DatasetLayout(stage)
        group = create_arrays(paths.arrays, len(done), options.spec)
        subjects = []
        for index, case in enumerate(done):
            source = _case_dir(out, case.subject.subject_id)
            subjects.append(_subject_with_header(case, source))
            with np.load(source / "arrays.npz") as arrays:
                for name in arrays.files:
                    group[name][index] = arrays[name]
            target = paths.subject_dir(case.subject.subject_id)
            target.mkdir(parents=True)
            for f in source.iterdir():
                if f.name not in ("arrays.npz", MARKER):
                    shutil.copy2(f, target / f.name)
        splits = stratified_split(subjects, seed=SPLIT_SEED)
        write_table(paths.table, [(i, s, None, None) for i, s in enumerate(subjects)], splits)
        failures = {o.subject_id: o.message for o in outcomes if not o.ok}
        card = {
            "kind": "facegen ingested scans",
            "software_version": __version__,
            "n_subjects": len(done),
            "failures": failures,
            "options": {
                "skin_hu": options.skin_hu,
                "bone_hu": options.bone_hu,
                "hu_offset": options.hu_offset,
                "force_intensity": options.force_intensity,
                "keep_sex_age": options.keep_sex_age,
            },
            "counts": subject_counts(subjects, splits),
            "noise_free_face": False,
            "representation": options.spec.to_dict(),
            "frame": FRAME,
            "files": file_manifest(stage),
        }
        write_json_atomic(paths.card, card)
    return card


def _result(future, case: Case) -> CaseOutcome:
    """A worker's outcome; a worker that died (out of memory, killed) fails its case, not the batch."""
    try:
        return future.result()
    except Exception as exc:
        return CaseOutcome(case.subject.subject_id, False, f"worker stopped: {type(exc).__name__}: {exc}")


def ingest_dataset(
    inputs: list[Path],
    out: Path,
    *,
    draw_alignment: AlignmentDrawer,
    metadata: Path | None = None,
    options: IngestOptions | None = None,
    workers: int = 1,
    overwrite: bool = False,
    on_case: Callable[[CaseOutcome], None] | None = None,
) -> tuple[dict | None, list[CaseOutcome]]:
    """Ingest every input into the dataset folder `out`; returns (card or None if nothing succeeded, outcomes).

    `draw_alignment` writes each case's alignment.png (a dataset of scans holds one per subject). An earlier
    dataset at `out` is replaced only with `overwrite`, or when resuming its unfinished ingest."""
    options = options or IngestOptions()
    out = Path(out)
    cases = plan_cases([Path(p) for p in inputs], metadata)
    if not cases:
        raise ValueError("no inputs given")
    resuming = (read_marker(work_dir(out)) or {}).get("kind") == INGEST_WORK_KIND
    check_output_folder(out, overwrite=overwrite or resuming, kind=layout.DATASET_KIND)
    claim_output_folder(work_dir(out), kind=INGEST_WORK_KIND, files=["failures.json"], folders=["cases"], keep=True)
    (work_dir(out) / "cases").mkdir(exist_ok=True)
    outcomes: dict[str, CaseOutcome] = {}
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        run_case = partial(process_case, out=out, options=options, draw_alignment=draw_alignment)
        futures = [pool.submit(run_case, c) for c in cases] if pool else []
        for n, case in enumerate(cases):
            outcome = _result(futures[n], case) if pool else run_case(case)
            outcomes[case.subject.subject_id] = outcome
            if on_case:
                on_case(outcome)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    ordered = [outcomes[c.subject.subject_id] for c in cases]
    failures = {o.subject_id: o.message for o in ordered if not o.ok}
    write_json_atomic(work_dir(out) / "failures.json", failures)
    card = _assemble(out, cases, ordered, options) if any(o.ok for o in ordered) else None
    if not failures:
        remove_output_folder(work_dir(out))
    return card, ordered
