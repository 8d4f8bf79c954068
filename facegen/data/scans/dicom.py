"""Read a DICOM series (folder, .zip, or one enhanced multi-frame file) into a `Scan`, keeping nothing identifying.

Only pixel data, geometry, rescale, modality and series number are copied out of the headers (and, when
asked, sex and age). Messages, notes and the description name series by number, modality and slice count,
never by UID or any other header text, and pydicom's own warnings (which can echo values) are silenced.
Slices are sorted along the slice normal and checked for a complete, evenly spaced stack; a gantry tilt
up to 30 degrees is resampled onto an orthogonal grid. Compressed pixel data is decoded by pydicom's plugins
(`dicom_pixels`); the frames of an enhanced multi-frame image are slices with their own geometry
(`dicom_header`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
from pydicom import config as pydicom_config
from pydicom.dataset import Dataset
from pydicom.uid import MediaStorageDirectoryStorage
from scipy import ndimage

from facegen.data.scans.dicom_header import age_years, floats, frames, integer, is_enhanced, modality, rescale, sex
from facegen.data.scans.dicom_pixels import REEXPORT, decode
from facegen.data.scans.scan import LPS_TO_PATIENT, Scan, ScanError
from facegen.data.subject import Sex
from facegen.io.volume import Volume

MAX_TILT_DEG = 30.0
SPACING_RANGE_MM = (0.05, 20.0)
_SAME_POSITION_MM = 1e-3
_SPACING_TOL = (0.01, 0.02)
"""A gap may differ from the median slice spacing by 0.01 mm + 2 %."""
_LINE_TOL_VOXELS = 0.25
_NEGLIGIBLE_SHEAR_VOXELS = 0.05
_ORTHOGONAL_TOL = 1e-3
_MAX_LISTED = 4
_DICOM_FIX = REEXPORT
_FOLDER_FIX = (
    "Give the folder that holds the DICOM files of the CT series (searched recursively), a .zip of it, "
    "or one enhanced multi-frame DICOM file"
)

Load = Callable[[], "str | BytesIO"]


@dataclass(frozen=True)
class _Source:
    """One candidate file: the path to name in messages and how to open it for pydicom."""

    label: Path
    open: Load


@dataclass(frozen=True)
class _Slice:
    """The numbers one image (a file, or a frame of an enhanced file) contributes.

    `series_key` (a UID) only groups and is never shown. `frames` counts the file's frames; `frame` is the
    index of this one in an enhanced file (None for a single-frame file), which carries its own `rescale`.
    """

    source: _Source
    forced: bool
    series_key: str
    number: int | None
    modality: str | None
    rows: int
    columns: int
    frames: int
    orientation: np.ndarray | None
    position: np.ndarray | None
    pixel_spacing: np.ndarray | None
    sex: Sex | None
    age_years: float | None
    frame: int | None = None
    rescale: tuple[float, float] | None = None


@dataclass(frozen=True)
class _Series:
    """The image files of one SeriesInstanceUID."""

    slices: tuple[_Slice, ...]

    @property
    def number(self) -> int | None:
        """SeriesNumber, when the first file has one."""
        return self.slices[0].number

    @property
    def modality(self) -> str | None:
        """Modality (a defined term) of the first file."""
        return self.slices[0].modality

    @property
    def axial(self) -> bool:
        """Whether the slice normal runs mostly head-foot."""
        o = self.slices[0].orientation
        if o is None:
            return False
        normal = np.abs(np.cross(o[:3], o[3:]))
        return bool(normal[2] >= normal.max())

    def label(self) -> str:
        """How users see a series: "series 3 (CT, 120 slices)"."""
        number = "without number" if self.number is None else str(self.number)
        return f"series {number} ({self.modality or 'unknown modality'}, {len(self.slices)} slices)"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence pydicom's warnings and log lines while reading: they can quote header values."""
    logger = logging.getLogger("pydicom")
    level, mode = logger.level, pydicom_config.settings.reading_validation_mode
    logger.setLevel(logging.CRITICAL + 1)
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        pydicom_config.settings.reading_validation_mode = mode


@contextlib.contextmanager
def _sources(path: Path) -> Iterator[list[_Source]]:
    """Every file under a folder (recursively, in name order), or every member of a zip, read in memory."""
    if path.is_dir():
        files = []
        for root, dirs, names in os.walk(path):
            dirs.sort()
            files.extend(Path(root) / name for name in sorted(names))
        yield [_Source(f, (lambda f=f: str(f))) for f in files]
    elif path.is_file() and zipfile.is_zipfile(path):
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise ScanError(path, "is not a readable zip file", "Zip the folder again") from error
        with archive:
            yield [
                _Source(path / info.filename, _member_loader(archive, info, path / info.filename))
                for info in archive.infolist()
                if not info.is_dir()
            ]
    elif path.is_file():
        yield [_Source(path, lambda: str(path))]  # an enhanced multi-frame file holds a whole series
    else:
        raise ScanError(path, "no such folder or zip file", _FOLDER_FIX)


