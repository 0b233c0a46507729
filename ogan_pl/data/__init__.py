from ogan_pl.data.convert import to_model_range, to_uint8
from ogan_pl.data.datamodule import ImageDataModule, ImageFolderDataModule, ShapesDataModule

__all__ = ["ImageDataModule", "ImageFolderDataModule", "ShapesDataModule", "to_model_range", "to_uint8"]
