from ogan_pl.callbacks.checkpoint import GeneratorStepCheckpoint
from ogan_pl.callbacks.encoder_watch import EncoderWatch
from ogan_pl.callbacks.images import ImageGrids
from ogan_pl.callbacks.metrics import MetricsCallback
from ogan_pl.callbacks.progress import GeneratorProgressBar
from ogan_pl.callbacks.summary import TrainingSummary
from ogan_pl.callbacks.work import EndOfRun, TimedWork
from ogan_pl.checkpoints import AtomicCheckpointIO  # noqa: F401  (its name in configs written before it moved)

__all__ = ["AtomicCheckpointIO", "EncoderWatch", "EndOfRun", "GeneratorStepCheckpoint", "ImageGrids", "MetricsCallback",
           "GeneratorProgressBar", "TimedWork", "TrainingSummary"]
