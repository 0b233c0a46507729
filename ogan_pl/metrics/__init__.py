from ogan_pl.metrics.encoder import (encode_all, encoder_metrics, mean_correlation, reconstruction_error,
                                     shape_factor_probe)
from ogan_pl.metrics.image_metrics import (IMAGE_METRICS, ImageMetrics, add_generated, add_real, fake_noise,
                                           prepare_real_stats)
from ogan_pl.metrics.inception import InceptionFeatures, find_inception_weights
from ogan_pl.metrics.real_stats import RealStats

__all__ = ["IMAGE_METRICS", "ImageMetrics", "InceptionFeatures", "RealStats", "add_generated", "add_real",
           "encode_all", "encoder_metrics", "fake_noise", "find_inception_weights", "mean_correlation",
           "prepare_real_stats", "reconstruction_error", "shape_factor_probe"]
