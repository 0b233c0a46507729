"""The errors a user can fix. Entry points turn them into one line and exit code 2 (ogan_pl.run.exits)."""


class UserError(Exception):
    """Bad input the user can fix (config value, path, data). The message says what and how."""


class TrainingDiverged(UserError):
    """A loss became NaN or infinite: training stops (one line) without checkpointing the diverged model."""
