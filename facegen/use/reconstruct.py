"""Reconstruct a case: from a skull (CT or skull mesh) and what is known of the person to a case folder.

The skull goes through the real-scans path (read, segment, canonical pose), is rendered in the model's
view, and the model gives the face for every plausible value of what is unknown (sex F and M; BMI low,
normal, high; age young, middle, old), as forensic artists show variants. Every face becomes meshes in the
input's own coordinates and in the canonical frame, depth maps, renders, a 3D viewer, a case report and a
manifest of hashes. The folder appears whole or not at all; the same input, model and seed give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from facegen import __version__
from facegen.data.representations.build import RepresentationSpec
from facegen.data.representations.voxel_grid import GridSpec
from facegen.data.scans.ingest import IngestOptions, head_representations, ingest_input
from facegen.data.subject import Sex, Subject
from facegen.io.atomic import staged_directory
from facegen.models.base import FaceModel
from facegen.use.case_report import case_report_html, case_report_pdf
from facegen.use.face_mesh import MESH_FORMATS, depth_map_mesh, mesh_file_bytes, to_scan_coordinates
from facegen.use.renders import case_renders
from facegen.use.viewer import BONE, SKIN, ViewerMesh, render_viewer

BMI_LEVELS = {"low": 20.0, "normal": 25.0, "high": 32.0}
"""What --bmi low/normal/high stand for (kg/m^2), and the three faces shown when BMI is unknown."""
MIN_TISSUE_MM = 1.5
"""The face is kept at least this far in front of the bone: a model may not put skin inside the skull."""
EDGE_JUMP_PIXELS = 8.0
"""A face-mesh triangle may not span a depth step of more than this many pixel widths (a silhouette)."""
AGE_LEVELS_YEARS = (30.0, 50.0, 70.0)
"""The ages shown side by side when age is unknown."""
DISCLAIMER = (
    "This face is an approximation to aid identification, not an identification. It shows what the model "
    "predicts from the skull and the stated metadata; it must not be used to confirm or exclude identity."
)


@dataclass(frozen=True)
class CaseMetadata:
    """What is known of the person: None means unknown (every plausible value is reconstructed)."""

    sex: Sex | None = None
    age_years: float | None = None
    bmi: float | None = None

    def __post_init__(self) -> None:
        Subject("case", self.sex, self.age_years, self.bmi, None)  # the adult ranges, with Subject's messages

    @staticmethod
    def parse(sex: str | None, age: float | None, bmi: str | None) -> CaseMetadata:
        """From the command line: sex F/M/unknown, age in years, BMI as a value or low/normal/high."""
        sex_value = None if sex in (None, "", "unknown", "U") else Sex(sex.upper()) if sex.upper() in "FM" else None
        if sex not in (None, "", "unknown", "U") and sex_value is None:
            raise ValueError(f"sex {sex!r} must be F, M or unknown")
        bmi_value: float | None = None
        if bmi not in (None, "", "unknown"):
            if bmi.lower() in BMI_LEVELS:
                bmi_value = BMI_LEVELS[bmi.lower()]
            else:
                try:
                    bmi_value = float(bmi)
                except ValueError:
                    raise ValueError(f"BMI {bmi!r} must be a number or low, normal, high") from None
        return CaseMetadata(sex_value, age, bmi_value)

    def variants(self) -> list[Subject]:
        """One subject per combination of plausible values of the unknown fields."""
        sexes = [self.sex] if self.sex is not None else [Sex.FEMALE, Sex.MALE]
        ages = [self.age_years] if self.age_years is not None else list(AGE_LEVELS_YEARS)
        bmis = [self.bmi] if self.bmi is not None else list(BMI_LEVELS.values())
        out = []
        for sex, age, bmi in itertools.product(sexes, ages, bmis):
            out.append(Subject(f"{sex.value}-age{age:g}-bmi{bmi:g}", sex, age, bmi, None))
        return out


@dataclass(frozen=True)
class CaseResult:
    """The finished case folder and what was made."""

    folder: Path
    variants: list[str]
    manifest: dict[str, str]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_weights_hash(folder: Path) -> str:
    """sha256 over a model folder's files (names and bytes, sorted): the exact weights used."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def reconstruct_case(
    input_path: Path,
    out: Path,
    *,
    model: FaceModel,
    model_folder: Path,
    model_label: str,
    metadata: CaseMetadata,
    samples: int | None = None,
    seed: int = 0,
    options: IngestOptions | None = None,
    accuracy: dict[str, Any] | None = None,
) -> CaseResult:
    """Reconstruct every metadata variant of one case into OUT (replaced whole, never left half-written);
    `samples` per face (None: the model's own default, several for a model that carries uncertainty)."""
    samples = model.default_samples if samples is None else samples
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if model.view is None:
        raise ValueError(f"model {model_label} does not record the depth-map view it was trained on; retrain it")
    input_path = Path(input_path)
    spec = RepresentationSpec(model.view, model.grid or GridSpec(shape=(8, 8, 8)))  # a 3D model's grid, voxelized
    # a case needs the skull; the CT's own skin only for the pose, so it is found coarsely
    head = ingest_input(input_path, replace(options or IngestOptions(), spec=spec, full_face=False))
    reps = head_representations(head, spec)
    if not reps.skull_depth.mask.any():
        raise ValueError(f"{input_path}: no bone is seen in the model's frontal view; is this a skull?")
    files: dict[str, bytes] = {}
    variants, corrections = [], {}
    for subject in metadata.variants():
        face_grid = None
        if model.grid is not None:  # a 3D model reads the whole skull as occupancy on its grid
            answer = model.reconstruct_grid(reps.skull_grid.occupancy, subject, seed=seed, n_samples=samples)
            rec, face_grid = answer.reconstruction, answer.face_occupancy
        else:
            rec = model.reconstruct(reps.skull_depth.depth_mm, reps.skull_depth.mask, subject, seed=seed,
                                    n_samples=samples)  # fmt: skip
        face_depth, pushed = _in_front_of_bone(rec.mean_mm, rec.mask, reps.skull_depth.depth_mm, reps.skull_depth.mask)
        face = depth_map_mesh(face_depth, rec.mask, model.view, max_edge_jump_mm=EDGE_JUMP_PIXELS * model.view.pixel_mm)
        name = subject.subject_id
        variants.append(name)
        corrections[name] = pushed
        files[f"{name}/face_depth_mm.npy"] = _npy_bytes(face_depth.astype(np.float32))
        files[f"{name}/face_mask.npy"] = _npy_bytes(rec.mask)
        if face_grid is not None:
            files[f"{name}/face_grid.npy"] = _npy_bytes((face_grid >= 0.5).astype(np.uint8))
        sd = rec.sd_mm if rec.face_depth_mm.shape[0] > 1 else None
        if sd is not None:
            files[f"{name}/face_sd_mm.npy"] = _npy_bytes(sd.astype(np.float32))
        surfaces = {"face": face}
        if rec.face_mesh is not None:  # a 3D model's own surface: the whole head, sides and back included
            surfaces["head_surface"] = rec.face_mesh
        for stem, mesh in surfaces.items():  # in the input's frame, and in the canonical frame
            files.update(_mesh_files(to_scan_coordinates(mesh, head.alignment.to_canonical), f"{name}/{stem}"))
            files.update(_mesh_files(mesh, f"{name}/{stem}_canonical"))
        for picture, png in case_renders(face, head.skull, uncertainty_mm=sd, view=model.view).items():
            files[f"{name}/{picture}.png"] = png
        files[f"{name}/viewer.html"] = _viewer_bytes(head.skull, face, name, model_label)
    files["skull_depth_mm.npy"] = _npy_bytes(reps.skull_depth.depth_mm)
    files.update(_mesh_files(head.skull, "skull_canonical"))
    record = {
        "input": head.record["input"],
        "metadata_given": {"sex": metadata.sex.value if metadata.sex else "unknown",
                           "age_years": metadata.age_years, "bmi": metadata.bmi},  # fmt: skip
        "variants": variants,
        "model": {"name": model_label, "family": model.family, "weights_sha256": model_weights_hash(model_folder),
                  "trained_on": "synthetic heads (facegen synth)", "view": model.view.to_dict()},  # fmt: skip
        "samples": samples,
        "seed": seed,
        "software_version": __version__,
        "alignment": head.record["alignment"],
        "accuracy": accuracy,
        "skin_moved_out_of_bone": {k: f"{v:.1%} of face pixels" for k, v in corrections.items()},
        "statement": DISCLAIMER,
    }
    files["case.json"] = (json.dumps(record, indent=2, sort_keys=True, default=str) + "\n").encode()
    files["report.html"] = case_report_html(record, files).encode()
    files["report.pdf"] = case_report_pdf(record, files)
    manifest = {name: _sha256(data) for name, data in sorted(files.items())}
    with staged_directory(Path(out), overwrite=True) as stage:
        for name, data in files.items():
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            (stage / name).write_bytes(data)
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return CaseResult(Path(out), variants, manifest)


