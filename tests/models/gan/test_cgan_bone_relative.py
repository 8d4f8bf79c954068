"""The 2.5D GAN relative to the bone: whatever its generator answers, no face lies inside the bone."""

from contextlib import nullcontext
from dataclasses import replace

import numpy as np
import pytest
import torch

from facegen.models.gan.cgan import ConditionalGAN
from tests.models.gan.relief import AnyAnswer, assert_in_front_of_bone, load_as_saved_before_the_option, relief_heads

TINY = {"channels": (8, 16), "discriminator_channels": 8, "discriminator_layers": 2}


def _prepared(seed: int, *, relative_to_bone: bool = True, steps: int = 0) -> ConditionalGAN:
    """A tiny GAN with seeded random weights, prepared on relief heads and trained `steps` steps."""
    torch.manual_seed(seed)
    model = ConditionalGAN(**TINY, relative_to_bone=relative_to_bone)
    train = relief_heads(seed)
    model.prepare(train)
    batches, optimizers = model.training_set(train), model.optimizers(1e-3, (0.5, 0.999))
    for _ in range(steps):
        losses = model.training_step(model.networks(), optimizers, batches.batch(np.arange(len(train)), "cpu"),
                                     nullcontext)  # fmt: skip
        assert np.isfinite([losses["l1_mm"], losses["loss_g"]]).all()
        assert ("l1_log_tissue" in losses) == relative_to_bone  # the L1 is on log tissue depth
    return model


def _faces(model: ConditionalGAN, heads) -> np.ndarray:
    return np.stack([r.face_depth_mm for r in model.reconstruct_many(heads)])


@pytest.mark.parametrize("seed", range(4))
def test_a_random_or_one_step_generator_puts_no_skin_inside_bone(seed):
    model = _prepared(seed, steps=seed % 2)
    heads = relief_heads(100 + seed)
    assert_in_front_of_bone(_faces(model, heads), heads)
    one = model.reconstruct(heads.skull_depth[0], heads.skull_mask[0], heads.subjects[0])
    np.testing.assert_allclose(one.face_depth_mm[0], _faces(model, heads)[0, 0], atol=1e-3)  # batched = one by one


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e2, 1e6])
def test_whatever_the_generator_answers_the_face_stays_in_front_of_the_bone(scale):
    model = _prepared(0)
    model.generator = AnyAnswer(scale, seed=int(np.log10(scale)) + 10)
    heads = relief_heads(7)
    assert_in_front_of_bone(_faces(model, heads), heads)


def test_a_saved_relative_model_loads_as_relative_and_gives_the_same_faces(tmp_path):
    model = _prepared(1, steps=1)
    model.save(tmp_path / "m")
    again = ConditionalGAN.load(tmp_path / "m")
    assert again.relative_to_bone and again.options == model.options
    heads = relief_heads(5)
    np.testing.assert_array_equal(_faces(model, heads), _faces(again, heads))


def test_a_model_saved_before_the_option_loads_as_absolute(tmp_path):
    model = _prepared(2, relative_to_bone=False, steps=1)
    old = load_as_saved_before_the_option(model, tmp_path / "m")
    heads = relief_heads(5)
    np.testing.assert_array_equal(_faces(model, heads), _faces(old, heads))


def test_relative_to_the_bone_needs_the_depth_maps_view():
    heads = relief_heads(0)
    with pytest.raises(ValueError, match="need the depth maps' view .* relative_to_bone=False"):
        ConditionalGAN(**TINY).prepare(replace(heads, view=None))
