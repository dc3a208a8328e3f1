"""unlearnlib: a workbench for machine unlearning research.

Methods, the training engine, attacks and metrics behind the book. See
``unlearnlib.methods.available()`` for the registered methods and
``unlearnlib.experiment.run_grid`` for one call from config to tidy results.
"""

__version__ = "0.1.0"
