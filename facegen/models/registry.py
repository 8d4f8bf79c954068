"""Model families by name: `facegen models` lists them, and an unknown name says which exist.

Built-in families are imported only when asked for: loading the statistical model for a case does not pay
for importing the neural networks.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path

from facegen.models.base import FaceModel

_FAMILIES: dict[str, type[FaceModel]] = {}


def register(cls: type[FaceModel]) -> type[FaceModel]:
    """Class decorator: make a model family available by its `family` name."""
    if cls.family in _FAMILIES and _FAMILIES[cls.family] is not cls:
        raise ValueError(f"model family {cls.family!r} is registered twice")
    _FAMILIES[cls.family] = cls
    return cls


BUILTIN = {
    "template": "facegen.models.baselines.template",
    "pca": "facegen.models.baselines.pca",
    "gan2d": "facegen.models.gan.cgan",
    "gan3d": "facegen.models.gan.gan3d",
    "diffusion2d": "facegen.models.diffusion.conditional",
    "ensemble": "facegen.models.ensemble",
}
"""Where each built-in family lives (its module registers it on import)."""
MODEL_DIR = "model"
"""The folder of a training run that holds the trained model."""


def families() -> dict[str, type[FaceModel]]:
    """Registered families by name, sorted (every built-in one imported)."""
    for module in BUILTIN.values():
        importlib.import_module(module)
    return dict(sorted(_FAMILIES.items()))


def model_class(name: str) -> type[FaceModel]:
    """The family called `name`, or a ValueError listing the known ones."""
    if name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    if name not in _FAMILIES:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(families())}")
    return _FAMILIES[name]


def model_folder(run: Path) -> Path:
    """A run's model folder (or the model folder itself)."""
    return run / MODEL_DIR if (run / MODEL_DIR).is_dir() else run


def load_trained(run: Path | str) -> FaceModel:
    """The trained model of a run folder (or of a model folder itself)."""
    run = Path(run)
    folder = model_folder(run)
    record = folder / "model.json"
    if not record.exists():
        raise ValueError(f"{run} holds no trained model ({MODEL_DIR}/model.json is missing); train it first")
    return model_class(json.loads(record.read_text())["family"]).load(folder)


def create(name: str, **options: object) -> FaceModel:
    """A new, unfitted model of the family `name`."""
    factory: Callable[..., FaceModel] = model_class(name)
    return factory(**options)
