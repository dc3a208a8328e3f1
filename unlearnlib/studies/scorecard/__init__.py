"""The scorecard: every registered method against every test of unlearning, on one scale.

Each test gives a raw number per method (an accuracy, an attack's accuracy, a p-value's
KS distance, a weight distance, ...). Every cell is normalised against the two reference
models of the same test,

    s = (v - v_original) / (v_retrained - v_original),

so 0 is the untouched original model, 1 is the retrained model and the sign and units
of the raw test no longer matter (:func:`normalise`). A test whose original-retrained
gap is not resolved at this budget (its 95% bootstrap interval contains 0) cannot
normalise anything and is left out of every pass/fail reading (:func:`resolved_gaps`).

Tests (:data:`TESTS`), by where their numbers come from:

- *seeds* (full-data models of every seed; :func:`seed_rows`): forget accuracy, RetDev,
  the population loss- and entropy-MIA (Deep Unlearn; nabla-tau), the relearning attack
  (Siddiqui et al. 2025: forget accuracy after fine-tuning on D_r alone,
  :func:`relearning_row`) and the verification error (Thudi et al. 2022: L2 distance of
  the weights to the retrained model);
- *shadows* (one shadow set, :class:`~unlearnlib.shadows.ShadowRunner`, shared by
  every test; :func:`shadow_arrays`): U-LiRA accuracy and TPR at 1% FPR (Hayes et al.
  2024), RMIA's AUC (Zarifzadeh et al. 2024), the NeurIPS 2023 forgetting quality F
  (Triantafillou et al. 2024), KLOM (Georgiev et al. 2024: KL(oracle || unlearned), left
  out where the shadows give it too few models per point for its small-sample floor to
  leave room below its ceiling, :func:`klom_resolution`) and TOFU's forget quality
  (Maini et al. 2024), read through its KS distance (at a fixed number of forget samples
  the p-value is a decreasing function of it, so both rank alike; the distance is linear
  and resamples well, the p-value is shown beside it);
- *poison* (Pawelczyk et al. 2024's setting; :func:`poison_rows`): the Gaussian
  Unlearning Score after unlearning the poisons within a compute budget, where 0 = the
  poisoned model and 1 = the model retrained without the poisons, so 1 - s is the share
  of the poison gap a method leaves.

Uncertainty (:func:`bootstrap_values`): one joint bootstrap. Each draw resamples the
seeds of the full-data rows (paired: every method of a drawn seed comes along), the
seeds of the poisoning rows, and the shadow set's target samples (paired likewise; the
per-pair scores are kept, as the Gaussians of LiRA are per sample). Draw 0 is the point
estimate. Everything downstream (normalised scores, passes) is computed per draw, and every
interval the scorecard publishes (values, scores, the resolved gaps; :func:`_interval`) is
the library's t-scaled bootstrap interval of those draws
(:func:`~unlearnlib.studies.verdicts.interval_from_draws`): each side of the percentile
interval stretched around the estimate by :func:`~unlearnlib.studies.verdicts.t_scale` at
the number of units the statistic resamples (:meth:`Draws.sample_size`: a test's seeds or
shadow targets). The plain percentile interval is too narrow in small samples (Hesterberg
2015): a "95%" interval of a mean over 5 seeds covers about 83%; the stretch makes it
Student's t interval there. One seed gives no interval (NaN), so no test is resolved.

The verdicts count methods, and a count is a sum of 0/1 readings: wherever 97.5% of its
draws agree, its interval has a zero-length side that no stretch widens, and a method on a
pass boundary would be decided by the plain percentile bootstrap
(:mod:`.calibration_scorecard` measured up to 10% wrong verdicts a side). So the counts are
decided from the per-(method, test) scores instead (:func:`certain_readings`): a method
*certainly passes* a test when the score's one-sided bounds (:func:`score_bounds`: the same
t-scaled stretch, at a chosen tail, through :meth:`~unlearnlib.studies.verdicts.Resampled.bound`)
lie inside [1 - TOL, 1 + TOL], and *certainly fails* it when they lie wholly outside; a
count's interval runs from the methods certainly counting to the methods not certainly
excluded. Each side keeps its 2.5% error over the M methods and T tests it combines by
Bonferroni, as :func:`~unlearnlib.studies.verdicts.extreme_evidence` does for minima and
maxima: a side that one wrong reading of m can break reads each at 2.5% / m, a side that
needs all of them wrong is not corrected. "None passes" reads its low end at 2.5% / M and
its high end at 2.5% / T; "false sense" its low end at 2.5% / M (the loss-MIA) and 2.5% /
(M D) (each of D deeper tests), its high end at 2.5% / 2 (the reasoning is in
:func:`scorecard_verdicts`). The price is power: a method must clear the pass band by a
corrected bound. Utility is read at the point estimate, as the reading's row 0 does (not
resampled: a method on the utility boundary is decided by its estimate, uncalibrated).

Reading (:func:`classify`): a method *passes* a test when its score lies within
:data:`TOL` of 1 (it closes at least 80% of the gap without overshooting it by more than
20%). The book's utility constraint: a method whose test accuracy is more than
:data:`UTILITY` below the retrained model's passes no test (a broken model is at chance
for every attack). *False sense of success* (Pawelczyk et al. 2024; Hayes et al. 2024):
a utility-keeping method that passes the population loss-MIA and fails at least one
per-sample, relearning or poisoning test (:data:`DEEPER_GROUPS`). Rankings by different
tests are compared by Kendall's tau (:func:`kendall_matrix`).

The package, in three parts (rendering is the book's, :mod:`unlearnlib.book.scorecard_view`):

- :mod:`.catalogue`: the tests, what each reads and where its numbers come from, the
  reading's rules and options, KLOM's resolution on a shadow design;
- :mod:`.collection`: hyperparameters, full-data rows with the relearning attack, shadow
  arrays, poisoning rows, the joint bootstrap's draws, what a run trains (:class:`Budget`);
- :mod:`.reading`: normalised scores, pass / fail, rankings, tidy frames and verdicts.
"""

from .catalogue import *  # noqa: F401,F403
from .catalogue import __all__ as _catalogue
from .collection import *  # noqa: F401,F403
from .collection import __all__ as _collection
from .collection import _poison_recipe  # noqa: F401  (the workers' tests rebuild a seed's recipe)
from .reading import *  # noqa: F401,F403
from .reading import __all__ as _reading

__all__ = [*_catalogue, *_collection, *_reading]
