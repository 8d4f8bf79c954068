"""DICOM series in and out: geometry and HU survive a round trip, broken series are refused by name, and no
header value that identifies anyone reaches the Scan, its notes or any error message."""

from __future__ import annotations

import io
import logging
import pickle
import re
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from facegen.data.scans.dicom import read_dicom
from facegen.data.scans.dicom_export import write_dicom_series
from facegen.data.scans.dicom_header import age_years
from facegen.data.scans.scan import Scan, ScanError
from facegen.data.subject import Sex
from facegen.data.synthetic.ct import SCAN_DIRECTION, render_ct
from facegen.io.volume import Volume

PLANTED = {
    "PatientName": "DOE^JANE^QX7",
    "PatientID": "PID-99812345",
    "PatientBirthDate": "19610412",
    "InstitutionName": "ST MARY QX7 HOSPITAL",
    "ReferringPhysicianName": "DR WHO QX7",
    "AccessionNumber": "ACC-55519",
    "StudyDescription": "HEAD QX7 TRAUMA",
    "SeriesDescription": "AXIAL QX7 BONE",
    "OperatorsName": "TECH QX7^ANNA",
    "StationName": "CTQX7STATION",
    "StudyInstanceUID": "1.2.826.0.1.3680043.99812345.1",
    "FrameOfReferenceUID": "1.2.826.0.1.3680043.99812345.2",
    "PatientSex": "F",
    "PatientAge": "045Y",
}
SEARCHED = [v for k, v in PLANTED.items() if k != "PatientSex"]


def _phantom(shape: tuple[int, int, int] = (64, 64, 40), direction: np.ndarray = SCAN_DIRECTION) -> Volume:
    """An ellipsoid of 40 HU in air (-1000 HU) inside a 1000 HU shell."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    centre = (np.array(shape) - 1) / 2
    r = np.sqrt(sum(((x - c) / (0.4 * n)) ** 2 for x, c, n in zip((i, j, k), centre, shape, strict=True)))
    array = np.where(r < 0.85, 40, np.where(r < 1.0, 1000, -1000)).astype(np.int16)
    return Volume(array, (0.8, 0.9, 2.5), (-10.5, 20.25, 30.75), direction)


def _corners(volume: Volume) -> np.ndarray:
    """World mm of the 8 corner voxels."""
    n = np.array(volume.shape) - 1
    return volume.index_to_world(np.array(np.meshgrid(*([0, m] for m in n), indexing="ij")).reshape(3, -1).T)


def _assert_same(scan: Scan, volume: Volume) -> None:
    """Same HU array (dtype included) and geometry within 1e-3 mm."""
    assert scan.volume.array.dtype == np.int16
    np.testing.assert_array_equal(scan.volume.array, volume.array)
    np.testing.assert_allclose(_corners(scan.volume), _corners(volume), atol=1e-3)


@pytest.fixture(scope="module")
def phantom() -> Volume:
    return _phantom()


@pytest.fixture()
def series_dir(tmp_path, phantom) -> Path:
    """One phantom series with planted identifying values and UIDs."""
    write_dicom_series(phantom, tmp_path / "case", series_number=3, tags=PLANTED, seed=11)
    return tmp_path / "case"


def _uids(folder: Path) -> set[str]:
    """Every UID in the files' headers (study, series, frame of reference, SOP instances)."""
    found = set()
    for path in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found |= {str(ds[k].value) for k in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")}
        found |= {str(ds.SOPInstanceUID), str(ds.file_meta.MediaStorageSOPInstanceUID)}
    return found


def _assert_clean(text: str | bytes, forbidden: list[str]) -> None:
    """None of the forbidden strings occurs in `text`."""
    data = text if isinstance(text, bytes) else text.encode()
    leaked = [f for f in forbidden if f.encode() in data]
    assert not leaked, f"leaked identifying values: {leaked}"


def test_round_trip_keeps_hu_and_geometry(tmp_path, phantom) -> None:
    files = write_dicom_series(phantom, tmp_path / "export", series_number=3)
    assert [p.name for p in files[:2]] == ["slice_0001.dcm", "slice_0002.dcm"]
    case = tmp_path / "case"  # shuffled names, no suffix, nested folders, and files that are not DICOM
    order = np.random.default_rng(0).permutation(len(files))
    for n, index in enumerate(order):
        target = case / f"sub{n % 3}" / f"IM{n:05d}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(files[index], target)
    (case / "README.txt").write_text("exported from the scanner\n")
    (case / "DICOMDIR").write_bytes(bytes(128) + b"DICM" + bytes(20))  # an index, not an image: skipped
    (case / "sub0" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(200))
    scan = read_dicom(case)
    _assert_same(scan, phantom)
    assert scan.modality == "CT"
    assert scan.description == "DICOM series 3 (CT, 40 slices) from case"
    assert scan.notes == () and scan.sex is None and scan.age_years is None


def test_oblique_geometry_round_trip(tmp_path) -> None:
    angle = np.radians(12.0)
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(angle), -np.sin(angle)], [0.0, np.sin(angle), np.cos(angle)]])
    volume = _phantom((24, 20, 8), tilt @ SCAN_DIRECTION)
    write_dicom_series(volume, tmp_path / "case")
    _assert_same(read_dicom(tmp_path / "case"), volume)


