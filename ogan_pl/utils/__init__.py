"""Machinery that knows nothing of O-GAN: errors, atomic files, console, distributed helpers, seeds,
stop signals, nested configs."""
