"""What a local Dask worker needs before its first unit, imported once by the fork server.

:class:`~unlearnlib.studies.executors.DaskExecutor` starts its local workers from a
multiprocessing fork server (a single-threaded process, so forking it is safe) that has
imported this module. Each worker is then a fork of a process that has torch, unlearnlib's
experiment code and scikit-learn loaded, instead of a fresh interpreter that imports them
when its first task arrives (about 1.1 s on the project's 2-core machine, per worker) and
pays the first-call costs inside its first unit: torch.optim imports ``torch._dynamo`` at
an optimizer's first step (about 1 s, 870 modules), and the population MIA imports
scikit-learn. Only imports run here, never a tensor operation, so no thread pool exists
before the fork.
"""

from __future__ import annotations

import sklearn.linear_model  # noqa: F401  (the population MIA)
import sklearn.metrics  # noqa: F401
import sklearn.model_selection  # noqa: F401
import torch  # noqa: F401
import torch._dynamo  # noqa: F401  (imported by torch.optim at the first optimizer step)

from . import experiment  # noqa: F401  (methods, training, evaluation, the store)