def test_zip_round_trip(tmp_path, phantom) -> None:
    files = write_dicom_series(phantom, tmp_path / "case", series_number=4)
    archive = tmp_path / "case.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, f"DICOM/{path.stem}")
        zf.writestr("DICOM/notes.txt", "not an image")
    shutil.rmtree(tmp_path / "case")
    scan = read_dicom(archive)
    _assert_same(scan, phantom)
    assert scan.description == "DICOM series 4 (CT, 40 slices) from case.zip"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.zip"]  # nothing extracted to disk


def test_files_without_preamble_are_read(tmp_path) -> None:
    volume = _phantom((12, 10, 5))
    for path in write_dicom_series(volume, tmp_path / "old"):  # rewritten as bare implicit VR datasets
        ds = pydicom.dcmread(path)
        del ds.file_meta
        fp = DicomBytesIO()
        fp.is_implicit_VR, fp.is_little_endian = True, True
        write_dataset(fp, ds)
        path.write_bytes(fp.getvalue())
    _assert_same(read_dicom(tmp_path / "old"), volume)


def test_rescale_slope_and_intercept_are_applied(tmp_path, phantom) -> None:
    write_dicom_series(phantom, tmp_path / "a", rescale_intercept=-2048.0)
    _assert_same(read_dicom(tmp_path / "a"), phantom)
    expected = []
    for path in sorted((tmp_path / "a").iterdir()):
        ds = pydicom.dcmread(path)
        ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-1024.25"
        expected.append(ds.pixel_array.T * 0.5 - 1024.25)
        ds.save_as(path)
    scan = read_dicom(tmp_path / "a")
    assert scan.volume.array.dtype == np.float32
    np.testing.assert_allclose(scan.volume.array, np.stack(expected, axis=2), atol=1e-3)


@pytest.fixture()
def three_series(tmp_path, phantom) -> Path:
    """CT series 2 (40 slices), CT series 5 (12 slices) and MR series 7 (40 slices) in one folder."""
    case = tmp_path / "study"
    write_dicom_series(phantom, case / "a", series_number=2, seed=1)
    small = Volume(phantom.array[:, :, 10:22], phantom.spacing_mm, phantom.origin_mm, phantom.direction)
    write_dicom_series(small, case / "b", series_number=5, seed=1)
    write_dicom_series(phantom, case / "c", modality="MR", series_number=7, seed=1, rescale_intercept=-1000.0)
    return case


def test_several_series_pick_the_ct_with_most_axial_slices(three_series, phantom) -> None:
    scan = read_dicom(three_series)
    _assert_same(scan, phantom)
    assert scan.modality == "CT" and scan.description.startswith("DICOM series 2 (CT, 40 slices)")
    (note,) = scan.notes
    assert "picked series 2 (CT, 40 slices)" in note
    assert "series 5 (CT, 12 slices)" in note and "series 7 (MR, 40 slices)" in note and "--series N" in note
    other = read_dicom(three_series, series=5)
    assert other.volume.shape == (64, 64, 12) and other.notes == ()
    np.testing.assert_array_equal(other.volume.array, phantom.array[:, :, 10:22])
    assert read_dicom(three_series, series=7).modality == "MR"  # returned as read: the caller decides


def test_unknown_series_lists_the_available(three_series) -> None:
    with pytest.raises(ScanError, match="has no series 9") as error:
        read_dicom(three_series, series=9)
    for label in ("series 2 (CT, 40 slices)", "series 5 (CT, 12 slices)", "series 7 (MR, 40 slices)"):
        assert label in str(error.value)


def test_missing_slice_is_named_by_position(series_dir) -> None:
    (series_dir / "slice_0020.dcm").unlink()
    with pytest.raises(ScanError, match="a slice is probably missing") as error:
        read_dicom(series_dir)
    assert "5.00 mm between" in str(error.value)  # the gap, in mm, and the positions either side


def test_duplicate_slice_is_refused(series_dir) -> None:
    shutil.copy(series_dir / "slice_0007.dcm", series_dir / "copy_of_7.dcm")
    with pytest.raises(ScanError, match="several slices at the same position"):
        read_dicom(series_dir)


@pytest.mark.parametrize("keep", [200, -1000])
def test_truncated_file_is_named(series_dir, keep: int) -> None:
    path = series_dir / "slice_0007.dcm"
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(ScanError, match=re.escape(str(path))) as error:
        read_dicom(series_dir)
    assert error.value.path == str(path)
    assert "truncated" in str(error.value)


