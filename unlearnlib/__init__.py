"""unlearnlib: a workbench for machine unlearning research.

Methods, the training engine, attacks and metrics behind the book. See
``unlearnlib.methods.available()`` for the registered methods and
``unlearnlib.studies.experiment.run_grid`` for one call from config to tidy results.

Same seed, same numbers: importing the package asks cuDNN and cuBLAS for
deterministic kernels (no effect on the CPU, a small cost on a GPU), because
non-deterministic convolution backward passes otherwise make two runs of one
seed differ on CUDA. It also sets torch's intra-op threads to ``$UNLEARNLIB_THREADS``
(default 1; :func:`unlearnlib.numerics.default_threads`), and the thread count is
part of every store key, since it changes CPU results.
"""

import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402

torch.backends.cudnn.deterministic = True
torch.backends.cudnn.benchmark = False

from .numerics import apply_thread_rule  # noqa: E402

# One intra-op thread per process unless UNLEARNLIB_THREADS says otherwise (see
# numerics.default_threads); the count is part of every store key (numerics.numerics).
# A bad value does not fail the import: numerics.check_threads raises it (the command
# line's first step), and so does every store key.
apply_thread_rule()

__version__ = "0.1.0"
