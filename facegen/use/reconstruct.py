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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from facegen import __version__
from facegen.data.pose import CANONICAL_FRAME_NAME
from facegen.data.representations.build import RepresentationSpec
from facegen.data.representations.depth_map import DepthView
from facegen.data.representations.mandibular_plane import above_plane
from facegen.data.representations.voxel_grid import GridSpec
from facegen.data.scans.ingest import IngestedHead, IngestOptions, head_representations, ingest_input
from facegen.data.scans.scan import Space
from facegen.data.subject import Sex, Subject
from facegen.io.output_folder import check_output_folder, staged_directory
from facegen.models.appearance.hirisplex import PhenotypePrediction, phenotype_from_files
from facegen.models.base import FaceModel
from facegen.training.skull_space import SkullSpace
from facegen.use.case_checks import inside_bone, missing_bone, skull_novelty
from facegen.use.case_frames import LANDMARKS_FILE, CaseFrames
from facegen.use.case_report import case_report_html, case_report_pdf
from facegen.use.face_mesh import (
    MESH_FORMATS,
    depth_map_mesh,
    frontal_mask,
    lidded_skin_pits,
    mesh_file_bytes,
    mesh_header,
    smoothed_outline,
    to_scan_coordinates,
)
from facegen.use.head.appearance import Appearance
from facegen.use.head.files import HeadResult, head_result
from facegen.use.head.fit import fit_head
from facegen.use.pose import POSE_FIGURE, canonical_landmarks, check_pose, pose_figure_png, pose_record
from facegen.use.renders import case_renders
from facegen.use.tissue_depths import PUBLISHED_SOURCE, TISSUE_DEPTH_MEASURE, tissue_depth_table
from facegen.use.uncertainty import SPREAD_TITLE, SpreadScale, case_spreads, spread_ply_bytes, vertex_values
from facegen.use.viewer import BONE, SKIN, ColourLegend, ViewerMesh, render_viewer