def test_folder_without_dicom_and_missing_path(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff" + bytes(300))
    with pytest.raises(ScanError, match="holds no DICOM images"):
        read_dicom(tmp_path)
    with pytest.raises(ScanError, match="no such folder or zip file"):
        read_dicom(tmp_path / "absent")


def test_gantry_tilt_is_resampled(tmp_path, phantom) -> None:
    write_dicom_series(phantom, tmp_path / "tilted", tilt_deg=15.0)
    scan = read_dicom(tmp_path / "tilted")
    assert scan.notes == ("resampled a gantry tilt of 15.0 degrees onto an orthogonal grid",)
    assert np.allclose(scan.volume.direction, phantom.direction, atol=1e-6)
    offset = scan.volume.world_to_index(phantom.origin_mm)
    np.testing.assert_allclose(offset, np.rint(offset), atol=1e-3)  # the original grid is a sub-grid
    i, j, k = np.rint(offset).astype(int)
    back = scan.volume.array[i : i + 64, j : j + 64, k : k + 40]
    shell, shell_back = phantom.array > 500, back > 500
    centroid = np.array(np.nonzero(shell)).mean(axis=1)
    np.testing.assert_allclose(np.array(np.nonzero(shell_back)).mean(axis=1), centroid, atol=0.5)
    assert (shell != shell_back).mean() < 0.01  # the anatomy is back in place, within a voxel at edges
    assert np.median(np.abs(back - phantom.array)) < 1.0


def test_steep_gantry_tilt_is_refused(tmp_path) -> None:
    write_dicom_series(_phantom((16, 16, 6)), tmp_path / "tilted", tilt_deg=40.0)
    with pytest.raises(ScanError, match="gantry tilt of 40.0 degrees"):
        read_dicom(tmp_path / "tilted")


def test_sex_and_age_only_when_asked(series_dir) -> None:
    scan = read_dicom(series_dir)
    assert scan.sex is None and scan.age_years is None
    kept = read_dicom(series_dir, keep_sex_age=True)
    assert kept.sex is Sex.FEMALE and kept.age_years == 45.0


@pytest.mark.parametrize(
    ("value", "years"), [("045Y", 45.0), ("006M", 0.5), ("026W", 26 * 7 / 365.25), ("730D", 730 / 365.25)]
)
def test_age_units(value: str, years: float) -> None:
    ds = pydicom.Dataset()
    ds.PatientAge = value
    assert age_years(ds) == pytest.approx(years)


def test_no_identifying_value_leaves_the_reader(series_dir, caplog) -> None:
    forbidden = SEARCHED + sorted(_uids(series_dir))
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for scan in (read_dicom(series_dir), read_dicom(series_dir, keep_sex_age=True)):
            _assert_clean(repr(scan) + scan.description + "".join(scan.notes), forbidden)
            _assert_clean(pickle.dumps(scan), forbidden)
            buffer = io.BytesIO()
            np.save(buffer, scan.volume.array)
            _assert_clean(buffer.getvalue(), forbidden)
        removed = series_dir / "slice_0010.dcm"  # errors raised while reading the series
        kept = removed.read_bytes()
        removed.unlink()
        with pytest.raises(ScanError) as missing:
            read_dicom(series_dir)
        removed.write_bytes(kept[:-500])
        with pytest.raises(ScanError) as truncated:
            read_dicom(series_dir)
        with pytest.raises(ScanError) as unknown:
            read_dicom(series_dir, series=8)
    for error in (missing, truncated, unknown):
        _assert_clean(str(error.value) + repr(error.value), forbidden)
    _assert_clean(" ".join(str(w.message) for w in caught) + caplog.text, forbidden)


def test_invalid_header_values_raise_no_echoing_warnings(tmp_path, caplog) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the writer itself may complain about the invalid age
        write_dicom_series(_phantom((16, 16, 4)), tmp_path / "case", tags={"PatientAge": "QX7 45 Y"})
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scan = read_dicom(tmp_path / "case", keep_sex_age=True)
    assert scan.age_years is None
    _assert_clean(" ".join(str(w.message) for w in caught) + caplog.text, ["QX7"])


def test_synthetic_head_ct_round_trip(tmp_path, one_head) -> None:
    volume = render_ct(one_head, spacing_mm=(2.0, 2.0, 2.5), seed=5)
    files = write_dicom_series(volume, tmp_path / "head", tags=PLANTED)
    assert pydicom.dcmread(files[0]).SOPClassUID == pydicom.uid.CTImageStorage
    scan = read_dicom(tmp_path / "head")
    _assert_same(scan, volume)
    _assert_clean(pickle.dumps(scan), SEARCHED)


def test_single_file_is_read_as_a_series_of_its_frames(tmp_path) -> None:
    (path,) = write_dicom_series(_phantom((12, 10, 1)), tmp_path / "one")
    with pytest.raises(ScanError, match="has a single slice; a volume needs at least 2"):
        read_dicom(path)
    other = tmp_path / "notes.dcm"
    other.write_text("not DICOM")
    with pytest.raises(ScanError, match="is not a DICOM image file"):
        read_dicom(other)
