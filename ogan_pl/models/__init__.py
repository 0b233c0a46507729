from ogan_pl.models.dcgan import Encoder, Generator, SelfModulatedBatchNorm2d
from ogan_pl.models.head import DiscriminatorHead

__all__ = ["Encoder", "Generator", "SelfModulatedBatchNorm2d", "DiscriminatorHead"]