def _in_front_of_bone(
    face: np.ndarray, face_mask: np.ndarray, skull: np.ndarray, skull_mask: np.ndarray
) -> tuple[np.ndarray, float]:
    """The face moved to at least MIN_TISSUE_MM in front of the bone; and the share of face pixels moved."""
    floor = np.where(skull_mask & face_mask, skull + MIN_TISSUE_MM, -np.inf)
    moved = face < floor
    return np.where(moved, floor, face), float(moved.sum() / max(face_mask.sum(), 1))


def _mesh_files(mesh: trimesh.Trimesh, stem: str) -> dict[str, bytes]:
    return {f"{stem}.{fmt}": mesh_file_bytes(mesh, fmt, name=Path(stem).name) for fmt in MESH_FORMATS}


def _viewer_bytes(skull: trimesh.Trimesh, face: trimesh.Trimesh, title: str, model_label: str) -> bytes:
    meshes = [ViewerMesh("Skull", skull, BONE, 1.0, False), ViewerMesh("Face", face, SKIN, 0.5, True)]
    caption = (f"Approximation to aid identification, not an identification; model {model_label}, trained on "
               "synthetic data")
    return render_viewer(meshes, title=title, caption=caption).encode()



def resolve_model(model: str | Path, *, console=None) -> tuple[FaceModel, Path, str]:
    """A run folder or 'default' (built on first use) as (model, its folder, a label for the outputs)."""
    from facegen.models.registry import MODEL_DIR, load_trained
    from facegen.use.default_model import DEFAULT_MODEL, build_default_model, default_model_dir

    if str(model) == "default":
        folder = default_model_dir()
        if not (folder / MODEL_DIR / "model.json").exists():
            if console is not None:
                console.print(f"building the default model {DEFAULT_MODEL} (first use: synthetic heads, a few minutes)")
            build_default_model()
        return load_trained(folder), folder / MODEL_DIR, DEFAULT_MODEL
    run = Path(model)
    if not run.exists():
        raise ValueError(f"model {model!r} is neither 'default' nor a run folder")
    folder = run / MODEL_DIR if (run / MODEL_DIR).is_dir() else run
    return load_trained(run), folder, run.name


