"""Commands besides training and evaluation (console scripts in pyproject.toml): benchmarks, the
parts listing, the sweep summary, the classifier of the classifier metrics."""
