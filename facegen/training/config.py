"""The training configuration: typed, with working defaults, from a TOML/JSON file and `--set key=value`.

Top-level keys are the trainer's (steps, batch size, learning rate, precision...); `model.KEY` sets an
option of the model family (its constructor's keyword arguments), checked against that family.
"""

from __future__ import annotations

import inspect
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from facegen.data.groups import GROUPINGS

PRECISIONS = ("auto", "bf16", "fp32")
BALANCE = ("none", *GROUPINGS)
"""Balanced sampling: off, or by one grouping of facegen.data.groups."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on besides the data (and the code version, recorded beside it)."""

    model: str = "gan2d"
    seed: int = 0
    steps: int = 2000
    batch_size: int = 8
    """Per process: a DDP run of P processes trains on P x batch_size subjects per step."""
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay_start: float = 1.0
    """The share of the steps after which the learning rate falls linearly toward zero at the last step (pix2pix,
    Isola et al. 2017: 0.5); 1.0 keeps it constant."""
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    eval_every: int = 250
    log_every: int = 25
    val_subjects: int = 64
    """Validation during training uses at most this many subjects of the val split (all of them at the end)."""
    precision: str = "auto"
    """auto: bf16 on a GPU that supports it, fp32 on CPU."""
    device: str = "auto"
    threads: int = 0
    """CPU threads per process (0: PyTorch's default)."""
    balance: str = "none"
    """Bias mitigation: draw training subjects so that every group of sex, age, bmi or group weighs the same."""
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "checkpoint_every", "keep_checkpoints", "eval_every", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"config: {name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError("config: lr must be positive and beta1, beta2 in [0, 1)")
        if not 0 <= self.lr_decay_start <= 1:
            raise ValueError(f"config: lr_decay_start must lie in [0, 1], got {self.lr_decay_start}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"config: precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.balance not in BALANCE:
            raise ValueError(f"config: balance must be one of {', '.join(BALANCE)}, got {self.balance!r}")
        if self.threads < 0 or self.val_subjects < 1:
            raise ValueError("config: threads must be >= 0 and val_subjects >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def resume_key(values: dict[str, Any]) -> str:
        """What two runs' configs must share for one to continue the other: all but steps (keys added since a run
        was written take their defaults)."""
        return json.dumps(TrainConfig().to_dict() | values | {"steps": None}, sort_keys=True)

    def lr_factor(self, step: int) -> float:
        """The learning rate of step `step` (1-based) over `lr`: 1 until lr_decay_start x steps, then a linear fall
        to 1 / (decaying steps) at the last step (a pure function of the step: a resumed run follows it exactly)."""
        start = int(self.lr_decay_start * self.steps)
        if step <= start or start >= self.steps:
            return 1.0
        return max(self.steps - step + 1, 1) / (self.steps - start)

    @staticmethod
    def from_dict(values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config: unknown keys {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        return TrainConfig(**values)


def _parse_value(text: str) -> Any:
    """'3' -> 3, '2e-4' -> 0.0002, 'true' -> True, '[16, 32]' -> [16, 32], anything else as a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _coerce(name: str, value: Any, like: Any) -> Any:
    """`value` as the type of `like` (the default), or a ValueError naming the key."""
    if like is None:
        return value
    if isinstance(like, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif isinstance(value, bool):
        pass
    elif isinstance(like, int) and isinstance(value, int | float) and float(value).is_integer():
        return int(value)
    elif isinstance(like, float) and isinstance(value, int | float):
        return float(value)
    elif isinstance(like, tuple | list) and isinstance(value, list | tuple):
        return type(like)(value)
    elif isinstance(like, str) and isinstance(value, str):
        return value
    raise ValueError(f"config: {name} should be a {type(like).__name__} like {like!r}, got {value!r}")


def model_option_defaults(family: str) -> dict[str, Any]:
    """The keyword options of a model family with their defaults."""
    from facegen.models.registry import model_class

    signature = inspect.signature(model_class(family).__init__)
    return {
        name: p.default
        for name, p in signature.parameters.items()
        if name != "self" and p.default is not inspect.Parameter.empty
    }


def load_config(path: Path | None = None, overrides: list[str] | None = None, **base: Any) -> TrainConfig:
    """Defaults, then the file (TOML or JSON; a `[model]` table holds model options), then `key=value`s."""
    values: dict[str, Any] = dict(base)
    if path is not None:
        try:
            text = Path(path).read_text()
            loaded = json.loads(text) if Path(path).suffix == ".json" else tomllib.loads(text)
        except (OSError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"config file {path}: {exc}") from exc
        model_table = loaded.pop("model", None)
        if isinstance(model_table, dict):
            values["model_options"] = {**values.get("model_options", {}), **model_table}
        elif model_table is not None:
            values["model"] = model_table
        values.update(loaded)
    defaults = TrainConfig().to_dict()
    for item in overrides or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected key=value, e.g. steps=500 or model.lambda_l1=50")
        if key.startswith("model."):
            values.setdefault("model_options", {})[key.removeprefix("model.")] = _parse_value(text)
        elif key in defaults and key != "model_options":
            values[key] = _coerce(key, _parse_value(text), defaults[key])
        else:
            known = ", ".join(k for k in sorted(defaults) if k != "model_options")
            raise ValueError(f"--set {key}: unknown key; known keys: {known}, or model.OPTION")
    for key, value in list(values.items()):
        if key in defaults and key not in ("model_options", "model"):
            values[key] = _coerce(key, value, defaults[key])
    config = TrainConfig.from_dict(values)
    return replace(config, model_options=checked_model_options(config.model, config.model_options))


def checked_model_options(family: str, options: dict[str, Any]) -> dict[str, Any]:
    """Options checked against the family's constructor: unknown names are refused, values coerced."""
    defaults = model_option_defaults(family)
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        known = ", ".join(f"model.{k}" for k in defaults) or "none"
        raise ValueError(f"model {family!r} has no option {', '.join(unknown)}; its options: {known}")
    return {k: _coerce(f"model.{k}", v, defaults[k]) for k, v in options.items()}
