"""The entry points and what only they need: the CLI, train, evaluate, run directories, sweeps, exits."""
