"""Progress inside one prediction: the network's forward passes, counted as they happen.

A long prediction (an nnU-Net ensemble on the CPU: minutes per image) is many forward passes
of one network: tiles x mirror flips x folds. :func:`count_forward_passes` counts them with a
forward hook, without touching the predictor, and hands ``(done, total)`` to a callback (the
segmentation node writes them for the command's progress line: :class:`bids_stroke.core.progress.
StepFile`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["StepCallback", "count_forward_passes"]

#: ``callback(done, total)``: forward passes done so far, and in all (``None``: unknown)
StepCallback = Callable[[int, "int | None"], None]


@contextlib.contextmanager
def count_forward_passes(module: Any, total: int | None,
                         callback: StepCallback | None) -> Iterator[None]:
    """Call ``callback(done, total)`` once before the first forward pass of ``module`` (a
    ``torch.nn.Module``) and after each one, while the block runs; nothing without a
    callback. A callback that fails never stops the prediction."""
    if callback is None:
        yield
        return
    done = 0

    def report(n: int) -> None:
        try:
            callback(n, total)
        except Exception:  # progress is a courtesy: never the reason a prediction fails
            pass

    def hook(*_: Any) -> None:
        nonlocal done
        done += 1
        report(done)

    handle = module.register_forward_hook(hook)
    try:
        report(0)
        yield
    finally:
        handle.remove()
