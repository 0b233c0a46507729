from ogan_pl.callbacks.work import EndOfRun, TimedWork
from ogan_pl.callbacks.checkpoint import AtomicCheckpointIO, GeneratorStepCheckpoint
from ogan_pl.callbacks.metrics import MetricsCallback
from ogan_pl.callbacks.images import ImageGrids
from ogan_pl.callbacks.progress import GeneratorProgressBar
from ogan_pl.callbacks.summary import TrainingSummary

__all__ = ["AtomicCheckpointIO", "EndOfRun", "GeneratorStepCheckpoint", "ImageGrids", "MetricsCallback",
           "GeneratorProgressBar", "TimedWork", "TrainingSummary"]
