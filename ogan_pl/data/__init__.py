from ogan_pl.data.convert import to_model_range, to_uint8
from ogan_pl.data.datamodule import (CelebADataModule, CelebAHQDataModule, FFHQDataModule, ImageDataModule,
                                     ImageFolderDataModule, LSUNDataModule, ShapesDataModule, TorchvisionDataModule)

__all__ = ["CelebADataModule", "CelebAHQDataModule", "FFHQDataModule", "ImageDataModule", "ImageFolderDataModule",
           "LSUNDataModule", "ShapesDataModule", "TorchvisionDataModule", "to_model_range", "to_uint8"]
