"""One scan in, canonical skull and face out: read, check, calibrate, segment, mesh, align, represent.

The same path serves CT volumes of every format and skull meshes (which have no face); what comes out is
in the canonical frame, ready for `represent()`, exactly like a synthetic head. The record that goes with
it names the input by hash and says every choice made, never anything personal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

from facegen import __version__
from facegen.data.alignment.canonical import Alignment, AlignmentError, align_head
from facegen.data.alignment.landmark_files import mesh_to_patient
from facegen.data.representations.build import HeadRepresentations, RepresentationSpec, represent
from facegen.data.representations.depth_map import DepthMap, render_depth_map
from facegen.data.representations.mandibular_plane import without_neck_bones
from facegen.data.representations.voxel_grid import voxelize
from facegen.data.scans.meshes import MESH_SUFFIXES, UNIT_SCALES, mesh_space, read_skull_mesh
from facegen.data.scans.scan import ScanError, ScanFrame, mesh_frame
from facegen.io.volume import Volume

FACE_LANDMARKS_IN_VIEW = ("nasion", "rhinion", "subnasale", "pogonion", "menton")
"""The scan must show these (midline face from the root of the nose to the chin) to hold a face."""
HEAD_SIZE_MM = (100.0, 450.0)
"""Largest extent of a head (or of the part of it a head CT holds)."""
FOV_MARGIN_VOXELS = 1.5
ROUGH_FACE_NOTE = "rough: the skin of the head's ~1.5 mm blocks, used for the pose only (IngestOptions.full_face off)"
DRY_SKULL_NOTE = "none: a dry skull (bone and air, no skin found); the pose comes from the bone alone"


@dataclass(frozen=True)
class IngestOptions:
    """Choices a user can make; the defaults suit an adult head CT in HU."""

    skin_hu: float = -300.0
    bone_hu: float = 300.0
    hu_offset: float | None = None
    force_intensity: bool = False
    keep_sex_age: bool = False
    series: int | None = None
    mesh_units: str = "mm"
    spec: RepresentationSpec = field(default_factory=RepresentationSpec)
    full_face: bool = True
    """False: mesh a CT's skin only roughly (enough to pin the pose) and its bone on the grid the skull is meshed on,
    for a caller that needs only the skull (a case); a fine CT then ingests in well under half the time."""


@dataclass(frozen=True)
class IngestedHead:
    """Skull and face (None for a skull mesh) in the canonical frame, with the alignment, the case record and the
    scan frame (the input's own world frame, which case files are written in)."""

    skull: trimesh.Trimesh
    face: trimesh.Trimesh | None
    alignment: Alignment
    record: dict
    frame: ScanFrame
    sex: str | None = None
    age_years: float | None = None


def input_sha256(path: Path) -> str:
    """sha256 over a file, or over a folder's files in sorted relative-path order (names and bytes)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if path.is_dir():
            digest.update(f.relative_to(path).as_posix().encode())
        with f.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def field_of_view(volume: Volume):
    """A test of which patient-space points lie inside the scanned box (a voxel and a half in from its faces)."""
    upper = np.asarray(volume.shape, float) - 1.0 - FOV_MARGIN_VOXELS

    def inside(points: np.ndarray) -> np.ndarray:
        ijk = volume.world_to_index(points)
        return np.all((ijk >= FOV_MARGIN_VOXELS) & (ijk <= upper), axis=-1)

    return inside


CUT_SHARE = 0.002
"""The scan cuts the skull at a face of its box when at least this share of the skull's surface lies on it."""
_SIDES = (("right", "left"), ("inferior (below)", "superior (above)"), ("posterior (behind)", "anterior (in front)"))
"""Where each patient axis (x left, y superior, z anterior) points, negative then positive."""


def bone_cut_by_view(skull: trimesh.Trimesh, volume: Volume) -> list[str]:
    """The sides (in patient words) where the scan's box cuts the skull: its surface runs along the box's face."""
    ijk = volume.world_to_index(np.asarray(skull.vertices))
    upper = np.asarray(volume.shape, float) - 1.0 - FOV_MARGIN_VOXELS
    sides = []
    for axis in range(3):
        for at_end, on_face in enumerate((ijk[:, axis] < FOV_MARGIN_VOXELS, ijk[:, axis] > upper[axis])):
            if on_face.mean() >= CUT_SHARE:
                pointing = volume.direction[:, axis] * (1 if at_end else -1)
                dominant = int(np.argmax(np.abs(pointing)))
                sides.append(_SIDES[dominant][int(pointing[dominant] > 0)])
    return sorted(set(sides))


def _transformed(mesh: trimesh.Trimesh, alignment: Alignment) -> trimesh.Trimesh:
    out = mesh.copy()
    out.vertices = alignment.to_canonical.apply(np.asarray(mesh.vertices))
    return out


def _check_head_size(face: trimesh.Trimesh, path: Path) -> None:
    extent = float(np.max(face.extents))
    lo, hi = HEAD_SIZE_MM
    if not lo <= extent <= hi:
        raise ScanError(
            path,
            f"the head found is {extent:.0f} mm across; a head is {lo:g}-{hi:g} mm",
            "the voxel spacing in the header looks wrong (or the scan is not of a head); fix the spacing",
        )


def _skin_record(dry_skull: bool, skin_around_bone: float | None) -> dict:
    """Whether the scan shows skin, and the measure that decided it (share of voxels near dense bone in tissue)."""
    share = None if skin_around_bone is None else round(skin_around_bone, 3)
    return {"found": not dry_skull, "dry_skull": dry_skull, "tissue_near_dense_bone": share}


def _check_face_in_view(alignment: Alignment, volume: Volume, path: Path) -> None:
    inside = field_of_view(volume)
    missing = [
        name
        for name in FACE_LANDMARKS_IN_VIEW
        if name in alignment.landmarks and not inside(alignment.landmarks[name][None])[0]
    ]
    if missing:
        raise ScanError(
            path,
            f"the face is not in the field of view: {', '.join(missing)} lie outside the scanned volume",
            "a reconstruction needs the face skeleton from the nose root to the chin; give a scan that covers it",
        )


def ingest_volume(path: Path, options: IngestOptions, landmark_file: Path | None = None) -> IngestedHead:
    """A CT (any supported format) to canonical skull and face meshes (the face rough without `full_face`)."""
    from facegen.data.scans.intensity import to_hounsfield
    from facegen.data.scans.segment import segment_head, segment_skull
    from facegen.data.scans.surfaces import skull_surfaces, surfaces_from_ct
    from facegen.data.scans.volumes import read_scan

    scan = read_scan(path, series=options.series, keep_sex_age=options.keep_sex_age)
    calibration = to_hounsfield(scan, path, hu_offset=options.hu_offset, force_intensity=options.force_intensity)
    volume = calibration.volume
    thresholds = {"skin_hu": options.skin_hu, "bone_hu": options.bone_hu}
    try:
        masks = segment_head(volume, **thresholds) if options.full_face else segment_skull(volume, **thresholds)
    except ValueError as exc:
        raise ScanError(path, str(exc), "check that the scan holds a head and that the thresholds suit it") from None
    if not masks.bone.any():
        raise ScanError(
            path,
            f"no bone found: nothing above {options.bone_hu:g} HU in the head (is this a phantom, or not a head?)",
            "a reconstruction needs the skull: give a head or skull CT, or lower --bone-hu if its bone is faint",
        )
    if options.full_face:
        face, skull = surfaces_from_ct(volume, masks, **thresholds)
    else:
        face, skull = skull_surfaces(masks, **thresholds)
    _check_head_size(skull if face is None else face, path)
    try:
        alignment = align_head(
            skull,
            face,
            orientation_known=scan.orientation_known,
            field_of_view=field_of_view(volume),
            landmark_file=landmark_file,
        )
    except AlignmentError as exc:
        raise ScanError(path, str(exc)) from None
    _check_face_in_view(alignment, volume, path)
    record = {
        "input": {"name": path.name, "sha256": input_sha256(path), "reader": scan.description},
        "reader_notes": list(scan.notes),
        "intensity": calibration.note,
        "thresholds_hu": {"skin": options.skin_hu, "bone": options.bone_hu},
        "voxel_mm": np.round(volume.spacing_mm, 4).tolist(),
        "shape": list(volume.shape),
        "scan_frame": scan.frame.to_dict(),
        "alignment": alignment.to_dict(scan.frame.from_patient()),
        "field_of_view": {"skull_cut_at": bone_cut_by_view(skull, volume)},
        "skin": _skin_record(masks.dry_skull, masks.skin_around_bone),
        "software_version": __version__,
    }
    if masks.dry_skull:
        record["face"] = DRY_SKULL_NOTE
    elif not options.full_face:
        record["face"] = ROUGH_FACE_NOTE
    return IngestedHead(
        _transformed(skull, alignment),
        None if face is None else _transformed(face, alignment),
        alignment,
        record,
        scan.frame,
        sex=scan.sex.value if scan.sex is not None else None,
        age_years=scan.age_years,
    )


def ingest_mesh(path: Path, options: IngestOptions, landmark_file: Path | None = None) -> IngestedHead:
    """A skull surface mesh to the canonical frame (no face: the mesh holds only bone)."""
    skull = read_skull_mesh(path, units=options.mesh_units)
    frame = mesh_frame(options.mesh_units, mesh_space(path))
    try:
        # landmarks placed on the mesh in 3D Slicer are in its own coordinates, in the mesh's units
        alignment = align_head(
            skull, None, orientation_known=False, landmark_file=landmark_file,
            landmarks_to_patient=mesh_to_patient(frame.space, UNIT_SCALES[options.mesh_units]),
        )  # fmt: skip
    except AlignmentError as exc:
        raise ScanError(path, str(exc)) from None
    record = {
        "input": {"name": path.name, "sha256": input_sha256(path), "reader": f"mesh {path.name}"},
        "mesh_units": options.mesh_units,
        "scan_frame": frame.to_dict(),
        "alignment": alignment.to_dict(frame.from_patient()),
        "software_version": __version__,
    }
    return IngestedHead(_transformed(skull, alignment), None, alignment, record, frame)


def ingest_input(
    path: Path | str, options: IngestOptions | None = None, landmark_file: Path | None = None
) -> IngestedHead:
    """Any supported input (CT volume, DICOM folder/zip, skull mesh) to the canonical frame."""
    path = Path(path)
    options = options or IngestOptions()
    if path.is_file() and path.name.lower().endswith(MESH_SUFFIXES):
        return ingest_mesh(path, options, landmark_file)
    return ingest_volume(path, options, landmark_file)


def head_representations(head: IngestedHead, spec: RepresentationSpec) -> HeadRepresentations:
    """Depth maps and grids of an ingested head, its skull without the neck's bones below the mandible (as the
    models' skulls); without a face the face maps are empty (mask all False)."""
    skull, _ = without_neck_bones(head.skull, head.alignment.canonical_landmarks())
    if head.face is not None:
        return represent(skull, head.face, spec=spec)  # already without the neck's bones
    empty = DepthMap(np.zeros(spec.view.shape, np.float32), np.zeros(spec.view.shape, bool), spec.view)
    return HeadRepresentations(
        skull_depth=render_depth_map(skull, spec.view),
        face_depth=empty,
        face_region=np.zeros(spec.view.shape, bool),
        skull_grid=voxelize(skull, spec.grid),
        face_grid=None,
    )