BMI_LEVELS = {"low": 20.0, "normal": 25.0, "high": 32.0}
"""What --bmi low/normal/high stand for (kg/m^2), and the three faces shown when BMI is unknown."""
MIN_TISSUE_MM = 1.5
"""The face is kept at least this far in front of the bone: a model may not put skin inside the skull."""
EDGE_JUMP_PIXELS = 8.0
"""A face-mesh triangle may not span a depth step of more than this many pixel widths (a silhouette)."""
CANONICAL_FORMATS = ("ply",)
"""The canonical-frame copies are for comparison with facegen's own data: PLY alone (the scan-frame meshes,
which the examiner opens, come in every format)."""
CASE_KIND = "case"
"""The output-folder kind of a case folder (see facegen.io.output_folder)."""
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
    overwrite: bool = False,
    landmark_file: Path | None = None,
    accept_weak_pose: bool = False,
    phenotype: PhenotypePrediction | None = None,
    complete_head: bool = True,
) -> CaseResult:
    """Reconstruct every metadata variant of one case into OUT (whole or not at all; an earlier case there is
    replaced only with `overwrite`); `samples` per face (None: the model's own default). The pose comes from
    `landmark_file` when given, else from the automatic fit, refused when weak unless `accept_weak_pose`.
    `phenotype`: eye and hair colour predicted from DNA; only its dosages and predictions enter the case.
    `complete_head`: each face also as the ICT model's complete head fitted to it, coloured by the phenotype."""
    check_output_folder(Path(out), overwrite=overwrite, kind=CASE_KIND)  # before the work, not after it
    samples = model.default_samples if samples is None else samples
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if model.view is None:
        raise ValueError(f"model {model_label} does not record the depth-map view it was trained on; retrain it")
    input_path = Path(input_path)
    spec = RepresentationSpec(model.view, model.grid or GridSpec(shape=(8, 8, 8)))  # a 3D model's grid, voxelized
    # a case needs the skull; the CT's own skin only for the pose, so it is found coarsely
    head = ingest_input(input_path, replace(options or IngestOptions(), spec=spec, full_face=False), landmark_file)
    check_pose(head, accept_weak=accept_weak_pose)  # before any face is made on it
    reps = head_representations(head, spec)
    if not reps.skull_depth.mask.any():
        raise ValueError(f"{input_path}: no bone is seen in the model's frontal view; is this a skull?")
    frames = CaseFrames.of(head)  # the scan frame (the input's own world, mm) and the canonical frame
    files: dict[str, bytes] = {POSE_FIGURE: pose_figure_png(head)}
    variants, moved, face_masks = [], {}, {}
    landmarks = canonical_landmarks(head.alignment)
    viewer_faces: dict[str, tuple[trimesh.Trimesh, np.ndarray | None]] = {}  # the case's one viewer: every face
    whole_faces: dict[str, trimesh.Trimesh] = {}
    for subject in metadata.variants():
        face_grid = None
        if model.grid is not None:  # a 3D model reads the whole skull as occupancy on its grid
            answer = model.reconstruct_grid(reps.skull_grid.occupancy, subject, seed=seed, n_samples=samples)
            rec, face_grid = answer.reconstruction, answer.face_occupancy
        else:
            rec = model.reconstruct(reps.skull_depth.depth_mm, reps.skull_depth.mask, subject, seed=seed,
                                    n_samples=samples)  # fmt: skip
        face_depth, moved[subject.subject_id] = _in_front_of_bone(rec.mean_mm, rec.mask, reps.skull_depth.depth_mm,
                                                                  reps.skull_depth.mask)  # fmt: skip
        face_depth = lidded_skin_pits(face_depth, rec.mask, model.view)  # the nostrils are no holes from the front
        face_and_chin = rec.mask & above_plane(face_depth, model.view, landmarks)  # not the neck below the chin
        frontal = frontal_mask(face_depth, face_and_chin, model.view)
        face = smoothed_outline(depth_map_mesh(face_depth, frontal, model.view,
                                               max_edge_jump_mm=EDGE_JUMP_PIXELS * model.view.pixel_mm))  # fmt: skip
        name = subject.subject_id
        variants.append(name)
        face_masks[name] = rec.mask
        files[f"{name}/face_depth_mm.npy"] = _npy_bytes(face_depth.astype(np.float32))
        files[f"{name}/face_mask.npy"] = _npy_bytes(rec.mask)
        if face_grid is not None:
            files[f"{name}/face_grid.npy"] = _npy_bytes((face_grid >= 0.5).astype(np.uint8))
        sd = rec.sd_mm if rec.has_spread else None
        if sd is not None:
            files[f"{name}/face_sd_mm.npy"] = _npy_bytes(sd.astype(np.float32))
        surfaces = {"face": face}
        if rec.face_mesh is not None:  # a 3D model's own surface: the whole head, sides and back included
            surfaces["head_surface"] = rec.face_mesh
        for stem, mesh in surfaces.items():  # in the input's frame, and in the canonical frame
            scan_mesh = to_scan_coordinates(mesh, head.alignment.to_canonical, patient_axes=head.frame.axes)
            files.update(_mesh_files(scan_mesh, f"{name}/{stem}", frames.scan.name, frames.scan.space))
            files.update(_mesh_files(mesh, f"{name}/{stem}_canonical", CANONICAL_FRAME_NAME, None, CANONICAL_FORMATS))
        viewer_faces[name] = (face, sd)
        whole_faces[name] = depth_map_mesh(face_depth, rec.mask, model.view,
                                           max_edge_jump_mm=EDGE_JUMP_PIXELS * model.view.pixel_mm)  # fmt: skip
    space = SkullSpace.load(model_folder)
    skull_depth, skull_mask = reps.skull_depth.depth_mm, reps.skull_depth.mask
    cut_at = head.record.get("field_of_view", {}).get("skull_cut_at")
    missing, no_bone = missing_bone(space, skull_depth, skull_mask, model.view, cut_at=cut_at)
    spreads, scale = case_spreads(viewer_faces, model.view)
    heads: dict[str, HeadResult] = {}  # each face's complete head: its files, and what the viewer shows
    with ThreadPoolExecutor(max_workers=1) as pool:  # head fits (numpy) beside the renders (pyplot: this thread)
        fits = {name: pool.submit(fit_head, face, face_sd_mm=spreads.get(name))
                for name, (face, _) in viewer_faces.items()} if complete_head else {}  # fmt: skip
        # tissue depths from the whole depth-map face: the lateral landmarks (zygion, gonion) lie beyond the frontal
        # mesh
        depths = {name: tissue_depth_table(face, landmarks, model.view, head.skull, no_bone)
                  for name, face in whole_faces.items()}  # fmt: skip
        for name, (face, sd) in viewer_faces.items():
            files.update(_spread_files(name, face, spreads.get(name), scale, no_bone, model.view, head, frames))
            renders = case_renders(face, head.skull, uncertainty_mm=sd, view=model.view,
                                   uncertainty_max_mm=scale.max_mm if scale else None, no_bone=no_bone)  # fmt: skip
            files.update({f"{name}/{picture}.png": png for picture, png in renders.items()})
        # the full head in one standard topology, per face, coloured by what DNA says (if given)
        appearance = None if phenotype is None else Appearance.from_dict(phenotype.summary(), source="HIrisPlex")
        for name, fitted in fits.items():
            face = viewer_faces[name][0]
            heads[name] = head_result(face, face_sd_mm=spreads.get(name), appearance=appearance, fit=fitted.result())
            files.update({f"{name}/{path}": data for path, data in heads[name].files.items()})
    files["viewer.html"] = _viewer_bytes(head.skull, viewer_faces, spreads, scale, model_label, heads)
    files["skull_depth_mm.npy"] = _npy_bytes(reps.skull_depth.depth_mm)
    scan_skull = to_scan_coordinates(head.skull, head.alignment.to_canonical, patient_axes=head.frame.axes)
    files.update(_mesh_files(scan_skull, "skull", frames.scan.name, frames.scan.space))
    files.update(_mesh_files(head.skull, "skull_canonical", CANONICAL_FRAME_NAME, None, CANONICAL_FORMATS))
    method = head.alignment.method
    files[LANDMARKS_FILE] = frames.markups_bytes(head.alignment.landmarks, f"facegen alignment ({method})")
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
        "skin": head.record.get("skin"),
        "pose": pose_record(head, accepted_weak=accept_weak_pose),
        "frames": frames.record(model.view),
        "accuracy": accuracy,
        "uncertainty": _uncertainty_record(spreads, scale, samples, model),
        "skull_novelty": skull_novelty(space, skull_depth, skull_mask),
        "missing_bone": missing,
        "inside_bone": inside_bone(moved, face_masks, model.view),
        "tissue_depth": {"published": PUBLISHED_SOURCE, "measured": TISSUE_DEPTH_MEASURE, "faces": depths},
        "statement": DISCLAIMER,
    }
    if phenotype is not None:
        record["phenotype"] = phenotype.record()
    files["case.json"] = (json.dumps(record, indent=2, sort_keys=True, default=str) + "\n").encode()
    files["report.html"] = case_report_html(record, files).encode()
    files["report.pdf"] = case_report_pdf(record, files)
    manifest = {name: _sha256(data) for name, data in sorted(files.items())}
    with staged_directory(Path(out), overwrite=overwrite, kind=CASE_KIND) as stage:
        for name, data in files.items():
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            (stage / name).write_bytes(data)
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return CaseResult(Path(out), variants, manifest)


