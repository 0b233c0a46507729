"""Datasets: the built-in shapes and image folders, with bad files."""

import numpy as np
import pytest
import torch

from ogan_pl.data import ShapesDataModule, to_model_range, to_uint8
from ogan_pl.data.shapes import FACTORS, ShapesDataset, render, sample_factors
from ogan_pl.utils.errors import UserError


def test_shapes_deterministic_per_index_and_seed():
    small, big = ShapesDataset(10, seed=3), ShapesDataset(300, seed=3)
    assert torch.equal(small.images, big.images[:10]) and torch.equal(small.factors, big.factors[:10])
    other = ShapesDataset(10, seed=4)
    assert not torch.equal(small.images, other.images)
    holdout = ShapesDataset(10, seed=3, split="holdout")
    assert not torch.equal(holdout.factors, small.factors)


def test_shapes_items_carry_factors_and_render_them():
    ds = ShapesDataset(64, resolution=32)
    item = ds[0]
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 32, 32)
    assert item["factors"].shape == (len(FACTORS),)
    f = ds.factors.numpy()
    assert set(np.unique(f[:, 0])) <= {0.0, 1.0, 2.0}
    # the shape sits where its factors say: the centroid of lit pixels matches (x, y)
    img = ds.images.float().sum(1)
    coords = (torch.arange(32) + 0.5) / 32 * 2 - 1
    mass = img.sum((1, 2))
    cx = (img.sum(1) * coords).sum(1) / mass
    cy = (img.sum(2) * coords).sum(1) / mass
    np.testing.assert_allclose(cx.numpy(), f[:, 1], atol=0.08)
    np.testing.assert_allclose(cy.numpy(), f[:, 2], atol=0.08)


def test_shapes_scale_and_hue_show_in_pixels():
    f = sample_factors(2, 0)
    f[:, 0] = 0  # circles
    f[:, 1:3] = 0
    f[0, 3], f[1, 3] = 0.3, 0.6
    f[:, 5] = 0.0  # red
    img = render(f, 64)
    area = (img.max(1) > 128).sum((1, 2))
    assert area[1] / area[0] == pytest.approx(4, rel=0.1)
    assert img[0, 0].max() == 255 and img[0, 1].max() < img[0, 0].max()


def test_shapes_grayscale():
    assert ShapesDataset(4, channels=1).images.shape == (4, 1, 32, 32)


def test_pixel_conversions():
    u = torch.tensor([0, 255, 128], dtype=torch.uint8)
    torch.testing.assert_close(to_model_range(u), torch.tensor([-1.0, 1.0, 128 / 127.5 - 1]))
    f = torch.tensor([-1.0, 1.0, -3.0, 2.0, 0.0, 0.999 * 2 / 255 - 1])
    assert to_uint8(f).tolist() == [0, 255, 0, 255, 128, 1]  # rounds, clamps


def test_shapes_datamodule_batches(tmp_path):
    dm = ShapesDataModule(size=64, resolution=32, batch_size=8, holdout_size=16, batches_per_step=2)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (16, 3, 32, 32) and batch["image"].dtype == torch.uint8
    batch = dm.on_after_batch_transfer(batch, 0)
    assert batch["image"].dtype == torch.float32 and batch["image"].min() >= -1
    held = dm.holdout_batch(4)
    assert held["image"].shape == (4, 3, 32, 32) and torch.equal(held["image"], dm.holdout_batch(4)["image"])


def test_too_few_images_is_a_clear_error():
    dm = ShapesDataModule(size=10, resolution=32, batch_size=16)
    with pytest.raises(UserError, match="fewer than one step"):
        dm.setup()