def _member_loader(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: Path) -> Load:
    """Read a zip member into memory when called; a damaged or encrypted member raises ScanError."""

    def load() -> BytesIO:
        try:
            return BytesIO(archive.read(info))
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, zlib.error) as error:
            problem = "cannot be read from the zip file (damaged, encrypted or of an unsupported compression)"
            raise ScanError(label, problem, "Unzip the archive with a zip tool and read the folder") from error

    return load


def _kind(source: _Source, handle: str | BytesIO) -> str | None:
    """What a file is: a Part 10 file ("dicom"), a bare dataset without preamble ("raw") or not DICOM (None)."""
    try:
        if isinstance(handle, str):
            with open(handle, "rb") as fh:
                head = fh.read(132)
        else:
            head = handle.getvalue()[:132]
    except OSError as error:
        raise ScanError(source.label, "cannot be read", "Check that the file is readable") from error
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if len(head) >= 8 and head[:2] == b"\x08\x00" and head[3:4] == b"\x00":  # (0008,xxxx) little endian
        return "raw"
    return None


def _read(source: _Source, *, forced: bool, pixels: bool, handle: str | BytesIO | None = None) -> Dataset:
    """The dataset of one file (header only unless `pixels`), or ScanError naming the file."""
    try:
        with _quiet():
            return pydicom.dcmread(
                source.open() if handle is None else handle, stop_before_pixels=not pixels, force=forced
            )
    except ScanError:
        raise
    except Exception as error:  # pydicom raises many kinds on damaged files
        problem = "is not a readable DICOM file (it may be truncated or corrupt)"
        raise ScanError(source.label, problem, _DICOM_FIX) from error


def _header(source: _Source, keep_sex_age: bool) -> list[_Slice]:
    """The images of a file (one, or one per frame of an enhanced file); none for non-DICOM files and DICOMDIRs."""
    if source.label.name.upper() == "DICOMDIR":
        return []
    handle = source.open()
    kind = _kind(source, handle)
    if kind is None:
        return []
    ds = _read(source, forced=kind == "raw", pixels=False, handle=handle)
    with _quiet():
        image = _numbers(source, ds, forced=kind == "raw", keep_sex_age=keep_sex_age)
        if image is None or not is_enhanced(ds):
            return [] if image is None else [image]
        return [
            replace(image, frame=f.index, position=f.position, orientation=f.orientation,
                    pixel_spacing=f.pixel_spacing, rescale=f.rescale)
            for f in frames(ds, image.frames, source.label)
        ]  # fmt: skip


