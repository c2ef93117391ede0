"""How every command that writes outputs ends: one line on stderr and its exit code.

:func:`run_guarded` runs a command's work (the BIDS-App levels, ``export``, ``score``) with
SIGTERM/SIGINT handled (:mod:`bids_stroke.core.interrupt`) and turns what stops it into the
documented exit code (README "Exit codes"): a :class:`~bids_stroke.cli.config.CLIError` into
its own, a link planted in a state folder into 73, an interruption into 143/130 (commits
finish first), a failed write (full disk, quota, read-only folder...) into 73. Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from bids_stroke.cli import parser as P
from bids_stroke.cli.config import CLIError

__all__ = ["interrupted_code", "run_guarded", "write_failure_line"]


def interrupted_code(exc: BaseException) -> int:
    """Print the one line of an interruption; its exit code (143 SIGTERM, 130 SIGINT)."""
    from bids_stroke.core import interrupt

    signum = getattr(exc, "signum", signal.SIGINT)
    interrupt.announce(signum)
    return P.EXIT_SIGTERM if signum == signal.SIGTERM else P.EXIT_SIGINT


def write_failure_line(exc: OSError) -> str | None:
    """The one line for a failed write anywhere (full disk, quota, read-only, permission,
    file-size limit), else ``None``."""
    from bids_stroke.core.write_errors import environment_error

    failure = environment_error(exc)
    return None if failure is None else failure.message([], "the output folder")


def run_guarded(work: Callable[[], int], *,
                write_failure: Callable[[OSError], str | None] = write_failure_line) -> int:
    """``work()`` with signals handled; what stops it becomes one line and an exit code.

    ``write_failure`` names a failed write behind an :class:`OSError` (``None``: not a failed
    write of this command, the error propagates).
    """
    from bids_stroke.core import interrupt
    from bids_stroke.outputs.state_files import UnsafeStateError

    with interrupt.handled():
        try:
            return work()
        except CLIError as exc:
            print(f"bids_stroke: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except UnsafeStateError as exc:
            print(f"bids_stroke: error: {exc}", file=sys.stderr)
            return P.EXIT_CANT_CREATE
        except (KeyboardInterrupt, interrupt.Interrupted) as exc:
            return interrupted_code(exc)
        except OSError as exc:
            line = write_failure(exc)
            if line is None:
                raise
            print(f"bids_stroke: error: {line}", file=sys.stderr)
            return P.EXIT_CANT_CREATE
