"""User-facing errors: one line on stderr and exit code 2, never a traceback."""
import functools
import sys


class UserError(Exception):
    """Bad input the user can fix (config value, path, data). The message says what and how."""


def report_user_errors(fn):
    """Wrap an entry point so a UserError prints `error: ...` and exits with code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)

    return wrapper
