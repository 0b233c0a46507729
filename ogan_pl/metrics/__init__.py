from ogan_pl.metrics.base import Metric, MetricContext, MetricSet
from ogan_pl.metrics.classifier_metrics import (
    FDClassifier,
    ISClassifier,
    KIDClassifier,
    PRDCClassifier,
    ReconClassifier,
    class_inception_score,
    frechet_distance,
    kernel_inception_distance,
)
from ogan_pl.metrics.encoder import (
    EncoderMetrics,
    encode_all,
    encoder_metrics,
    mean_correlation,
    reconstruction_error,
    shape_factor_probe,
)
from ogan_pl.metrics.factor_editing import FactorEditingMetrics
from ogan_pl.metrics.health import EncoderHealth
from ogan_pl.metrics.image_metrics import (
    FID,
    IMAGE_METRICS,
    IS,
    KID,
    PRDC,
    ImageMetrics,
    InceptionMetric,
    add_generated,
    add_real,
    fake_noise,
    prepare_real_stats,
)
from ogan_pl.metrics.inception import InceptionFeatures, find_inception_weights
from ogan_pl.metrics.inversion import EditingMetrics, InversionMetrics
from ogan_pl.metrics.path_length import PPL, PPLClassifier
from ogan_pl.metrics.perceptual import PERCEPTUAL, build_perceptual
from ogan_pl.metrics.real_stats import RealStats

__all__ = [
    "FID",
    "IMAGE_METRICS",
    "IS",
    "KID",
    "PERCEPTUAL",
    "PPL",
    "PRDC",
    "EditingMetrics",
    "EncoderHealth",
    "EncoderMetrics",
    "FDClassifier",
    "FactorEditingMetrics",
    "ISClassifier",
    "ImageMetrics",
    "InceptionFeatures",
    "InceptionMetric",
    "InversionMetrics",
    "KIDClassifier",
    "Metric",
    "MetricContext",
    "MetricSet",
    "PPLClassifier",
    "PRDCClassifier",
    "RealStats",
    "ReconClassifier",
    "add_generated",
    "add_real",
    "build_perceptual",
    "class_inception_score",
    "encode_all",
    "encoder_metrics",
    "fake_noise",
    "find_inception_weights",
    "frechet_distance",
    "kernel_inception_distance",
    "mean_correlation",
    "prepare_real_stats",
    "reconstruction_error",
    "shape_factor_probe",
]
