"""unlearnlib: a workbench for machine unlearning research.

Methods, the training engine, attacks and metrics behind the book. See
``unlearnlib.methods.available()`` for the registered methods and
``unlearnlib.studies.experiment.run_grid`` for one call from config to tidy results.

Same seed, same numbers: importing the package asks cuDNN and cuBLAS for
deterministic kernels (no effect on the CPU, a small cost on a GPU), because
non-deterministic convolution backward passes otherwise make two runs of one
seed differ on CUDA.
"""

import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402

torch.backends.cudnn.deterministic = True
torch.backends.cudnn.benchmark = False

__version__ = "0.1.0"
