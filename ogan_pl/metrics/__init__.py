from ogan_pl.metrics.encoder import encode_all, mean_correlation, reconstruction_error, shape_factor_probe

__all__ = ["encode_all", "mean_correlation", "reconstruction_error", "shape_factor_probe"]
