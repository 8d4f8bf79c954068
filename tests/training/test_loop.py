"""The trainer's pieces in-process: the batch stream, balanced sampling and bf16 steps."""

import math

import numpy as np

from facegen.models.base import DepthData
from facegen.training.config import load_config
from facegen.training.loop import BatchStream, seeded_model, train_in_memory

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
