"""Architectures of docs/method.md ("Reference architectures"): shapes, channel widths, BatchNorm settings, init, EMA."""

import math

import pytest
import torch

from ogan_pl.method.ema import EMA
from ogan_pl.method.head import DiscriminatorHead
from ogan_pl.models import Encoder, Generator, SelfModulatedBatchNorm2d


def small_width(resolution: int) -> int:
    return 4 * 2 ** (int(math.log2(resolution)) - 3)  # 4 channels in the first layer


@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
@pytest.mark.parametrize("variant", ["dcgan", "dcgan_sm"])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(resolution, variant, channels):
    kwargs = {
        "resolution": resolution,
        "channels": channels,
        "z_dim": 16,
        "bottom_channels": small_width(resolution),
        "kernel_size": 4 if variant == "dcgan_sm" else 5,
    }
    E = Encoder(**kwargs)
    G = Generator(**kwargs, self_modulated=variant == "dcgan_sm")
    z = torch.randn(2, 16)
    x = G(z)
    assert x.shape == (2, channels, resolution, resolution)
    assert x.abs().max() <= 1
    assert E(x).shape == (2, 16)


def test_reference_widths_at_128():
    E = Encoder(resolution=128)
    convs = [m for m in E.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1024]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in convs)
    bns = [m for m in E.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 4  # every conv but the first
    assert all(bn.momentum == 0.01 and bn.eps == 1e-3 for bn in bns)
    G = Generator(resolution=128)
    ups = [m.out_channels for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert G.fc.out_features == 4 * 4 * 1024 and ups == [512, 256, 128, 64, 3]


def test_init_is_normal_002():
    E = Encoder(resolution=64)
    w = torch.cat([m.weight.flatten() for m in E.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001


def test_self_modulation_depends_on_z():
    torch.manual_seed(0)
    sm = SelfModulatedBatchNorm2d(8, z_dim=4, eps=1e-3, momentum=0.01)
    torch.nn.init.normal_(sm.gamma[2].weight, 0, 1.0)
    h = torch.randn(6, 8, 4, 4)
    out1, out2 = sm(h, torch.randn(6, 4)), sm(h, torch.randn(6, 4))
    assert not torch.allclose(out1, out2)
    assert not sm.norm.affine


def test_heads():
    code = torch.randn(5, 7)
    torch.testing.assert_close(DiscriminatorHead("avg", 7)(code), code.mean(1))
    lin = DiscriminatorHead("linear", 7)
    torch.testing.assert_close(lin(code), code @ lin.linear.weight[0] + lin.linear.bias)
    with pytest.raises(ValueError):
        DiscriminatorHead("max", 7)


def test_ema_update_and_warmup():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    ema = EMA(net, decay=0.999)
    assert ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(10**6) == 0.999
    before = [p.clone() for p in ema.module.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net(torch.randn(4, 3))  # changes BN running stats
    ema.update(net, step=5)
    d = 6 / 15
    for b, e, p in zip(before, ema.module.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(e, d * b + (1 - d) * p)
    torch.testing.assert_close(ema.module[1].running_mean, net[1].running_mean)
    ema.train()
    assert not ema.module.training and not any(p.requires_grad for p in ema.parameters())


# --- model=resnet ---------------------------------------------------------------------------------


def resnet(**kwargs):
    from ogan_pl.models.resnet import ResNet

    return ResNet(**{"resolution": 32, "channels": 3, "z_dim": 16, "width": 4, **kwargs})


@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("variant", [{}, {"self_modulated": True, "e_norm": "batch", "spectral_norm": False}])
def test_resnet_shapes(resolution, channels, variant):
    arch = resnet(resolution=resolution, channels=channels, width=2, **variant)
    E, G = arch.encoder(), arch.generator()
    x = G(torch.randn(2, 16))
    assert x.shape == (2, channels, resolution, resolution)
    assert E(x).shape == (2, 16)


def test_resnet_widths_follow_biggan_at_128():
    arch = resnet(resolution=128, width=64)
    G, E = arch.generator(), arch.encoder()
    assert G.fc.out_features == 16 * 1024
    assert [b.conv1.out_channels for b in G.blocks] == [1024, 512, 256, 128, 64]
    assert [b.conv1.out_channels for b in E.blocks] == [64, 128, 256, 512, 1024]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in E.modules())  # e_norm=none (SNGAN)


def test_resnet_encoder_spectral_norm_bounds_every_layer():
    """After power iterations in training mode, each of E's weights has largest singular value 1;
    the raw weights underneath carry the Xavier init (sqrt(2) gain in the residual branches)."""
    torch.manual_seed(0)
    E = resnet().encoder()
    layers = [m for m in E.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 3 * 3 + 1  # three blocks of two convs and a shortcut, and the code layer
    for m in layers:
        raw = m.weight_orig.detach()
        fan_in, fan_out = raw[0].numel(), raw.shape[0] * raw[0, 0].numel()
        gain = math.sqrt(2) if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) else 1.0
        bound = gain * math.sqrt(6 / (fan_in + fan_out))
        assert raw.abs().max() <= bound and raw.abs().max() > 0.9 * bound  # xavier_uniform, not torch's default
    with torch.no_grad():
        for _ in range(200):  # one power iteration per training forward
            E(torch.randn(1, 3, 32, 32))
    E.eval()
    E(torch.randn(1, 3, 32, 32))
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.02)
    plain = resnet(spectral_norm=False).encoder()
    assert not any(hasattr(m, "weight_orig") for m in plain.modules())


def test_resnet_blocks_are_residual():
    """Zeroing a block's residual branch leaves exactly its (resampled) conv1x1 shortcut."""
    from torch.nn import functional as F

    from ogan_pl.models.resnet import DBlock, GBlock

    g = GBlock(4, 6, z_dim=3, self_modulated=False, bn_momentum=0.1, bn_eps=1e-5)
    torch.nn.init.zeros_(g.conv2.weight), torch.nn.init.zeros_(g.conv2.bias)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(g(x, torch.randn(2, 3)), g.shortcut(F.interpolate(x, scale_factor=2.0)))
    d = DBlock(4, 6, first=False, norm="none", bn_momentum=0.1, bn_eps=1e-5)
    torch.nn.init.zeros_(d.conv2.weight), torch.nn.init.zeros_(d.conv2.bias)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(d(x), F.avg_pool2d(d.shortcut(x), 2))


def test_resnet_mean_pooling_is_the_sum_over_the_4x4_positions_divided_by_16():
    """model.pooling: the code layer reads the sum of E's last features over positions (SNGAN) or their
    mean; with the same weights, the codes differ by exactly the factor 16 (before the bias)."""
    torch.manual_seed(0)
    summed = resnet(pooling="sum").encoder()
    averaged = resnet().encoder()
    averaged.load_state_dict(summed.state_dict())
    summed.eval(), averaged.eval()
    x = torch.randn(3, 3, 32, 32)
    bias = summed.fc.bias
    torch.testing.assert_close(summed(x) - bias, 16 * (averaged(x) - bias), rtol=1e-5, atol=1e-5)


def test_resnet_ema_state_dict_and_pickle():
    """The spectrally normalised E averages (EMA), round-trips through its state dict, and pickles
    (trainer.strategy=ddp_spawn pickles the module)."""
    import pickle

    torch.manual_seed(0)
    E = resnet().encoder()
    ema = EMA(E, 0.9)
    before = [p.clone() for p in ema.module.parameters()]
    with torch.no_grad():
        for p in E.parameters():
            p.add_(0.1)
    ema.update(E, step=10**6)
    for b, e, p in zip(before, ema.module.parameters(), E.parameters(), strict=True):
        torch.testing.assert_close(e, 0.9 * b + 0.1 * p)
    E2 = resnet().encoder()
    E2.load_state_dict(E.state_dict())
    E3 = pickle.loads(pickle.dumps(E))
    x = torch.randn(3, 3, 32, 32)
    E.eval(), E2.eval(), E3.eval()
    torch.testing.assert_close(E2(x), E(x))
    torch.testing.assert_close(E3(x), E(x))


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"resolution": 16}, "dataset.resolution=16"),
        ({"resolution": 48}, "dataset.resolution=48"),
        ({"width": 0}, "model.width=0"),
        ({"e_norm": "layer"}, "model.e_norm='layer'"),
        ({"pooling": "max"}, "model.pooling='max'"),
        ({"z_dim": 1}, "model.z_dim=1"),
    ],
)
def test_resnet_bad_arguments_are_one_line_errors(kwargs, key):
    """Built from a config (the registry: the constructor's declared ranges, then its own checks)."""
    from ogan_pl.registry.registries import ARCHITECTURES
    from ogan_pl.utils.errors import UserError

    node = {"_name_": "resnet", "resolution": 32, "channels": 3, "z_dim": 16, "width": 4, **kwargs}
    with pytest.raises(UserError, match=key.replace("[", r"\[")):
        ARCHITECTURES.build(node, "model")