def _numbers(source: _Source, ds: Dataset, *, forced: bool, keep_sex_age: bool) -> _Slice | None:
    """What `_header` keeps of a parsed header (top level only); None for DICOMDIRs and non-image objects."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
        return None
    if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
        problem = "is incomplete: required attributes are missing (the file may be truncated)"
        raise ScanError(source.label, problem, _DICOM_FIX)
    rows, columns = integer(ds, "Rows"), integer(ds, "Columns")
    if not rows or not columns:
        return None
    return _Slice(
        source=source,
        forced=forced,
        series_key=str(ds.get("SeriesInstanceUID", "") or ""),
        number=integer(ds, "SeriesNumber"),
        modality=modality(ds),
        rows=rows,
        columns=columns,
        frames=integer(ds, "NumberOfFrames") or 1,
        orientation=floats(ds, "ImageOrientationPatient", 6, source.label),
        position=floats(ds, "ImagePositionPatient", 3, source.label),
        pixel_spacing=floats(ds, "PixelSpacing", 2, source.label),
        sex=sex(ds) if keep_sex_age else None,
        age_years=age_years(ds) if keep_sex_age else None,
    )


def _image_series(path: Path, sources: list[_Source], keep_sex_age: bool) -> list[_Series]:
    """The image series among the files, grouped by SeriesInstanceUID, ordered by series number."""
    groups: dict[str, list[_Slice]] = {}
    for source in sources:
        for image in _header(source, keep_sex_age):
            groups.setdefault(image.series_key, []).append(image)
    if not groups:
        problem = f"holds no DICOM images ({len(sources)} files looked at)"
        if path.is_file():
            problem = "is not a DICOM image file"
        raise ScanError(path, problem, _FOLDER_FIX)
    series = [_Series(tuple(slices)) for slices in groups.values()]
    return sorted(series, key=lambda s: (s.number is None, s.number or 0, -len(s.slices)))


def _listing(series: list[_Series]) -> str:
    """The series, one label each, for messages."""
    return ", ".join(s.label() for s in series)


def _choose(path: Path, series: list[_Series], number: int | None) -> tuple[_Series, list[str]]:
    """The series asked for by number, or the CT series with the most axial slices (with a note)."""
    if number is not None:
        matches = [s for s in series if s.number == number]
        if not matches:
            raise ScanError(
                path, f"has no series {number}; available: {_listing(series)}", "Choose one with --series N"
            )
        if len(matches) > 1:
            problem = f"holds {len(matches)} series numbered {number} ({_listing(matches)})"
            raise ScanError(path, problem, "Put the series you want in a folder of its own")
        return matches[0], []
    if len(series) == 1:
        return series[0], []
    ranked = sorted(series, key=lambda s: (s.modality == "CT", s.axial, len(s.slices)), reverse=True)
    chosen = ranked[0]
    why = "the CT series with the most axial slices" if chosen.modality == "CT" else "the series with the most slices"
    others = [s for s in series if s is not chosen]
    note = f"picked {chosen.label()}, {why}; also present: {_listing(others)}; choose another with --series N"
    return chosen, [note]


@dataclass(frozen=True)
class _Geometry:
    """Sorted slices and the LPS frame of the stack: in-plane axes, normal, spacing, per-slice positions."""

    slices: tuple[_Slice, ...]
    axes: np.ndarray
    spacing: np.ndarray
    positions: np.ndarray
    tilt_deg: float


def _same(values: list[np.ndarray], tol: float) -> bool:
    """Whether all arrays equal the first within `tol`."""
    return all(np.allclose(v, values[0], atol=tol, rtol=0.0) for v in values[1:])


def _check_spacing(path: Path, name: str, spacing: float) -> None:
    """ScanError unless a spacing lies in SPACING_RANGE_MM."""
    lo, hi = SPACING_RANGE_MM
    if not lo <= spacing <= hi:
        problem = f"{name} of {spacing:.4g} mm is outside the plausible range {lo:g}-{hi:g} mm"
        raise ScanError(path, problem, "Check the export; the header geometry looks broken")


def _geometry(path: Path, series: _Series) -> _Geometry:
    """Sort the slices along the normal and check the stack: one grid, even spacing, at most a modest tilt."""
    name = series.label()
    slices = series.slices
    if any(s.frames > 1 and s.frame is None for s in slices):
        problem = f"{name} is a multi-frame image without per-frame geometry (not an enhanced CT or MR image)"
        raise ScanError(
            path, problem, "Export it as single-frame (classic) DICOM, or convert it to NIfTI and read that"
        )
    for s in slices:
        for value, keyword in ((s.orientation, "ImageOrientationPatient"), (s.position, "ImagePositionPatient"),
                               (s.pixel_spacing, "PixelSpacing")):  # fmt: skip
            if value is None:
                problem = f"has no {keyword}, so it is not a slice of a volume"
                raise ScanError(s.source.label, problem, "Choose a cross-sectional series with --series N")
    if len(slices) < 2:
        raise ScanError(path, f"{name} has a single slice; a volume needs at least 2", "Choose another series")
    if len({(s.rows, s.columns) for s in slices}) > 1:
        sizes = sorted({f"{s.columns} x {s.rows}" for s in slices})
        raise ScanError(path, f"the slices of {name} differ in size ({', '.join(sizes)})", "Re-export the series")
    if not _same([s.orientation for s in slices], 1e-4):
        raise ScanError(path, f"the slices of {name} differ in orientation", "Re-export the series as one stack")
    if not _same([s.pixel_spacing for s in slices], 1e-4):
        raise ScanError(path, f"the slices of {name} differ in pixel spacing", "Re-export the series as one stack")
    axes = _frame(path, slices[0].orientation)
    order = np.argsort([float(s.position @ axes[:, 2]) for s in slices], kind="stable")
    slices = tuple(slices[i] for i in order)
    positions = np.array([s.position for s in slices])
    heights = positions @ axes[:, 2]
    spacing_k = _slice_spacing(path, name, heights)
    dy, dx = slices[0].pixel_spacing  # row spacing (between rows, along j), column spacing (along i)
    _check_spacing(path, "the pixel spacing", float(min(dx, dy)))
    _check_spacing(path, "the pixel spacing", float(max(dx, dy)))
    spacing = np.array([dx, dy, spacing_k])
    return _Geometry(slices, axes, spacing, positions, _tilt_deg(path, name, positions, axes, spacing))


def _frame(path: Path, orientation: np.ndarray) -> np.ndarray:
    """LPS columns (row direction, column direction, normal) from ImageOrientationPatient, made orthonormal."""
    a, b = orientation[:3], orientation[3:]
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if abs(na - 1) > _ORTHOGONAL_TOL * 10 or abs(nb - 1) > _ORTHOGONAL_TOL * 10 or abs(a @ b) > _ORTHOGONAL_TOL:
        problem = "ImageOrientationPatient is not two orthogonal unit vectors"
        raise ScanError(path, problem, "Check the export; the header geometry looks broken")
    a, b = a / na, b / nb
    u, _, vt = np.linalg.svd(np.column_stack([a, b, np.cross(a, b)]))
    return u @ vt


def _slice_spacing(path: Path, name: str, heights: np.ndarray) -> float:
    """The even spacing of sorted slice heights along the normal, or ScanError saying where it breaks."""
    gaps = np.diff(heights)
    same = np.flatnonzero(gaps < _SAME_POSITION_MM)
    if same.size:
        where = ", ".join(f"{heights[i]:.2f} mm" for i in same[:_MAX_LISTED])
        problem = f"{name} has several slices at the same position ({where})"
        fix = "The folder may hold two copies, or several phases or echoes; keep one stack per folder"
        raise ScanError(path, problem, fix)
    spacing = float(np.median(gaps))
    _check_spacing(path, "the slice spacing", spacing)
    bad = np.flatnonzero(np.abs(gaps - spacing) > _SPACING_TOL[0] + _SPACING_TOL[1] * spacing)
    if bad.size:
        where = "; ".join(
            f"{gaps[i]:.2f} mm between {heights[i]:.2f} and {heights[i + 1]:.2f} mm" for i in bad[:_MAX_LISTED]
        )
        missing = gaps[bad].max() > 1.5 * spacing
        problem = (
            f"the slices of {name} are not evenly spaced (spacing {spacing:.2f} mm elsewhere; gaps of {where})"
            + ("; a slice is probably missing" if missing else "")
        )
        raise ScanError(path, problem, "Copy or export the complete series again")
    return float((heights[-1] - heights[0]) / (len(heights) - 1))


def _tilt_deg(path: Path, name: str, positions: np.ndarray, axes: np.ndarray, spacing: np.ndarray) -> float:
    """The gantry tilt: the angle between the slice step and the normal (0 when the shear is negligible)."""
    n = len(positions)
    step = (positions[-1] - positions[0]) / (n - 1)
    line = positions[0] + np.arange(n)[:, None] * step
    off_line = np.linalg.norm((positions - line) @ axes[:, :2], axis=1).max()
    if off_line > _LINE_TOL_VOXELS * spacing[:2].min():
        problem = f"the slice positions of {name} do not lie on a straight line (off by up to {off_line:.2f} mm)"
        raise ScanError(path, problem, "Re-export the series as one stack")
    shear = np.linalg.norm(step @ axes[:, :2])
    if shear * (n - 1) < _NEGLIGIBLE_SHEAR_VOXELS * spacing[:2].min():
        return 0.0
    tilt = float(np.degrees(np.arctan2(shear, step @ axes[:, 2])))
    if tilt > MAX_TILT_DEG:
        problem = f"{name} has a gantry tilt of {tilt:.1f} degrees; facegen resamples tilts up to {MAX_TILT_DEG:g}"
        raise ScanError(path, problem, "Reconstruct the series without tilt (an axial reformat) on the scanner")
    return tilt


def _pixels(s: _Slice, decoded: dict[Path, np.ndarray]) -> tuple[np.ndarray, bool]:
    """One slice in modality units (rescale applied), (columns, rows) order, and whether it is integral.

    An enhanced file is decoded once, on its first frame; `decoded` keeps its frames for the others.
    """
    label = s.source.label
    if s.frame is None:
        raw, ds = _file_pixels(s)
        with _quiet():
            slope, intercept = rescale(ds, label)
    else:
        if label not in decoded:
            decoded[label] = _file_pixels(s)[0]
        raw, (slope, intercept) = decoded[label][s.frame], s.rescale
    values = raw.astype(np.float64) * slope + intercept
    return values.T, bool(np.all(values == np.rint(values)))


def _file_pixels(s: _Slice) -> tuple[np.ndarray, Dataset]:
    """The decoded pixels of a slice's file, (frames, rows, columns) for an enhanced file, and its dataset."""
    ds = _read(s.source, forced=s.forced, pixels=True)
    if "PixelData" not in ds:
        raise ScanError(s.source.label, "has no pixel data", _DICOM_FIX)
    with _quiet():
        raw = decode(ds, s.source.label)
    expected = (s.rows, s.columns) if s.frame is None else (s.frames, s.rows, s.columns)
    if s.frame is not None and s.frames == 1 and raw.shape == expected[1:]:
        raw = raw[None]
    if raw.shape != expected:
        problem = f"holds pixel data of shape {raw.shape}, not {s.frames} grey-level frame(s) of {s.rows} x {s.columns}"
        raise ScanError(s.source.label, problem, "Colour images are not CT slices")
    return raw, ds


