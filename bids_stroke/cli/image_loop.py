"""The per-image loop of every command that commits images: participant, export and score.

One output folder (the commit root: ``OUT`` or the export's ``OUT/conditions``) holds one
commit per input image, keyed ``sub-X[_ses-Y][_acq-..][_run-..]``. Every command writes them
the same way::

    with ImageLoop(root, keys, run=run_uuid, wait=lock_wait_s, busy=...) as images:
        images.work_each(export_one, errors=(ExportError, CommitError), prefix="...")
    return images.exit_code(inputs=..., gaps=...)

1. **lock**: each image's lock (:func:`bids_stroke.outputs.commit.lock_path`), or the image is left
   out: *busy* when another live run holds it (exit 75 unless ``--lock-wait``), *refused*
   (exit 73) when its lock file is a link (:mod:`bids_stroke.outputs.state_files`); the whole run is
   refused (exit 73) when a state folder is a link;
2. **recover**: an interrupted commit of a locked image is finished; a journal that fails its
   checks is quarantined and the image refused (exit 65), nothing it lists touched; an
   unreadable journal leaves the image out as busy;
3. **clean**: staging folders no live run owns are removed;
4. **work and commit**: per image in its own temporary folder (:meth:`ImageLoop.work_each`),
   or all at once (the participant level's graph: :meth:`ImageLoop.finished`); an image whose
   work fails is reported and the others go on;
5. **report**: :meth:`ImageLoop.exit_code`, failures first.

The locks are released when the ``with`` block ends. :func:`dataset_locked` is the lock of the
folder's dataset-level files.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

from bids_stroke.cli import parser as P
from bids_stroke.cli.config import CLIError, cannot_write

__all__ = ["ImageLoop", "dataset_locked"]

LOGGER = logging.getLogger("bids_stroke")


class ImageLoop:
    """The images of one commit root this run holds (a context manager: the locks).

    ``busy``: what the busy line says another run does with an image (``"another run is
    writing it"``). After entering: :attr:`locked` (in the order of ``keys``), :attr:`busy`,
    :attr:`refused` (``{key: exit code}``); after the work: :attr:`failed`, :attr:`done`.
    """

    def __init__(self, root: Path, keys: Sequence[str], *, run: str, wait: float,
                 busy: str) -> None:
        self.root = Path(root)
        self.keys = list(keys)
        self.run = run
        self.wait = wait
        self.busy_reason = busy
        self.locked: list[str] = []
        self.busy: list[str] = []
        self.refused: dict[str, int] = {}
        self.failed: list[str] = []
        self._stack = ExitStack()

    def __enter__(self) -> ImageLoop:
        try:
            self._lock_all()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    # ------------------------------------------------------------------ lock, recover, clean
    def _lock_all(self) -> None:
        from bids_stroke.outputs.commit import check_state, lock_path, remove_stale_staging
        from bids_stroke.outputs.locks import is_locked

        check_state(self.root)  # a state folder that is a link: the whole run is refused (73)
        for key in self.keys:
            if self._lock(key) and self._recover(key):
                self.locked.append(key)
        held = set(self.locked)  # ours now: their staging folders are stale too
        remove_stale_staging(self.root,
                             lambda k: k in held or not is_locked(lock_path(self.root, k)))

    def _lock(self, key: str) -> bool:
        from bids_stroke.outputs.commit import lock_path
        from bids_stroke.outputs.locks import FileLock, LockBusyError
        from bids_stroke.outputs.state_files import UnsafeStateError

        lock = FileLock(lock_path(self.root, key), run=self.run)
        try:
            lock.acquire(timeout=self.wait)
        except LockBusyError as exc:
            _error(f"{key}: locked by {exc.holder}: {self.busy_reason}; wait for it (or "
                   "--lock-wait SECONDS)")
            self.busy.append(key)
            return False
        except UnsafeStateError as exc:  # e.g. a link planted in place of the lock file
            _error(f"{key}: {exc}")
            self.refused[key] = P.EXIT_CANT_CREATE
            return False
        self._stack.callback(lock.release)
        return True

    def _recover(self, key: str) -> bool:
        from bids_stroke.outputs.commit import CommitError, JournalRejected, recover

        try:
            if recover(self.root, key):
                LOGGER.warning("%s: finished a commit interrupted earlier", key)
        except JournalRejected as exc:  # quarantined: nothing moved or deleted
            _error(str(exc))
            self.refused[key] = P.EXIT_BAD_DATA
            return False
        except CommitError as exc:  # an unreadable journal: left for a later run
            _error(str(exc))
            self.busy.append(key)
            return False
        return True

    # ------------------------------------------------------------------ work, commit
    def work_each(self, work: Callable[[str, Path], None], *,
                  errors: tuple[type[Exception], ...], prefix: str) -> None:
        """``work(key, folder)`` for each locked image, in a temporary folder removed after;
        one of ``errors`` fails that image (one line) and the loop goes on; a failed write
        stops the run (exit 73)."""
        for key in self.locked:
            folder = Path(tempfile.mkdtemp(prefix=prefix))
            try:
                work(key, folder)
            except errors as exc:
                _error(f"{key}: {exc}")
                self.failed.append(key)
            except OSError as exc:
                raise cannot_write(self.root, exc) from exc
            finally:
                shutil.rmtree(folder, ignore_errors=True)

    def finished(self, failed: Sequence[str]) -> None:
        """Record the images whose work, done for all at once, did not commit."""
        self.failed.extend(failed)

    @property
    def done(self) -> list[str]:
        """The locked images whose work committed."""
        failed = set(self.failed)
        return [k for k in self.locked if k not in failed]

    # ------------------------------------------------------------------ report
    def exit_code(self, *, inputs: int = P.EXIT_OK, gaps: int = P.EXIT_OK) -> int:
        """The run's exit code, the most serious first: an image whose work failed (1), then
        ``inputs`` (the command's own refusals before the loop, e.g. 65 for inputs that
        failed their checks), the images refused for their state in the folder (65 for a
        quarantined journal before 73 for a planted link), busy images (75), then ``gaps``
        (e.g. 66: predictions missing)."""
        if self.failed:
            return P.EXIT_FAILURE
        if inputs:
            return inputs
        if self.refused:
            return min(self.refused.values())
        if self.busy:
            return P.EXIT_TEMPFAIL
        return gaps


@contextlib.contextmanager
def dataset_locked(root: Path, run: str, what: str, *, wait: float = 600.0
                   ) -> Iterator[None]:
    """The block holds the lock of ``root``'s dataset-level files (waiting up to ``wait`` s);
    ``what``: what another run holding it is writing (exit 75). A state folder that is a link
    is refused (exit 73) before anything is written; a failed write in the block is one line,
    exit 73."""
    from bids_stroke.outputs.commit import check_state, state_dir
    from bids_stroke.outputs.locks import LockBusyError, locked

    try:
        check_state(root)
        with locked(state_dir(root) / "locks" / "dataset.lock", timeout=wait, run=run):
            yield
    except LockBusyError as exc:
        raise CLIError(f"{exc}; another run is writing {what}", P.EXIT_TEMPFAIL) from exc
    except OSError as exc:
        raise cannot_write(root, exc) from exc


def _error(line: str) -> None:
    print(f"bids_stroke: error: {line}", file=sys.stderr)
