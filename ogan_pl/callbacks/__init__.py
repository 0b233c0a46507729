from ogan_pl.callbacks.checkpoint import GeneratorStepCheckpoint
from ogan_pl.callbacks.encoder_watch import EncoderWatch
from ogan_pl.callbacks.images import ImageGrids
from ogan_pl.callbacks.metrics import MetricsCallback
from ogan_pl.callbacks.progress import GeneratorProgressBar
from ogan_pl.callbacks.summary import TrainingSummary
from ogan_pl.callbacks.work import EndOfRun, TimedWork

__all__ = [
    "EncoderWatch",
    "EndOfRun",
    "GeneratorProgressBar",
    "GeneratorStepCheckpoint",
    "ImageGrids",
    "MetricsCallback",
    "TimedWork",
    "TrainingSummary",
]
