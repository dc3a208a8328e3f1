"""Studies: what combines the engine, the methods and the evaluation.

Studies and their reports:

- :mod:`.experiment`: grids of methods x seeds -> tidy result rows (``run_grid``);
- :mod:`.hpo`: Deep Unlearn's Optuna tuning protocol; :mod:`.trials`: the trial loop and
  its storage; :mod:`.tuned`: the shipped tuned-hyperparameter table;
  :mod:`.tuning_report`: its tables for the methods chapter;
- :mod:`.fraction_study`: nabla-tau's forget fractions;
- :mod:`.carry_over`: whether a grid's picture carries over to other data (the text chapter);
- :mod:`.unrolling`: Unrolling SGD's run-and-replay pairs;
- :mod:`.poisoning_study`: the poisoning attacks' grids; :mod:`.poisoning_verdicts`:
  Pawelczyk et al.'s findings;
- :mod:`.scorecard`: every method against every test on shared models;
  :mod:`.ulira_reading`: the per-sample chapter's table and readings (by the scorecard's rule);
- :mod:`.certified_study`: certified unlearning against the attacks, and the price of a guarantee;
- :mod:`.verdicts`: every claim's verdict with its interval and scope;
  :mod:`.calibration` and :mod:`.calibration_scorecard`: their coverage by simulation;
- :mod:`.tables`: tidy frames as ``mean ± std`` tables.

Run machinery: :mod:`.executors` (serial, local Dask workers, a cluster),
:mod:`.worker_cache` and :mod:`.worker_preload` (what a worker keeps and imports).

Submodules are imported where used (Optuna, pandas and scikit-learn are not loaded
by ``import unlearnlib``).
"""
