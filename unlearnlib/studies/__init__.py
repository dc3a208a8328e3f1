"""Studies: what combines the engine, the methods and the evaluation.

- :mod:`.experiment`: grids of methods x seeds -> tidy result rows (``run_grid``);
- :mod:`.hpo`: Deep Unlearn's Optuna tuning protocol;
- :mod:`.fraction_study`: nabla-tau's forget fractions;
- :mod:`.unrolling`: Unrolling SGD's run-and-replay pairs;
- :mod:`.tables`: tidy frames as ``mean ± std`` tables.

Submodules are imported where used (Optuna, pandas and scikit-learn are not loaded
by ``import unlearnlib``).
"""