def _stack(geometry: _Geometry) -> np.ndarray:
    """The slices in (i, j, k) order: int16 while every value is an integer that fits, float32 otherwise."""
    first = geometry.slices[0]
    out = np.empty((first.columns, first.rows, len(geometry.slices)), np.int16)
    decoded: dict[Path, np.ndarray] = {}
    for k, s in enumerate(geometry.slices):
        values, integral = _pixels(s, decoded)
        if out.dtype == np.int16 and not (integral and values.min() >= -32768 and values.max() <= 32767):
            out = out.astype(np.float32)
        out[:, :, k] = values
    return out


def _untilt(array: np.ndarray, geometry: _Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Resample sheared slices (linear) onto the orthogonal grid of the first slice's lattice, widened to hold all.

    Returns the array and the LPS origin of its voxel (0, 0, 0).
    """
    spacing, axes = geometry.spacing, geometry.axes
    shift = (geometry.positions - geometry.positions[0]) @ axes[:, :2] / spacing[:2]  # (k, 2) in voxels
    size = np.array(array.shape[:2])
    lo = np.floor(np.minimum(0.0, shift.min(axis=0)) + 1e-6).astype(int)
    hi = np.ceil(np.maximum(size - 1.0, (size - 1 + shift).max(axis=0)) - 1e-6).astype(int)
    shape = tuple(int(n) for n in hi - lo + 1)
    fill = float(array.min())
    out = np.empty((*shape, array.shape[2]), np.float32)
    for k in range(array.shape[2]):
        ndimage.affine_transform(
            array[:, :, k].astype(np.float32),
            np.ones(2),
            offset=lo - shift[k],
            output_shape=shape,
            output=out[:, :, k],
            order=1,
            mode="constant",
            cval=fill,
        )
    origin = geometry.positions[0] + axes[:, :2] @ (lo * spacing[:2])
    return out, origin


def _volume_dtype(array: np.ndarray) -> np.ndarray:
    """int16 when every value is an integer that fits, float32 otherwise."""
    if array.dtype == np.int16:
        return array
    if array.size and array.min() >= -32768 and array.max() <= 32767 and np.all(array == np.rint(array)):
        return array.astype(np.int16)
    return array.astype(np.float32, copy=False)


def read_dicom(path: Path, *, series: int | None = None, keep_sex_age: bool = False) -> Scan:
    """Read one image series (folder, searched recursively; .zip; enhanced multi-frame file) as a `Scan`.

    The volume is in patient coordinates; compressed pixel data is decoded by pydicom's plugins (`dicom_pixels`).
    With several series and no `series` number, the CT series with the most axial slices is read and a note
    names it and the others. Sex and age are copied from the header only with `keep_sex_age`.
    """
    path = Path(path)
    with _sources(path) as sources:
        available = _image_series(path, sources, keep_sex_age)
        chosen, notes = _choose(path, available, series)
        geometry = _geometry(path, chosen)
        array = _stack(geometry)
    origin = geometry.positions[0]
    if geometry.tilt_deg:
        array, origin = _untilt(array, geometry)
        notes.append(f"resampled a gantry tilt of {geometry.tilt_deg:.1f} degrees onto an orthogonal grid")
    volume = Volume(_volume_dtype(array), geometry.spacing, LPS_TO_PATIENT @ origin, LPS_TO_PATIENT @ geometry.axes)
    first = geometry.slices[0]
    source_name = path.resolve().name or str(path)
    return Scan(
        volume=volume,
        modality=chosen.modality,
        description=f"DICOM {chosen.label()} from {source_name}",
        sex=first.sex,
        age_years=first.age_years,
        notes=tuple(notes),
    )
