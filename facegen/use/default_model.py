"""The model a fresh install reconstructs with: a statistical model fitted on synthetic heads, built on first use.

Nothing binary ships in the package: `facegen models --build-default` (or the first `facegen reconstruct`
without --model) generates synthetic heads, fits the statistical shape regression at 128^2 (2 mm pixels),
evaluates it on held-out heads into `evaluation/`, and caches it. Every output names it as trained on
synthetic data. The same version and seed build the same model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from facegen.io.cache import cache_root

DEFAULT_MODEL = "default-pca-128-v6"
"""v2: the statistical model states its predictive SD (the case shows uncertainty by default). v3: faces relative to
the bone (log tissue depth over the bone envelope): no face inside the bone, a real skull read by what it shares
with the synthetic ones. v4: the envelope smoothed (no teeth or sutures through a real skull's face), the face held in
front of the bone by a soft floor, the nostrils lidded in the case's meshes. v5: the skin held 3 mm from the bone in 3D
(the chin's lower border covered), a skull beyond the training spread read at its edge, the log tissue depth smoothed
by 1.4 mm (no ripples across a real skull's face). v6: the skull space's reference distances measured over the bone
each training skull has (as a case's skull is read now: bone it lacks left out, not filled with the mean)."""
DEFAULT_SUBJECTS = 300
DEFAULT_SEED = 2026


def models_dir() -> Path:
    """Where built models are cached ($FACEGEN_CACHE/models, default ~/.cache/facegen/models)."""
    return cache_root() / "models"


def default_model_dir() -> Path:
    return models_dir() / DEFAULT_MODEL


def build_default_model(
    *, n: int | None = None, seed: int = DEFAULT_SEED, workers: int = 2,
    on_subject: Callable[[str], None] | None = None, target: Path | None = None,
) -> Path:  # fmt: skip
    """Generate `n` heads, fit and evaluate the statistical model; returns the run folder (atomically placed)."""
    from facegen.data.dataset.writer import write_synthetic_dataset
    from facegen.data.representations.build import square_spec
    from facegen.evaluation.html_report import write_report
    from facegen.evaluation.report import evaluate_models
    from facegen.evaluation.validation import validation_figures
    from facegen.training.config import load_config
    from facegen.training.loop import train_run

    n = n or DEFAULT_SUBJECTS
    target = Path(target or default_model_dir())
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        data, run = Path(tmp) / "data", Path(tmp) / "run"
        write_synthetic_dataset(data, n=n, seed=seed, spec=square_spec(128, (8, 8, 8)), workers=workers,
                                on_subject=on_subject)  # fmt: skip
        train_run(load_config(None, [f"seed={seed}"], model="pca"), data, run, validate=validation_figures)
        write_report(evaluate_models([run], data, "test", seed=seed), run / "evaluation")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(run, target)
    return target
