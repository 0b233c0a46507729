from ogan_pl.models.architecture import Architecture
from ogan_pl.models.dcgan import DCGAN, Encoder, Generator, SelfModulatedBatchNorm2d
from ogan_pl.models.resnet import ResNet

__all__ = ["DCGAN", "Architecture", "Encoder", "Generator", "ResNet", "SelfModulatedBatchNorm2d"]
