import pytest
import torch
from monai.networks.nets import PatchDiscriminator

from facegen.models.networks.unet import ConditionalUNet


@pytest.mark.parametrize(("dims", "size"), [(2, (32, 48)), (3, (16, 16, 8))])
def test_the_same_network_code_runs_in_2d_and_3d(dims, size):
    torch.manual_seed(0)
    net = ConditionalUNet(dims, 2, 1, channels=(8, 16, 32))
    x = torch.randn(2, 2, *size)
    out = net(x, torch.zeros(2, 3))
    assert out.shape == (2, 1, *size)
    logits = PatchDiscriminator(spatial_dims=dims, channels=8, in_channels=3, num_layers_d=2, norm="INSTANCE")(
        torch.randn(2, 3, *[2 * s for s in size])
    )[-1]
    assert logits.dim() == dims + 2


def test_metadata_modulates_the_output_once_film_has_learned():
    torch.manual_seed(0)
    net = ConditionalUNet(2, 2, 1, channels=(8, 16))
    x = torch.randn(1, 2, 16, 16)
    lean, heavy = torch.tensor([[1.0, 0.0, -1.5]]), torch.tensor([[1.0, 0.0, 2.0]])
    assert torch.equal(net(x, lean), net(x, heavy)), "FiLM starts as the identity"
    for p in net.parameters():
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.1)
    assert not torch.allclose(net(x, lean), net(x, heavy))


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = ConditionalUNet(3, 2, 1, channels=(4, 8))
    lean = ConditionalUNet(3, 2, 1, channels=(4, 8), activation_checkpointing=True)
    lean.load_state_dict(plain.state_dict())
    x, c = torch.randn(1, 2, 8, 8, 8), torch.randn(1, 3)
    plain(x, c).square().sum().backward()
    lean(x, c).square().sum().backward()
    for a, b in zip(plain.parameters(), lean.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad)


def test_sizes_the_network_cannot_halve_are_refused():
    with pytest.raises(ValueError, match="not a multiple of 4"):
        ConditionalUNet(2, 2, 1, channels=(4, 8, 16))(torch.zeros(1, 2, 30, 32), torch.zeros(1, 3))