def _in_front_of_bone(
    face: np.ndarray, face_mask: np.ndarray, skull: np.ndarray, skull_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The face moved to at least MIN_TISSUE_MM in front of the bone; and the (H, W) face pixels moved."""
    floor = np.where(skull_mask & face_mask, skull + MIN_TISSUE_MM, -np.inf)
    moved = face < floor
    return np.where(moved, floor, face), moved


def _spread_files(
    name: str, face: trimesh.Trimesh, spread: np.ndarray | None, scale: SpreadScale | None,
    no_bone: np.ndarray | None, view: DepthView, head: IngestedHead, frames: CaseFrames,
) -> dict[str, bytes]:  # fmt: skip
    """A face's per-vertex spread and no-bone marks, and its mesh coloured by spread in both frames."""
    files = {}
    marks = None if no_bone is None else vertex_values(face, no_bone, view).astype(bool)
    if marks is not None:
        files[f"{name}/face_no_bone_beneath.npy"] = _npy_bytes(marks)
    if spread is None or scale is None:
        return files
    files[f"{name}/face_sd_mm_per_vertex.npy"] = _npy_bytes(spread.astype(np.float32))
    scan_face = to_scan_coordinates(face, head.alignment.to_canonical, patient_axes=head.frame.axes)
    files[f"{name}/face_uncertainty.ply"] = spread_ply_bytes(
        scan_face, spread, scale, header=mesh_header(frames.scan.name, frames.scan.space), no_bone=marks)
    files[f"{name}/face_uncertainty_canonical.ply"] = spread_ply_bytes(
        face, spread, scale, header=mesh_header(CANONICAL_FRAME_NAME, None), no_bone=marks)
    return files


def _uncertainty_record(
    spreads: dict[str, np.ndarray], scale: SpreadScale | None, samples: int, model: FaceModel
) -> dict[str, Any]:
    """How the case states its uncertainty: the source of the spread, the case's colour scale, per-face figures."""
    if scale is None:
        return {"source": None, "statement": f"model {model.family} gives one face and no spread with "
                f"{samples} sample(s); ask for several with --samples"}  # fmt: skip
    source = "the model's own predictive SD" if samples == 1 else f"the SD over {samples} samples per face"
    per_face = {name: {"median_mm": round(float(np.median(v)), 2), "p95_mm": round(float(np.percentile(v, 95)), 2)}
                for name, v in spreads.items()}  # fmt: skip
    return {"source": source, "scale": scale.to_dict(), "faces": per_face,
            "statement": f"every face point carries a spread (SD, mm) from {source}; colours run from 0 to "
                         f"{scale.max_mm:g} mm for every face of this case"}  # fmt: skip


def _mesh_files(
    mesh: trimesh.Trimesh, stem: str, frame: str, space: Space | None, formats: tuple[str, ...] = MESH_FORMATS
) -> dict[str, bytes]:
    """Each format of one surface, each file's header naming its frame (and SPACE tag) and units."""
    name = Path(stem).name
    return {f"{stem}.{fmt}": mesh_file_bytes(mesh, fmt, name=name, frame=frame, space=space) for fmt in formats}


def _viewer_bytes(
    skull: trimesh.Trimesh, faces: dict[str, tuple[trimesh.Trimesh, np.ndarray | None]],
    spreads: dict[str, np.ndarray], scale: SpreadScale | None, model_label: str, heads: dict[str, HeadResult],
) -> bytes:
    """The case's one viewer page: the skull, and each variant's face (coloured by its spread where it has one,
    on one scale for the whole case) or its complete head in each colouring."""
    legend = None if scale is None else ColourLegend(SPREAD_TITLE, "mm", 0.0, scale.max_mm, scale.stops())
    variants = {name: [ViewerMesh("Face", face, SKIN, 0.5, True,
                                  None if scale is None or name not in spreads else scale.colours(spreads[name]))]
                for name, (face, _) in faces.items()}  # fmt: skip
    caption = (f"Approximation to aid identification, not an identification; model {model_label}, trained on "
               "synthetic data")
    title = f"Case: skull and {len(faces)} reconstructed face{'s' if len(faces) != 1 else ''}"
    viewer_heads = {name: result.viewer_head() for name, result in heads.items()}
    return render_viewer([ViewerMesh("Skull", skull, BONE, 1.0, False)], variants=variants, heads=viewer_heads,
                         title=title, caption=caption, legend=legend).encode()  # fmt: skip



def resolve_model(model: str | Path, *, console=None) -> tuple[FaceModel, Path, str]:
    """A run folder or 'default' (built on first use) as (model, its folder, a label for the outputs)."""
    from facegen.models.registry import MODEL_DIR, load_trained, model_folder
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
    return load_trained(run), model_folder(run), run.name


def _case_accuracy(model_folder: Path, label: str, metadata: CaseMetadata) -> dict[str, Any] | None:
    """The model's evaluation figures for this case's groups, when its run holds an evaluation report."""
    from facegen.data.dataset.split import bmi_band
    from facegen.data.groups import age_band
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
    overwrite: bool = False,
    landmarks: Path | str | None = None,
    accept_weak_pose: bool = False,
    console=None,
    genotypes: Path | str | None = None,
    genotype_sample: str | None = None,
    skin_probabilities: Path | str | None = None,
    complete_head: bool = True,
    phenotype: PhenotypePrediction | None = None,
) -> CaseResult:
    """The Python form of `facegen reconstruct`: checks the metadata first, then writes the case folder.
    `landmarks`: a 3D Slicer markups file (.mrk.json, .fcsv) or CSV whose porions and left orbitale set the pose.
    `genotypes`: a genotype file for eye and hair colour (HIrisPlex; `genotype_sample` picks one of several), with
    the web tool's skin probabilities when given; the file is read here and never copied into the case.
    `phenotype`: instead of `genotypes`, the prediction already made (the web service's, from the dosages it kept)."""
    if phenotype is not None and (genotypes, genotype_sample, skin_probabilities) != (None, None, None):
        raise ValueError("give either genotypes (with genotype_sample, skin_probabilities) or a phenotype already "
                         "predicted from them, not both")  # fmt: skip
    metadata = CaseMetadata.parse(sex, age, None if bmi is None else str(bmi))
    if not Path(input_path).exists():
        raise ValueError(f"{input_path}: no such file or folder")
    if landmarks is not None and not Path(landmarks).is_file():
        raise ValueError(f"{landmarks}: no such landmark file; give a 3D Slicer .mrk.json or a CSV of landmarks")
    check_output_folder(Path(out), overwrite=overwrite, kind=CASE_KIND)  # before a first-use model build
    if genotypes is not None:
        phenotype = phenotype_from_files(genotypes, sample=genotype_sample, skin_probabilities=skin_probabilities)
    face_model, folder, label = resolve_model(model, console=console)
    return reconstruct_case(
        Path(input_path), Path(out), model=face_model, model_folder=folder, model_label=label, metadata=metadata,
        samples=samples, seed=seed, options=options, accuracy=_case_accuracy(folder, label, metadata),
        overwrite=overwrite, landmark_file=None if landmarks is None else Path(landmarks),
        accept_weak_pose=accept_weak_pose, phenotype=phenotype, complete_head=complete_head,
    )  # fmt: skip
