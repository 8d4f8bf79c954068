"""Model families by name: `facegen models` lists them, and an unknown name says which exist."""

from __future__ import annotations

from collections.abc import Callable

from facegen.models.base import FaceModel

_FAMILIES: dict[str, type[FaceModel]] = {}


def register(cls: type[FaceModel]) -> type[FaceModel]:
    """Class decorator: make a model family available by its `family` name."""
    if cls.family in _FAMILIES and _FAMILIES[cls.family] is not cls:
        raise ValueError(f"model family {cls.family!r} is registered twice")
    _FAMILIES[cls.family] = cls
    return cls


def _load_builtin() -> None:
    """Import the built-in families (each registers itself)."""
    import facegen.models.baselines.pca  # noqa: F401
    import facegen.models.baselines.template  # noqa: F401
    import facegen.models.gan.cgan  # noqa: F401


def families() -> dict[str, type[FaceModel]]:
    """Registered families by name, sorted."""
    _load_builtin()
    return dict(sorted(_FAMILIES.items()))


def model_class(name: str) -> type[FaceModel]:
    """The family called `name`, or a ValueError listing the known ones."""
    known = families()
    if name not in known:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(known)}")
    return known[name]


def create(name: str, **options: object) -> FaceModel:
    """A new, unfitted model of the family `name`."""
    factory: Callable[..., FaceModel] = model_class(name)
    return factory(**options)
