"""The one trainer: closed-form families are fitted, neural families (2D or 3D) are trained in steps.

Every step is a pure function of (seed, step) and the state: the batch comes from a seeded stream of
epoch permutations, and the global random generators are re-seeded per step and rank. So a run killed
after its checkpoint at step k and resumed gives the same weights as a run that never stopped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facegen.data.groups import group_labels
from facegen.io.atomic import write_json_atomic
from facegen.io.output_folder import OutputFolderError, claim_output_folder
from facegen.models.base import DepthData, FaceModel, TrainableModel
from facegen.models.registry import MODEL_DIR, create
from facegen.training import checkpoint as ckpt
from facegen.training.config import TrainConfig
from facegen.training.distributed import Runtime, start_runtime, stop_runtime
from facegen.training.skull_space import MIN_SKULLS, fit_skull_space

RUN_RECORD = "run.json"
TENSORBOARD_DIR = "tensorboard"
RUN_KIND = "training run"
"""The output-folder kind of a run folder (see facegen.io.output_folder)."""

ProgressCallback = Callable[[int, int, dict[str, float]], None]
"""Called on the main process as (step, total steps, latest losses)."""
Validation = Callable[[FaceModel, DepthData], dict[str, float]]
"""Scores a model on validation subjects as named figures (the caller's metrics: the trainer imports none)."""


class BatchStream:
    """Which subjects each process trains on at each step: epoch after epoch of seeded permutations.

    The global batch of step s is positions (s-1)*G ... s*G-1 of the stream (G = batch size x processes);
    process r takes its r-th slice. It depends only on (seed, step), never on what ran before.
    """

    def __init__(
        self, n: int, batch_size: int, world_size: int, seed: int, weights: np.ndarray | None = None
    ) -> None:
        if n < 1:
            raise ValueError("no training subjects")
        self.n, self.batch_size, self.world_size, self.seed = n, batch_size, world_size, seed
        self.weights = None if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        """Epoch `epoch`: a permutation, or n weighted draws with replacement when sampling is balanced."""
        if epoch not in self._perms:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(self.n) if self.weights is None else rng.choice(self.n, self.n, p=self.weights)
            self._perms = {epoch: order}
        return self._perms[epoch]

    def indices(self, step: int, rank: int) -> np.ndarray:
        size = self.batch_size * self.world_size
        start = (step - 1) * size + rank * self.batch_size
        positions = range(start, start + self.batch_size)
        return np.array([self._perm(p // self.n)[p % self.n] for p in positions])


def balanced_weights(data: DepthData, by: str) -> np.ndarray | None:
    """Sampling weights that give every group (sex, age band, BMI band or population group) equal weight."""
    if by == "none":
        return None
    labels = np.array(group_labels(data.subjects, by))
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def set_learning_rate(optimizers: dict[str, torch.optim.Optimizer], factor: float) -> None:
    """Every parameter group's learning rate as `factor` x the one its optimizer was built with."""
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


def step_seed(seed: int, step: int, rank: int) -> int:
    """The global-generator seed of one step on one process."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])


def subset(data: DepthData, count: int) -> DepthData:
    """The first `count` subjects (validation during training stays cheap)."""
    if count >= len(data):
        return data
    arrays = ("skull_depth", "skull_mask", "face_depth", "face_mask", "face_region", "metadata")
    values: dict[str, Any] = {name: getattr(data, name)[:count] for name in arrays}
    if data.noise_free_face_depth is not None:
        values["noise_free_face_depth"] = data.noise_free_face_depth[:count]
    if data.skull_landmarks is not None:
        values["skull_landmarks"] = {k: v[:count] for k, v in data.skull_landmarks.items()}
    if data.source is not None:
        values["source"] = replace(data.source, rows=data.source.rows[:count])
    return replace(data, subjects=data.subjects[:count], **values)


@dataclass
class _Log:
    """Running means of the losses between two log lines."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def add(self, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def pop(self) -> dict[str, float]:
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


class Trainer:
    """Trains one TrainableModel on one process of a (possibly distributed) run; `validate` scores the val
    subjects every eval_every steps (no validation without it)."""

    def __init__(
        self,
        model: TrainableModel,
        config: TrainConfig,
        runtime: Runtime,
        train: DepthData,
        val: DepthData | None,
        run: Path | None = None,
        data_hash: str | None = None,
        validate: Validation | None = None,
    ) -> None:
        self.model, self.config, self.runtime = model, config, runtime
        self.train, self.val, self.run, self.data_hash = train, val, run, data_hash
        self.validate = validate
        model.prepare(train)
        self.nets = {name: net.to(runtime.device) for name, net in model.networks().items()}
        self.optimizers = model.optimizers(config.lr, (config.beta1, config.beta2))
        self.step = 0
        self.stream = BatchStream(
            len(train), config.batch_size, runtime.world_size, config.seed, balanced_weights(train, config.balance)
        )

    # --- checkpoints --------------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "code_version": ckpt.code_version(),
            "data_hash": self.data_hash,
            "networks": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "random_states": ckpt.random_states(),
        }

    def restore(self, path: Path) -> None:
        """Continue from a checkpoint; refuses one made with another config or other data."""
        state = ckpt.load_checkpoint(path)
        if TrainConfig.resume_key(state["config"]) != TrainConfig.resume_key(self.config.to_dict()):
            raise ValueError(f"{path} was written with another config; resume with the same config (only steps "
                             "may change) or train into a new --out")  # fmt: skip
        if state["data_hash"] != self.data_hash:
            raise ValueError(f"{path} was trained on other data (dataset card differs); resume on the same data")
        for name, net in self.nets.items():
            net.load_state_dict(state["networks"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        ckpt.restore_random_states(state["random_states"])
        self.step = int(state["step"])

    def _save(self) -> None:
        if self.run is not None and self.runtime.is_main:
            ckpt.save_checkpoint(self.run, self.step, self._payload(), keep=self.config.keep_checkpoints)
        self.runtime.barrier()

    # --- the loop -----------------------------------------------------------------------------
    def fit(self, on_progress: ProgressCallback | None = None) -> dict[str, float]:
        """Train up to config.steps; returns the last logged losses and validation figures."""
        config, rt = self.config, self.runtime
        wrapped = {name: rt.wrap(net) for name, net in self.nets.items()}
        for net in wrapped.values():
            net.train()
        data = self.model.training_set(self.train)
        writer = self._writer()
        log, last, figures = _Log(), {}, {}
        started, first_step = time.perf_counter(), self.step
        validating = self.validate is not None and self.val is not None and rt.is_main
        try:
            while self.step < config.steps:
                self.step += 1
                torch.manual_seed(step_seed(config.seed, self.step, rt.rank))
                set_learning_rate(self.optimizers, config.lr_factor(self.step))
                batch = data.batch(self.stream.indices(self.step, rt.rank), rt.device)
                log.add(self.model.training_step(wrapped, self.optimizers, batch, rt.autocast))
                if self.step % config.log_every == 0 or self.step == config.steps:
                    last = log.pop()
                    if writer is not None:
                        for k, v in last.items():
                            writer.add_scalar(f"train/{k}", v, self.step)
                    if rt.is_main and on_progress is not None:
                        on_progress(self.step, config.steps, last)
                if validating and self.step % config.eval_every == 0:
                    figures = self.validate(self.model, subset(self.val, config.val_subjects))
                    if writer is not None:
                        for k, v in figures.items():
                            writer.add_scalar(f"val/{k.removeprefix('val_')}", v, self.step)
                if self.step % config.checkpoint_every == 0 or self.step == config.steps:
                    self._save()
        finally:
            if writer is not None:
                writer.close()
        seconds = time.perf_counter() - started
        samples = (self.step - first_step) * config.batch_size * rt.world_size
        return last | figures | {"train_seconds": seconds, "samples_per_second": samples / max(seconds, 1e-9)}

    def _writer(self):
        if self.run is None or not self.runtime.is_main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.run / TENSORBOARD_DIR), purge_step=self.step + 1)


def seeded_model(config: TrainConfig) -> FaceModel:
    """A new model of the config's family, its initial weights drawn from the config's seed."""
    torch.manual_seed(step_seed(config.seed, 0, 0))
    return create(config.model, **config.model_options)


def train_in_memory(model: TrainableModel, data: DepthData, config: TrainConfig) -> dict[str, float]:
    """Train a model on in-memory data in this process (no checkpoints, no logs)."""
    runtime = start_runtime(config.device, config.precision)
    return Trainer(model, config, runtime, data, None).fit()


def fit_model(model: FaceModel, data: DepthData, *, seed: int = 0) -> dict[str, float]:
    """Fit any family in memory with default settings: closed-form by its own `fit`, neural by the trainer (it
    lives here because models never import the trainer; `facegen train` also writes checkpoints and logs)."""
    if isinstance(model, TrainableModel):
        return train_in_memory(model, data, TrainConfig(model=model.family, seed=seed))
    return model.fit(data, seed=seed)


def _claim_run_folder(run: Path, *, resume: bool, overwrite: bool) -> None:
    """Make RUN a facegen run folder (once, in the launching process): new, resumed, or replaced on request."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    holds_run = run.is_dir() and bool(ckpt.checkpoints(run) or (run / RUN_RECORD).exists())
    if holds_run and not (resume or overwrite):
        raise OutputFolderError(f"{run} already holds a run; pass --resume to continue it, --overwrite to replace "
                                "it, or choose another --out")  # fmt: skip
    claim_output_folder(run, kind=RUN_KIND, files=[RUN_RECORD], folders=[ckpt.CHECKPOINTS, TENSORBOARD_DIR, MODEL_DIR],
                        overwrite=overwrite, keep=resume or not holds_run)  # fmt: skip


def train_run(
    config: TrainConfig,
    data_root: Path,
    run: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_progress: ProgressCallback | None = None,
    validate: Validation | None = None,
) -> dict[str, Any]:
    """`facegen train`: fit or train `config.model` on DATA's train split into RUN (an earlier run there is
    continued with `resume` or replaced with `overwrite`); returns the run record. `validate` scores the val
    split during training and at the end (the caller's metrics; none without it)."""
    run, data_root = Path(run), Path(data_root)
    _claim_run_folder(run, resume=resume, overwrite=overwrite)
    runtime = start_runtime(config.device, config.precision)
    try:
        if config.threads:
            torch.set_num_threads(config.threads)
        train = DepthData.load(data_root, "train")
        val = _optional_split(data_root, "val")
        data_hash = ckpt.data_fingerprint(data_root)
        model = seeded_model(config)
        started = time.perf_counter()
        if isinstance(model, TrainableModel):
            trainer = Trainer(model, config, runtime, train, val, run, data_hash, validate)
            latest = ckpt.latest_checkpoint(run) if resume else None
            if latest is not None:
                trainer.restore(latest)
            figures = trainer.fit(on_progress)
        else:
            figures = model.fit(train, seed=config.seed) if runtime.is_main else {}
        if not runtime.is_main:
            return {}
        if val is not None:
            figures |= model.fit_held_out(val)
        if val is not None and validate is not None:
            figures |= validate(model, val)
        model.save(run / MODEL_DIR)
        if len(train) >= MIN_SKULLS:  # what a case's skull is compared with (how far from the training skulls)
            fit_skull_space(train.skull_depth, train.skull_mask, seed=config.seed).save(run / MODEL_DIR)
        record = {
            "model": config.model,
            "config": config.to_dict(),
            "data": {"root": str(data_root.resolve()), "hash": data_hash, "train": len(train),
                     "val": len(val) if val is not None else 0},
            "code_version": ckpt.code_version(),
            "runtime": {"device": str(runtime.device), "precision": runtime.precision,
                        "processes": runtime.world_size},
            "figures": figures,
            "seconds": time.perf_counter() - started,
        }  # fmt: skip
        write_json_atomic(run / RUN_RECORD, record)
        return record
    finally:
        stop_runtime(runtime)


def _optional_split(root: Path, split: str) -> DepthData | None:
    """The split's data, or None when the dataset has no subject in it (a small or real-scan set)."""
    from facegen.data.dataset.reader import Dataset

    if not any(r.split == split for r in Dataset.open(root).rows):
        return None
    return DepthData.load(root, split)
