"""Where everything of a dataset lies on disk; one place so writers, readers and the verifier agree.

DIR/
  dataset.json          dataset card: generator, seed, counts, floor, representations, file checksums
  subjects.csv          one row per subject: id, sex, age, BMI, group, split, floor
  arrays.zarr/          chunked arrays, one chunk per subject: depth maps, masks, grids
  subjects/ID/          skull.ply, face.ply, noise_free_face.ply, landmarks.json, ct.nii.gz (with --ct);
                        ingested scans: skull.ply, face.ply, landmarks.json, scan.json, alignment.png
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATASET_KIND = "dataset"
"""The output-folder kind of every dataset, synthetic or ingested (see facegen.io.output_folder)."""
CARD = "dataset.json"
TABLE = "subjects.csv"
ARRAYS = "arrays.zarr"
SUBJECTS = "subjects"

DEPTH_ARRAYS = ("skull_depth", "face_depth", "noise_free_face_depth")
MASK_ARRAYS = ("skull_mask", "face_mask", "face_region")
GRID_ARRAYS = ("skull_grid", "face_grid")
SUBJECT_FILES = ("skull.ply", "face.ply", "noise_free_face.ply", "landmarks.json")
SCAN_SUBJECT_FILES = ("skull.ply", "landmarks.json", "scan.json", "alignment.png")
"""What an ingested real scan has per subject (plus face.ply when the input showed a face)."""
CT_FILE = "ct.nii.gz"


@dataclass(frozen=True)
class DatasetLayout:
    """Paths of one dataset folder."""

    root: Path

    @property
    def card(self) -> Path:
        return self.root / CARD

    @property
    def table(self) -> Path:
        return self.root / TABLE

    @property
    def arrays(self) -> Path:
        return self.root / ARRAYS

    def subject_dir(self, subject_id: str) -> Path:
        return self.root / SUBJECTS / subject_id