def _case_accuracy(model_folder: Path, label: str, metadata: CaseMetadata) -> dict[str, Any] | None:
    """The model's evaluation figures for this case's groups, when its run holds an evaluation report."""
    from facegen.data.dataset.split import bmi_band
    from facegen.evaluation.bias import age_band
    from facegen.use.case_report import accuracy_for_case

    report = model_folder.parent / "evaluation" / "report.json"
    if not report.exists():
        return None
    record = json.loads(report.read_text())
    name = record["models"][0]["name"] if len(record["models"]) == 1 else label
    groups = {}
    if metadata.sex is not None:
        groups["sex"] = metadata.sex.value
    if metadata.age_years is not None:
        groups["age"] = age_band(metadata.age_years)
    if metadata.bmi is not None:
        groups["bmi"] = bmi_band(metadata.bmi)
    return accuracy_for_case(record, name, groups)


def reconstruct(
    input_path: Path | str,
    out: Path | str,
    *,
    sex: str | None = "unknown",
    age: float | None = None,
    bmi: str | float | None = "unknown",
    model: str | Path = "default",
    samples: int | None = None,
    seed: int = 0,
    options: IngestOptions | None = None,
    console=None,
) -> CaseResult:
    """The Python form of `facegen reconstruct`: checks the metadata first, then writes the case folder."""
    metadata = CaseMetadata.parse(sex, age, None if bmi is None else str(bmi))
    if not Path(input_path).exists():
        raise ValueError(f"{input_path}: no such file or folder")
    face_model, folder, label = resolve_model(model, console=console)
    return reconstruct_case(
        Path(input_path), Path(out), model=face_model, model_folder=folder, model_label=label, metadata=metadata,
        samples=samples, seed=seed, options=options, accuracy=_case_accuracy(folder, label, metadata),
    )  # fmt: skip
