"""Dry skulls in: a CT of bone and air (no skin) is told from a head, passes the HU checks from air and bone, and gives
the skull cut from what it lies on, with no face; a CT with neither bone nor skin is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from scipy import ndimage
from scipy.spatial import cKDTree
from typer.testing import CliRunner

from facegen.cli.main import app
from facegen.data.scans.dicom_export import write_dicom_series
from facegen.data.scans.dry_skull import skin_around_bone
from facegen.data.scans.ingest import DRY_SKULL_NOTE, IngestOptions, ingest_input
from facegen.data.scans.intensity import to_hounsfield
from facegen.data.scans.scan import ScanError
from facegen.data.scans.segment import segment_head, segment_skull
from facegen.data.scans.surfaces import skull_surfaces, surfaces_from_ct
from facegen.data.scans.volumes import read_scan
from facegen.data.synthetic.ct import render_ct
from facegen.data.synthetic.dry_ct import render_dry_skull_ct, stored
from facegen.data.synthetic.generator import SyntheticHead
from facegen.io.volume import Volume, write_nifti
from tests.conftest import SMALL_SPEC

HEADSQ = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "headsq-ct"
OPTIONS = IngestOptions(spec=SMALL_SPEC)
FRAME = ("porion_l", "porion_r", "orbitale_l")


@pytest.fixture(scope="module")
def bare(one_head: SyntheticHead) -> Volume:
    return render_dry_skull_ct(one_head, seed=3, support="none")


@pytest.fixture(scope="module")
def on_pvc(one_head: SyntheticHead) -> Volume:
    """The skull at 2 mm in a PVC-like cradle (450 HU: above the bone threshold, touching it) on the table."""
    return render_dry_skull_ct(one_head, seed=3, support="cradle", support_hu=450.0, table=True)


@pytest.fixture(scope="module")
def true_skull(one_head: SyntheticHead) -> cKDTree:
    """A dense sample of the true skull surface (~0.2 mm apart)."""
    return cKDTree(trimesh.sample.sample_surface(one_head.skull, 300_000, seed=0)[0])


def _landmark_file(head: SyntheticHead, path: Path) -> Path:
    """Porions and orbitale in patient mm (the synthetic CT's world is the canonical frame)."""
    path.write_text(json.dumps({"space": "patient"} | {k: head.skull_landmarks[k].tolist() for k in FRAME}))
    return path


def test_a_dry_skull_is_told_from_a_head_with_skin(one_head: SyntheticHead, bare: Volume, on_pvc: Volume) -> None:
    with_skin = render_ct(one_head, spacing_mm=(2.0, 2.0, 2.0), seed=3)
    assert skin_around_bone(with_skin, -300.0, 300.0) > 0.8  # measured 0.99
    assert skin_around_bone(bare, -300.0, 300.0) < 0.05 and skin_around_bone(on_pvc, -300.0, 300.0) < 0.05
    assert not segment_skull(with_skin).dry_skull
    masks = segment_skull(on_pvc)
    assert masks.dry_skull and masks.skin is None and masks.head is None


def test_the_skull_is_found_and_its_support_cut_away(on_pvc: Volume, bare: Volume, true_skull: cKDTree) -> None:
    support = (on_pvc.array.astype(np.int32) - bare.array > 500) & (bare.array < -900)
    assert (support & (on_pvc.array > 300)).sum() > 2000  # the cradle and table lie above the bone threshold ...
    labels, _ = ndimage.label(on_pvc.array > 300)
    largest = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    assert (largest & support).sum() > 1000  # ... and touch the skull: a plain threshold takes the cradle with it
    face, skull = skull_surfaces(segment_skull(on_pvc))
    distance = true_skull.query(np.asarray(skull.vertices))[0]
    assert face is None
    assert np.median(distance) < 0.6 and distance.max() < 2.5  # the skull, none of the cradle (5-10 mm off it)
    masks = segment_head(on_pvc)  # the full-resolution path gives the same skull and no head
    face, skull = surfaces_from_ct(on_pvc, masks)
    distance = true_skull.query(np.asarray(skull.vertices))[0]
    assert masks.dry_skull and face is None and distance.max() < 2.5


def test_hu_offsets_are_found_from_air_and_bone(bare: Volume, on_pvc: Volume, tmp_path: Path) -> None:
    soft = (bare.array > -200) & (bare.array < 200)
    assert soft.mean() < 0.01  # no soft-tissue peak: the check that a head passes on does not hold
    for volume, name in ((bare, "bare"), (on_pvc, "on-pvc")):
        path = write_nifti(stored(volume, 1000.0), tmp_path / f"{name}-plus1000.nii.gz")
        calibration = to_hounsfield(read_scan(path), path)
        assert calibration.offset_hu == -1000.0 and np.array_equal(calibration.volume.array, volume.array)
    assert calibration.note == "values are HU +1000: detected and corrected"  # the supports' edges: some soft values
    path = write_nifti(bare, tmp_path / "bare.nii.gz")
    calibration = to_hounsfield(read_scan(path), path)
    assert calibration.offset_hu == 0.0
    assert calibration.note == "values are in HU (from air and bone: no soft tissue, as in a dry skull)"


def test_a_dry_skull_dicom_ingests_with_no_face_and_says_so(one_head, on_pvc, true_skull, tmp_path) -> None:
    folder = tmp_path / "dry-dicom"
    write_dicom_series(on_pvc, folder, seed=2)  # stored as HU + 1024, the rescale intercept says so
    landmarks = _landmark_file(one_head, tmp_path / "landmarks.json")
    head = ingest_input(folder, OPTIONS, landmarks)
    assert head.face is None
    skin = head.record["skin"]
    assert skin["found"] is False and skin["dry_skull"] is True and skin["tissue_near_dense_bone"] < 0.1
    assert head.record["face"] == DRY_SKULL_NOTE and head.record["intensity"].startswith("values are in HU")
    distance = true_skull.query(np.asarray(head.skull.vertices))[0]  # canonical frame = the synthetic head's own
    assert np.median(distance) < 0.6 and distance.max() < 2.5
    assert head.record["field_of_view"]["skull_cut_at"] == []


def test_a_dry_skull_ct_reconstructs(one_head, case_model_run, tmp_path) -> None:
    volume = render_dry_skull_ct(one_head, seed=5, support="plate", table=True)  # plastic below the bone threshold
    scan = write_nifti(stored(volume, 1000.0), tmp_path / "dry.nii.gz")  # a plain +1000, detected
    landmarks = _landmark_file(one_head, tmp_path / "landmarks.json")
    out = tmp_path / "case"
    args = ["--model", str(case_model_run), "--landmarks", str(landmarks), "--sex", "F", "--age", "40", "--bmi", "25"]
    result = CliRunner().invoke(app, ["reconstruct", str(scan), "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    case = json.loads((out / "case.json").read_text())
    assert case["pose"]["method"].startswith("landmark file") and case["variants"] == ["F-age40-bmi25"]
    assert case["skin"]["dry_skull"] is True and "dry skull: CT of bone only" in (out / "report.html").read_text()
    skull = trimesh.load(out / "skull_canonical.ply", process=False)
    assert abs(skull.extents[0] - one_head.skull.extents[0]) < 3.0
    assert (out / "F-age40-bmi25" / "face.ply").is_file()


def _phantom(kind: str) -> Volume:
    """A 2 mm CT of air with noise holding a water cylinder, nothing, or a 30 mm cube of bone."""
    rng = np.random.default_rng(1)
    hu = -1000.0 + 15.0 * rng.standard_normal((100, 100, 80))
    x, y, z = np.indices(hu.shape) * 2.0
    if kind == "water":
        hu[np.hypot(x - 100, y - 100) < 80] = 0.0
    if kind == "bone":
        hu[(np.abs(x - 100) < 15) & (np.abs(y - 100) < 15) & (np.abs(z - 80) < 15)] = 1200.0
    return Volume(np.rint(hu).astype(np.int16), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("air", r"no bone and no skin found: .* only 0.00% of the voxels are soft tissue .* and 0.00% bone"),
        ("water", r"no bone found: nothing above 300 HU in the head .*lower --bone-hu"),
        ("bone", r"no skull found: no skin, and the largest body of bone above 300 HU .* is only \d+ ml"),
    ],
)
def test_a_ct_without_bone_or_skin_is_refused_by_name(kind: str, message: str, tmp_path: Path) -> None:
    path = write_nifti(_phantom(kind), tmp_path / f"{kind}.nii.gz")
    with pytest.raises(ScanError, match=message) as info:
        ingest_input(path, OPTIONS)
    assert str(path) in str(info.value)


@pytest.mark.skipif(not HEADSQ.exists(), reason="../shared/data/headsq-ct is not here")
def test_the_real_headsq_ct_without_soft_tissue_gives_the_full_cts_skull(tmp_path: Path) -> None:
    raw = b"".join((HEADSQ / f"quarter.{n}").read_bytes() for n in range(1, 94))
    values = np.frombuffer(raw, "<i2").copy()
    values[values < 1300] = 0  # below 300 HU to air (-1000 HU), in the file's units (HU + 1000)
    (tmp_path / "dry.raw").write_bytes(values.astype("<i2").tobytes())
    header = (HEADSQ / "quarter.nhdr").read_text().replace("quarter.%d 1 93 1", "dry.raw")
    assert "dry.raw" in header
    (tmp_path / "dry.nhdr").write_text(header)
    skulls = {}
    for name, path in (("full", HEADSQ / "quarter.nhdr"), ("dry", tmp_path / "dry.nhdr")):
        calibration = to_hounsfield(read_scan(path), path)
        assert calibration.offset_hu == -1000.0
        masks = segment_skull(calibration.volume)
        assert masks.dry_skull == (name == "dry")
        skulls[name] = skull_surfaces(masks)[1]
    sample = trimesh.sample.sample_surface(skulls["dry"], 50_000, seed=0)[0]
    dense = trimesh.sample.sample_surface(skulls["full"], 400_000, seed=1)[0]
    distance = cKDTree(dense).query(sample)[0]
    assert np.median(distance) < 1.0 and np.percentile(distance, 90) < 2.0  # measured 0.79 and 1.25 mm
    assert abs(skulls["dry"].area / skulls["full"].area - 1.0) < 0.05
