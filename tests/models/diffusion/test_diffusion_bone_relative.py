"""The diffusion model relative to the bone: whatever its denoiser answers, no sampled face lies inside the bone."""

import json
from contextlib import nullcontext
from dataclasses import replace

import numpy as np
import pytest
import torch

from facegen.models.diffusion.conditional import ConditionalDiffusion
from tests.models.gan.relief import AnyAnswer, assert_in_front_of_bone, load_as_saved_before_the_option, relief_heads

TINY = {"channels": (8, 16), "sampling_steps": 3, "samples": 3}


def _prepared(seed: int, *, relative_to_bone: bool = True, steps: int = 0) -> ConditionalDiffusion:
    """A tiny diffusion model with seeded random weights, prepared on relief heads and trained `steps` steps."""
    torch.manual_seed(seed)
    model = ConditionalDiffusion(**TINY, relative_to_bone=relative_to_bone)
    train = relief_heads(seed)
    model.prepare(train)
    batches, optimizers = model.training_set(train), model.optimizers(1e-3, (0.9, 0.999))
    for _ in range(steps):
        losses = model.training_step(model.networks(), optimizers, batches.batch(np.arange(len(train)), "cpu"),
                                     nullcontext)  # fmt: skip
        assert np.isfinite(losses["loss_v"])
    return model


def _samples(model: ConditionalDiffusion, heads, seed: int = 0) -> np.ndarray:
    """(N, K, H, W) the model's sampled faces."""
    return np.stack([r.face_depth_mm for r in model.reconstruct_many(heads, seed=seed, n_samples=3)])


@pytest.mark.parametrize("seed", range(4))
def test_no_sample_of_a_random_or_one_step_denoiser_puts_skin_inside_bone(seed):
    model = _prepared(seed, steps=seed % 2)
    heads = relief_heads(100 + seed)
    samples = _samples(model, heads, seed=seed)
    assert_in_front_of_bone(samples, heads)
    assert_in_front_of_bone(model.prior(heads.skull_depth, heads.skull_mask)[:, None], heads)
    rec = model.reconstruct(heads.skull_depth[0], heads.skull_mask[0], heads.subjects[0], seed=seed, n_samples=3)
    np.testing.assert_allclose(rec.face_depth_mm, samples[0], atol=1e-3)  # batched = one by one
    np.testing.assert_array_equal(rec.sd_mm, rec.face_depth_mm.std(axis=0))  # the spread of the final faces
    assert rec.sd_mm[rec.mask].max() > 0  # the samples differ (an untrained one may meet the range at a pixel)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e2, 1e6])
def test_whatever_the_denoiser_answers_the_samples_stay_in_front_of_the_bone(scale):
    model = _prepared(0)
    model.denoiser = AnyAnswer(scale, seed=int(np.log10(scale)) + 10)
    heads = relief_heads(7)
    assert_in_front_of_bone(_samples(model, heads), heads)


def test_a_saved_relative_model_loads_as_relative_and_gives_the_same_samples(tmp_path):
    model = _prepared(1, steps=1)
    model.save(tmp_path / "m")
    again = ConditionalDiffusion.load(tmp_path / "m")
    assert again.relative_to_bone and again.options == model.options
    heads = relief_heads(5)
    np.testing.assert_array_equal(_samples(model, heads, seed=2), _samples(again, heads, seed=2))


def test_a_model_saved_before_the_option_loads_as_absolute(tmp_path):
    model = _prepared(2, relative_to_bone=False, steps=1)
    old = load_as_saved_before_the_option(model, tmp_path / "m")
    assert "spread_mm" in json.loads((tmp_path / "m" / "model.json").read_text())
    heads = relief_heads(5)
    np.testing.assert_array_equal(_samples(model, heads, seed=2), _samples(old, heads, seed=2))


def test_relative_to_the_bone_needs_the_depth_maps_view():
    with pytest.raises(ValueError, match="need the depth maps' view .* relative_to_bone=False"):
        ConditionalDiffusion(**TINY).prepare(replace(relief_heads(0), view=None))
