"""A gallery of subjects: shaded skull above shaded face, with sex, age and BMI, to see the variety at a glance."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import trimesh

from facegen.data.dataset.reader import Dataset
from facegen.viz.show import THREE_QUARTER_DEG, save_figure, shaded_view


def gallery_figure(dataset: Dataset, *, count: int = 6) -> plt.Figure:
    """Shaded three-quarter views of the first `count` subjects: skulls on top, faces below."""
    rows = dataset.rows[:count]
    fig, axes = plt.subplots(2, len(rows), figsize=(3.2 * len(rows), 6.6), squeeze=False)
    for col, row in enumerate(rows):
        folder = dataset.paths.subject_dir(row.subject.subject_id)
        for r, name in enumerate(("skull.ply", "face.ply")):
            mesh = trimesh.load(folder / name, force="mesh")
            axes[r, col].imshow(shaded_view(mesh, yaw_deg=THREE_QUARTER_DEG), cmap="gray", vmin=0, vmax=1)
            axes[r, col].set_xticks([])
            axes[r, col].set_yticks([])
        s = row.subject
        axes[0, col].set_title(f"{s.subject_id}\n{s.describe()}", fontsize=10)
    fig.suptitle("facegen synthetic heads (skull and face in register)")
    fig.tight_layout()
    return fig


def save_gallery(dataset_dir: Path | str, out: Path | str, *, count: int = 6) -> Path:
    """Draw a gallery of a dataset's first subjects to a PNG file."""
    save_figure(gallery_figure(Dataset.open(dataset_dir), count=count), Path(out), dpi=80)
    return Path(out)
