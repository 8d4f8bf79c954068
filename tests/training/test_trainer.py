"""The trainer as a user drives it: `facegen train` in a real process, killed, resumed, and under torchrun."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from facegen.training.checkpoint import checkpoints
from facegen.training.config import load_config
from facegen.training.loop import seeded_model

TRAIN = [sys.executable, "-m", "facegen.cli.main", "train", "--model", "gan2d"]
SMALL_GAN = ["model.channels=[8,16,32]", "model.discriminator_channels=8", "model.discriminator_layers=2",
             "threads=1", "eval_every=1000"]  # fmt: skip


def _command(data: Path, out: Path, *settings: str) -> list[str]:
    sets = [arg for s in (*SMALL_GAN, *settings) for arg in ("--set", s)]
    return [*TRAIN, "--data", str(data), "--out", str(out), *sets]


def _generator_weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "model" / "weights.pt", weights_only=True)["generator"]


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tiny_dataset, tmp_path):
    # the learning rate falls over the second half: a resumed run must pick it up at its step
    settings = ("steps=40", "batch_size=4", "checkpoint_every=5", "log_every=5", "lr_decay_start=0.5")
    _run(_command(tiny_dataset, tmp_path / "whole", *settings))

    killed = tmp_path / "killed"
    process = subprocess.Popen(_command(tiny_dataset, killed, *settings), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not checkpoints(killed) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    steps_done = [step for step, _ in checkpoints(killed)]
    assert steps_done and max(steps_done) < 40, f"the kill came too late to test anything: {steps_done}"
    assert not (killed / "run.json").exists()

    refused = subprocess.run(_command(tiny_dataset, killed, *settings), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--resume" in refused.stdout

    _run([*_command(tiny_dataset, killed, *settings), "--resume"])
    whole, resumed = _generator_weights(tmp_path / "whole"), _generator_weights(killed)
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), f"{name} differs after resume"
    record = json.loads((killed / "run.json").read_text())
    assert record["config"]["steps"] == 40 and record["data"]["hash"]
    assert any((killed / "tensorboard").iterdir())


def test_resume_refuses_another_config(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    _run(_command(tiny_dataset, run, "steps=2", "batch_size=2"))
    result = subprocess.run([*_command(tiny_dataset, run, "steps=4", "batch_size=2", "lr=1e-3"), "--resume"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 2 and "another config" in result.stdout


def test_two_process_ddp_on_cpu_matches_one_process_with_the_same_global_batch(tiny_dataset, tmp_path):
    settings = ("steps=4", "model.condition_dropout=0.0", "checkpoint_every=2")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = tmp_path / "ddp"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--module"]
    command = _command(tiny_dataset, ddp, *settings, "batch_size=2")
    _run([*launcher, *command[2:]], env=env)
    _run(_command(tiny_dataset, tmp_path / "single", *settings, "batch_size=4"), env=env)

    record = json.loads((ddp / "run.json").read_text())
    assert record["runtime"]["processes"] == 2
    assert [step for step, _ in checkpoints(ddp)] == [2, 4]
    # Same global batch, same seed: the updates agree up to float summation order (Adam turns the order
    # noise of near-zero gradients into sign noise, so elementwise tolerance alone would say little).
    start = seeded_model(load_config(None, [*SMALL_GAN, *settings])).generator.state_dict()
    ddp_weights, single = _generator_weights(ddp), _generator_weights(tmp_path / "single")
    update = sum(float((single[k] - start[k]).abs().sum()) for k in single)
    disagreement = sum(float((ddp_weights[k] - single[k]).abs().sum()) for k in single)
    assert update > 0 and disagreement < 0.01 * update, f"DDP differs by {disagreement / update:.2%} of the update"


@pytest.mark.parametrize("family", ["pca"])
def test_closed_form_families_train_through_the_same_command(tiny_dataset, tmp_path, family):
    run = tmp_path / family
    result = _run([*TRAIN[:-1], family, "--data", str(tiny_dataset), "--out", str(run)])
    assert "trained pca" in result.stdout
    record = json.loads((run / "run.json").read_text())
    assert record["figures"]["val_mae_mm"] > 0 and (run / "model" / "model.json").exists()
