"""The one loop shared by every loss-based unlearning method (re-exported).

The loop lives in the engine, :mod:`unlearnlib.loop` (issue 35: the relearning attack in
evaluation fine-tunes with it, and evaluation imports nothing from the methods); this
module keeps the names the method modules import (``from ._loop import ...``). Before,
the loop itself was defined here. A method whose loss is data (an :class:`Objective`,
registered with it) unlearns with :func:`unlearn_by`.
"""

from ..loop import (
    BN_MODES,
    DRIVERS,
    Batch,
    LoopConfig,
    LoopLog,
    LossFn,
    Objective,
    Outputs,
    run_loop,
    run_objective,
)

__all__ = ["BN_MODES", "DRIVERS", "Batch", "LoopConfig", "LoopLog", "LossFn", "Objective", "Outputs",
           "run_loop", "run_objective", "unlearn_by"]


def unlearn_by(objective: Objective, model, data, hp: dict):
    """A loss-driven method's whole ``unlearn``: :func:`run_objective` on ``data`` (an
    :class:`~unlearnlib.methods.UnlearnData`) with the method's hyperparameters ``hp``,
    under its compute budget; returns the model."""
    run_objective(model, data.retain, data.forget, objective, hp, data.seed,
                  num_classes=data.num_classes, max_sample_grads=data.max_sample_grads)
    return model
