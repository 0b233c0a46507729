from ogan_pl.data.convert import to_model_range, to_uint8
from ogan_pl.data.datamodule import (
    CelebADataModule,
    CelebAHQDataModule,
    CIFAR10DataModule,
    FFHQDataModule,
    ImageDataModule,
    ImageFolderDataModule,
    LSUNDataModule,
    MNISTDataModule,
    ShapesDataModule,
    TorchvisionDataModule,
)
from ogan_pl.data.digits import DigitsDataModule

__all__ = [
    "CIFAR10DataModule",
    "CelebADataModule",
    "CelebAHQDataModule",
    "DigitsDataModule",
    "FFHQDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "LSUNDataModule",
    "MNISTDataModule",
    "ShapesDataModule",
    "TorchvisionDataModule",
    "to_model_range",
    "to_uint8",
]
