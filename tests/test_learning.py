"""A learning test that can fail: a short CPU training on shapes must make E an encoder of G and of the data."""
import pytest
import pytorch_lightning as pl
import torch

from ogan_pl import OGAN
from ogan_pl.data import ShapesDataModule, to_model_range
from ogan_pl.data.shapes import ShapesDataset
from ogan_pl.metrics import encode_all, mean_correlation, reconstruction_error, shape_factor_probe
from tests.conftest import tiny_config

STEPS = 1500


def encoder_scores(model: OGAN) -> dict[str, float]:
    fit_set = ShapesDataset(2000, resolution=32, seed=42, split="train")
    test_set = ShapesDataset(1000, resolution=32, seed=42, split="holdout")
    test_images = to_model_range(test_set.images)
    codes_fit = encode_all(model, to_model_range(fit_set.images))
    scores = shape_factor_probe(codes_fit, fit_set.factors, encode_all(model, test_images), test_set.factors)
    scores["rho"] = mean_correlation(model, n=1024)
    scores.update(reconstruction_error(model, test_images[:512]))
    return scores


@pytest.mark.slow
def test_training_makes_e_an_encoder_of_g_and_of_the_data():
    """1500 generator iterations, batch 64, paper's optimizer and loss, about 80 s on a 2-core CPU.

    The code is 8-dimensional, close to the data's handful of factors: with a wide code, random
    conv features of the untrained E already give linear probes of position and hue an R^2 of
    0.9 (measured at z_dim 32 and 128), so a probe would measure the probe's capacity, not E.
    Measured (untrained -> trained):
        rho(z, E(G(z)))               -0.00 -> 0.95
        probe R^2 x / y / hue          0.60 / 0.55 / 0.57 -> 0.86 / 0.90 / 0.80
        probe R^2 scale, shape acc.    0.19, 0.52 -> 0.26, 0.55   (weak either way; not asserted)
        recon MSE own / other image    1.00 -> 0.25
        recon PSNR, SSIM               6.5 dB, 0.06 -> 15.7 dB, 0.63
    """
    cfg = tiny_config(**{"model.bottom_channels": 128, "model.z_dim": 8, "dataset.batch_size": 64,
                         "train.steps": STEPS})
    torch.manual_seed(0)
    untrained = encoder_scores(OGAN(cfg))
    torch.manual_seed(0)
    model = OGAN(cfg)
    data = ShapesDataModule(size=10000, resolution=32, batch_size=64, holdout_size=64, seed=42)
    trainer = pl.Trainer(accelerator="cpu", max_steps=2 * STEPS, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=data)
    trained = encoder_scores(model)
    print(f"untrained: {untrained}\ntrained:   {trained}")
    assert abs(untrained["rho"]) < 0.1 and trained["rho"] > 0.8
    for factor in ("x", "y", "hue"):
        assert trained[f"probe/{factor}_r2"] > untrained[f"probe/{factor}_r2"] + 0.15, factor
    assert untrained["recon/specificity_ratio"] > 0.9 and trained["recon/specificity_ratio"] < 0.5
    assert trained["recon/psnr"] > untrained["recon/psnr"] + 5 and trained["recon/ssim"] > untrained["recon/ssim"] + 0.3
