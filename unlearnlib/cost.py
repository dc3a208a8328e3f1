"""A load-independent cost: per-sample gradient evaluations.

Run-time efficiency (RTE, Deep Unlearn) is wall time, so on a shared machine it is
noise (SRL's RTE was 0.46 in one loaded build against 5.25 on an idle machine).
Every place where a method takes gradients through the model counts the rows it
differentiates (:func:`add`): the shared loop, per-sample gradients (Fisher, IU),
gradient accumulations (MSG, SalUn's saliency) and single-gradient steps.
Forward-only passes (teachers, model selection) are not counted. Retraining costs
E_train * |D_r| such evaluations, so ``cost_rte`` = that / the method's count is RTE
in gradient evaluations (:func:`unlearnlib.studies.experiment.run_method`).

Part of the engine because the shared loop (:mod:`unlearnlib.loop`) counts here; moved
from ``unlearnlib.methods._cost``, which re-exports it (the same counter: one list of
open blocks).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

_active: list[list[int]] = []


def add(rows: int) -> None:
    """Count ``rows`` per-sample gradient evaluations in every open :func:`counting` block."""
    for box in _active:
        box[0] += int(rows)


@contextlib.contextmanager
def counting() -> Iterator[list[int]]:
    """``with counting() as c: ...``; afterwards ``c[0]`` is the count inside the block."""
    box = [0]
    _active.append(box)
    try:
        yield box
    finally:
        _active.remove(box)
