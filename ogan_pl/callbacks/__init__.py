from ogan_pl.callbacks.checkpoint import AtomicCheckpointIO, GeneratorStepCheckpoint
from ogan_pl.callbacks.fid import FIDCallback
from ogan_pl.callbacks.images import ImageGrids
from ogan_pl.callbacks.progress import GeneratorProgressBar

__all__ = ["AtomicCheckpointIO", "FIDCallback", "GeneratorStepCheckpoint", "ImageGrids", "GeneratorProgressBar"]
