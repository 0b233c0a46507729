"""Architectures of OGAN.md: shapes, channel widths, BatchNorm settings, init, EMA."""
import math

import pytest
import torch

from ogan_pl.ema import EMA
from ogan_pl.models import DiscriminatorHead, Encoder, Generator, SelfModulatedBatchNorm2d


def small_width(resolution: int) -> int:
    return 4 * 2 ** (int(math.log2(resolution)) - 3)  # 4 channels in the first layer


@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
@pytest.mark.parametrize("variant", ["dcgan", "dcgan_sm"])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(resolution, variant, channels):
    kwargs = dict(resolution=resolution, channels=channels, z_dim=16, bottom_channels=small_width(resolution),
                  kernel_size=4 if variant == "dcgan_sm" else 5)
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
    for b, e, p in zip(before, ema.module.parameters(), net.parameters()):
        torch.testing.assert_close(e, d * b + (1 - d) * p)
    torch.testing.assert_close(ema.module[1].running_mean, net[1].running_mean)
    ema.train()
    assert not ema.module.training and not any(p.requires_grad for p in ema.parameters())
