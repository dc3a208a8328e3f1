"""A load-independent cost: per-sample gradient evaluations (re-exported).

The counter lives in the engine, :mod:`unlearnlib.cost`, because the shared loop
(:mod:`unlearnlib.loop`) counts there; the methods keep ``_cost.add`` and the studies
``_cost.counting`` through this module. Same functions, so one counter. Before, the counter
itself was defined here.
"""

from ..cost import add, counting

__all__ = ["add", "counting"]
