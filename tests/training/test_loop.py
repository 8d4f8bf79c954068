"""The trainer's pieces in-process: the batch stream, balanced sampling, bf16 steps, in-memory fits and the
caller's validation."""

import math

import numpy as np
import pytest

from facegen.models.base import DepthData
from facegen.models.registry import create
from facegen.training import loop
from facegen.training.config import TrainConfig, load_config
from facegen.training.distributed import start_runtime
from facegen.training.loop import BatchStream, fit_model, seeded_model, train_in_memory, train_run

SMALL = ["model.channels=[8,16]", "model.discriminator_channels=8", "model.discriminator_layers=2", "batch_size=2"]


def test_each_epoch_visits_every_subject_once_and_processes_share_the_global_batch():
    one = BatchStream(10, 4, 1, seed=3)
    epoch = np.concatenate([one.indices(step, 0) for step in range(1, 6)])[:10]  # the first 10 positions: epoch 0
    assert sorted(epoch) == list(range(10))
    two = BatchStream(10, 2, 2, seed=3)
    for step in range(1, 8):
        both = np.concatenate([two.indices(step, 0), two.indices(step, 1)])
        np.testing.assert_array_equal(both, one.indices(step, 0))
    assert not np.array_equal(BatchStream(10, 4, 1, seed=4).indices(1, 0), one.indices(1, 0))


def test_balanced_sampling_gives_a_rare_group_its_share():
    labels = np.array([0] * 90 + [1] * 10)
    weights = 1.0 / np.bincount(labels)[labels]
    stream = BatchStream(100, 50, 1, seed=0, weights=weights)
    drawn = np.concatenate([stream.indices(step, 0) for step in range(1, 41)])
    share = (labels[drawn] == 1).mean()
    assert abs(share - 0.5) < 3 * math.sqrt(0.25 / len(drawn)) + 0.02
    plain = np.concatenate([BatchStream(100, 50, 1, seed=0).indices(step, 0) for step in range(1, 41)])
    assert (labels[plain] == 1).mean() == 0.1


def test_bf16_and_balanced_training_run_on_cpu(tiny_dataset):
    data = DepthData.load(tiny_dataset, "train")
    config = load_config(None, [*SMALL, "steps=2", "precision=bf16", "balance=bmi"])
    figures = train_in_memory(seeded_model(config), data, config)
    assert math.isfinite(figures["loss_g"]) and figures["samples_per_second"] > 0


def test_the_learning_rate_falls_linearly_after_its_start(tiny_dataset):
    config = load_config(None, [*SMALL, "steps=10", "lr=1e-3", "lr_decay_start=0.6"])
    assert [config.lr_factor(s) for s in (1, 6, 7, 8, 10)] == [1.0, 1.0, 1.0, 0.75, 0.25]
    assert TrainConfig(steps=10).lr_factor(10) == 1.0  # the default keeps it constant
    trainer = loop.Trainer(seeded_model(config), config, start_runtime("cpu", "fp32"),
                           DepthData.load(tiny_dataset, "train"), None)  # fmt: skip
    trainer.fit()
    for optimizer in trainer.optimizers.values():
        assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.25)
    with pytest.raises(ValueError, match="lr_decay_start must lie in"):
        load_config(None, ["lr_decay_start=1.5"])


def test_fit_model_trains_a_neural_family_with_default_settings_and_fits_a_closed_form_one(tiny_dataset, monkeypatch):
    data = DepthData.load(tiny_dataset, "train")
    gan = seeded_model(load_config(None, SMALL))
    with pytest.raises(TypeError, match=r"gan2d is trained in steps: call facegen\.training\.loop\.fit_model"):
        gan.fit(data)
    calls = []
    monkeypatch.setattr(loop, "train_in_memory", lambda *args: calls.append(args) or {"loss_g": 1.0})
    assert fit_model(gan, data, seed=5) == {"loss_g": 1.0}
    assert calls == [(gan, data, TrainConfig(model="gan2d", seed=5))]
    assert fit_model(create("pca"), data, seed=1) == create("pca").fit(data, seed=1)


def test_validation_is_the_callers_and_scores_the_val_split(tiny_dataset, tmp_path):
    config = load_config(None, [], model="pca")
    plain = train_run(config, tiny_dataset, tmp_path / "plain")
    assert not any(k.startswith("val_") for k in plain["figures"])
    scored = train_run(config, tiny_dataset, tmp_path / "scored", validate=lambda _, val: {"val_n": float(len(val))})
    assert scored["figures"]["val_n"] == scored["data"]["val"] > 0
