"""Unrolling SGD's study (Thudi et al. 2022, arXiv 2109.13398) on the reference protocol.

The reference code (``cleverhans-lab/unrolling-sgd``: ``Unlearning/pretrain.py`` and
``Unlearning/correlation_verification.py``) measures verification error like this, and
:func:`finetune_trajectory` does the same:

1. **Pretrain** a model with the loss of the experiment (cross-entropy, or ``std_loss`` =
   CE + the SD regulariser for the SD runs): :func:`pretrain`.
2. **Fine-tune** from that checkpoint ``w_pre`` with SGD (momentum 0.9, weight decay 5e-4,
   a constant learning rate: the reference builds a cosine scheduler and never steps it)
   over an **unshuffled** pass of the training set whose first batch is ``x*`` (batch
   ``unlearn_batch`` of the data order moved to the front): the run ``M``.
3. The **replay** ``M'`` starts from ``w_pre`` too and takes the same steps in lockstep
   but skips ``x*`` (batch 0) **in every epoch**.
4. After a step in epoch ``ep``: the **single-gradient unlearned** model is
   ``M + (ep + 1) * lr * grad L(w_pre; x*)`` (the gradient of the same loss, the
   pretrained model in train mode; ``x*`` has been seen ``ep + 1`` times), its
   **verification error** ``||M' - M_u||`` over trainable parameters, and the **proxy**
   ``lr^2 * t * 0.5 * ||M - w_pre|| * sigma`` with ``sigma = sqrt(lambda_max)`` of the
   Hessian of the same loss of ``M`` in **eval mode** on the first ``hessian_rows``
   (512) training rows, ``t`` the reference's counter ``ep * steps_per_epoch + batch``
   (the 0-based index of the step just taken).

Remaining departures from the reference: we measure at a handful of steps
(``measure_steps``) where the reference measures after every step; the plain-CE pretrained
model is the library's cached original (:func:`unlearnlib.training.train_reference_models`:
the dataset's default recipe, SGD with momentum 0.9 and a per-step cosine schedule; the
reference pretrains with plain SGD, weight decay 5e-4, a per-epoch cosine over
``T_max = 200``, shuffled, batch 128), and the SD one the same recipe with ``sd_lambda``
(the reference uses ``std_reg = 1.0`` in both phases); no data augmentation (the
reference's fine-tuning rows are augmented once, when its dataset is listed); ``sigma`` is
``sqrt(|lambda|)`` (the reference's ``np.sqrt`` gives NaN for a negative eigenvalue); one
thread on a CPU instead of a GPU with DataParallel.

:func:`unrolling_verdicts` turns the measured rows into the chapter's three-state
verdicts with seed-bootstrap intervals (:mod:`unlearnlib.studies.verdicts`).

With an executor whose workers run in parallel (:mod:`.executors`), :func:`compute_units`
computes the units not stored yet there first (the pretrained checkpoints, their
:func:`sigma_row`, and the :func:`trajectory_rows` of every setting after the checkpoint it
needs); the serial calls then read every result back from the store, so the rows are the
serial run's.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data import Split, Splits, index_batches
from ..evaluation import accuracy
from ..evaluation.verification import (
    top_hessian_eigenvalue,
    unlearning_error_proxy,
    verification_error,
    weight_distance,
)
from ..methods.sgu import add_gradient, summed_gradient
from ..models import build_model
from ..store import Store
from ..training import (
    LossFn,
    Recipe,
    default_recipe,
    make_optimizer,
    model_spec,
    progress,
    train,
    train_reference_models,
    training_loss,
)
from . import executors
from .experiment import Setup, reference_specs
from .worker_cache import SplitsKey, splits_key, stored, worker_splits

#: Bumped when what a trajectory row means changes (part of its store key).
UNROLLING_VERSION = 2
#: The reference's fine-tuning settings (``correlation_verification.py``).
REFERENCE_FINETUNE = dict(momentum=0.9, weight_decay=5e-4, batch_size=32, schedule="constant")
#: The reference's SD weight (``std_reg = 1.0`` in pretraining and fine-tuning).
REFERENCE_SD_LAMBDA = 1.0
#: The reference's x* (batch 114 of the training order) and Hessian rows (the first 512).
REFERENCE_UNLEARN_BATCH, REFERENCE_HESSIAN_ROWS = 114, 512


# --------------------------------------------------------------------------- pretraining


@dataclass
class Pretrained:
    """A pretrained checkpoint ``w_pre`` and what determines it (``spec``, a store key part)."""

    model: nn.Module
    recipe: Recipe
    seed: int
    spec: dict
    seconds: float


def pretrain(splits: Splits, model_name: str, seed: int, recipe: Recipe | None = None,
             store: Store | None = None, show_progress: bool = False) -> Pretrained:
    """The checkpoint Unrolling SGD fine-tunes from, trained on D_r u D_f with ``recipe``
    (default: the dataset's default recipe) from ``build_model(model_name, seed=seed)``.

    Plain CE (``recipe.sd_lambda == 0``) reuses the library's cached original model of that
    seed (:func:`~unlearnlib.training.train_reference_models`, which also caches the
    retrained model the method comparison needs); an SD recipe trains one model the same
    way (same initial weights and data order) under its own key.
    """
    recipe = recipe or default_recipe(splits.dataset)
    store = store or Store()
    spec = pretrain_spec(splits, model_name, seed, recipe)
    if not recipe.sd_lambda:
        refs = train_reference_models(splits, model_name, seed, recipe, store, show_progress)
        return Pretrained(refs.original, recipe, seed, spec, refs.original_seconds)
    init = build_model(model_name, splits.input_shape, splits.num_classes, seed=seed)

    def build() -> tuple[dict, dict]:
        m = copy.deepcopy(init).to(splits.device)
        log = train(m, splits.train, recipe, seed, show_progress=show_progress)
        return m.state_dict(), {"seconds": log.seconds, "steps": log.steps}

    state, meta = store.checkpoint("models", {**spec, "role": "unrolling-pretrain"}, build)
    init.load_state_dict(state)
    return Pretrained(init.to(splits.device).eval(), recipe, seed, spec, float(meta["seconds"]))


def pretrain_spec(splits: Splits, model_name: str, seed: int, recipe: Recipe) -> dict:
    """:attr:`Pretrained.spec` of :func:`pretrain` (no training): the model's spec keyed by
    the training set alone, as the library's original model is."""
    return {**{k: v for k, v in model_spec(splits, model_name, recipe, seed).items() if k not in ("forget", "split")},
            "train": splits.train_fingerprint()}


def pretrain_entries(splits: Splits, model_name: str, seed: int, recipe: Recipe) -> list[tuple[str, dict]]:
    """The store entries (kind, spec) :func:`pretrain` reads or writes: plain CE the original
    and the retrained model (:func:`~unlearnlib.training.train_reference_models` makes both),
    an SD recipe its own checkpoint."""
    if not recipe.sd_lambda:
        return reference_specs(splits, model_name, recipe, seed)
    return [("models", {**pretrain_spec(splits, model_name, seed, recipe), "role": "unrolling-pretrain"})]


# --------------------------------------------------------------------------- sigma of the pretrained models


def sigma_spec(pre_spec: dict, hessian_rows: int, power_iters: int) -> dict:
    """The store spec of :func:`sigma_row` (``pre_spec``: :attr:`Pretrained.spec`)."""
    return {"pretrained": pre_spec, "hessian_rows": hessian_rows, "power_iters": power_iters, "conventions": 1}


def sigma_row(pre: Pretrained, splits: Splits, loss_name: str, store: Store | None = None,
              hessian_rows: int = REFERENCE_HESSIAN_ROWS, power_iters: int = 100) -> dict:
    """One cached row of the pretrained model: its test accuracy and ``sigma`` on the first
    ``hessian_rows`` training rows under the reference's convention (eval mode, the model's
    own loss) and under train-mode plain CE; ``loss_name`` labels the row."""
    store = store or Store()
    hx, hy = splits.train.x[:hessian_rows], splits.train.y[:hessian_rows]

    def compute() -> list[dict]:
        ref = top_hessian_eigenvalue(pre.model, hx, hy, training_loss(pre.recipe), max_iter=power_iters, seed=pre.seed)
        old = top_hessian_eigenvalue(pre.model, hx, hy, max_iter=power_iters, seed=pre.seed, train_mode=True)
        return [{"loss": loss_name, "seed": pre.seed, "test_acc": accuracy(pre.model, splits.test),
                 "sigma (eval, own loss)": ref.sigma, "sigma (train mode, CE)": old.sigma}]

    return store.rows("unrolling-sigma", sigma_spec(pre.spec, hessian_rows, power_iters), compute)[0]


# --------------------------------------------------------------------------- fine-tuning and its replay


def forgotten_first(n: int, batch_size: int, unlearn_batch: int) -> torch.Tensor:
    """The fine-tuning order of ``n`` rows: batch ``unlearn_batch`` (``x*``, rows
    ``[b * B, (b + 1) * B)``) first, then every other row in its order."""
    if batch_size < 1 or unlearn_batch < 0 or (unlearn_batch + 1) * batch_size > n:
        raise ValueError(f"unlearn_batch must index a full batch: 0 <= unlearn_batch < {n // max(1, batch_size)} "
                         f"for {n} rows in batches of {batch_size}; got unlearn_batch={unlearn_batch}.")
    star = torch.arange(unlearn_batch * batch_size, (unlearn_batch + 1) * batch_size)
    rest = torch.cat([torch.arange(0, unlearn_batch * batch_size), torch.arange((unlearn_batch + 1) * batch_size, n)])
    return torch.cat([star, rest])


def _sgd_step(model: nn.Module, opt: torch.optim.Optimizer, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> None:
    model.train()
    loss = loss_fn(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def lockstep(pre: nn.Module, data: Split, recipe: Recipe,
             on_step: Callable[[int, int, nn.Module, nn.Module], None] | None = None) -> tuple[nn.Module, nn.Module]:
    """Fine-tune ``M`` from ``pre`` over ``data`` in its row order (batches of
    ``recipe.batch_size``, no shuffling) and, in lockstep, the replay ``M'`` that skips
    batch 0 in every epoch. ``on_step(step, epoch, M, M')`` runs after each step
    (``step`` counts steps of ``M`` from 1). Returns ``(M, M')`` in eval mode."""
    if recipe.schedule != "constant" or recipe.augment:
        raise ValueError("The reference fine-tunes at a constant learning rate without augmentation; "
                         f"got schedule={recipe.schedule!r}, augment={recipe.augment}.")
    run, replay = copy.deepcopy(pre), copy.deepcopy(pre)
    opts = [make_optimizer(m.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay)
            for m in (run, replay)]
    step = 0
    for epoch in range(recipe.epochs):
        loss_fn = training_loss(recipe, epoch)
        for b, idx in enumerate(index_batches(len(data), recipe.batch_size, None, shuffle=False)):
            dev = idx.to(data.x.device)
            x, y = data.x[dev], data.y[dev]
            _sgd_step(run, opts[0], loss_fn, x, y)
            if b != 0:  # x* is batch 0 of every epoch
                _sgd_step(replay, opts[1], loss_fn, x, y)
            step += 1
            if on_step is not None:
                on_step(step, epoch, run, replay)
    return run.eval(), replay.eval()


def check_trajectory(n: int, batch_size: int, epochs: int, measure_steps: Sequence[int], hessian_rows: int) -> list[int]:
    """The sorted measured steps of a fine-tuning of ``n`` rows, else one ``ValueError``
    line: every step within the run, ``hessian_rows`` within the training set."""
    per_epoch = math.ceil(n / batch_size)
    total = epochs * per_epoch
    wanted = sorted(set(int(s) for s in measure_steps))
    if not wanted or wanted[0] < 1 or wanted[-1] > total:
        raise ValueError(f"measure_steps must lie in [1, {total}] ({epochs} epochs of {per_epoch} steps); "
                         f"got {list(measure_steps)}.")
    if not 1 <= hessian_rows <= n:
        raise ValueError(f"hessian_rows must be in [1, {n}]; got {hessian_rows}.")
    return wanted


def finetune_trajectory(
    pre: nn.Module, train_split: Split, recipe: Recipe, measure_steps: Sequence[int],
    unlearn_batch: int = REFERENCE_UNLEARN_BATCH, hessian_rows: int = REFERENCE_HESSIAN_ROWS,
    test: Split | None = None, power_iters: int = 100, tol: float = 1e-3, seed: int = 0,
) -> list[dict]:
    """Fine-tune ``pre`` on ``train_split`` with ``x*`` first, replay without it, and
    measure at ``measure_steps`` (module docstring): one row per measured step with
    ``ve_sgu`` (verification error of single-gradient unlearning), ``ve_nothing``
    (``||M' - M||``), ``proxy``, ``sigma``, ``distance`` and ``test_acc`` of ``M``."""
    n, bs = len(train_split), recipe.batch_size
    wanted = check_trajectory(n, bs, recipe.epochs, measure_steps, hessian_rows)
    data = train_split.subset(forgotten_first(n, bs, unlearn_batch))
    hx, hy = train_split.x[:hessian_rows], train_split.y[:hessian_rows]  # the reference's first rows
    loss_fn = training_loss(recipe)
    w_pre = {k: v.detach().clone() for k, v in pre.state_dict().items()}
    # grad L(w_pre; x*) of the batch-mean loss (summed_gradient sums B per-sample terms)
    g_star = summed_gradient(pre, data.x[:bs], data.y[:bs], bs, train_mode=True, loss_fn=loss_fn)
    rows: list[dict] = []

    def measure(step: int, epoch: int, run: nn.Module, replay: nn.Module) -> None:
        if step not in wanted:
            return
        unlearned = add_gradient(copy.deepcopy(run), g_star, (epoch + 1) * recipe.lr / bs)
        pi = top_hessian_eigenvalue(run, hx, hy, training_loss(recipe, epoch), tol=tol, max_iter=power_iters,
                                    seed=seed, train_mode=False)
        dist = weight_distance(run, w_pre)
        t = step - 1  # the reference's len(loader) * ep + batch index
        rows.append({
            "step": step, "epoch": epoch, "t": t, "seen": epoch + 1,
            "ve_sgu": verification_error(unlearned, replay), "ve_nothing": verification_error(run, replay),
            "proxy": unlearning_error_proxy(recipe.lr, t, dist, pi.sigma), "distance": dist, "sigma": pi.sigma,
            "eigenvalue": pi.eigenvalue, "power_iterations": pi.iterations, "power_converged": pi.converged,
            "test_acc": accuracy(run, test) if test is not None else math.nan,
        })

    lockstep(pre, data, recipe, measure)
    return rows


def finetune_recipe(lr: float, epochs: int, sd_lambda: float = 0.0, **changes) -> Recipe:
    """The reference's fine-tuning recipe (:data:`REFERENCE_FINETUNE`) at ``lr``."""
    return Recipe(epochs=epochs, lr=lr, sd_lambda=sd_lambda, **{**REFERENCE_FINETUNE, **changes})


def trajectory_spec(pre_spec: dict, recipe: Recipe, measure_steps: Sequence[int], unlearn_batch: int,
                    hessian_rows: int, power_iters: int) -> dict:
    """The store spec of :func:`trajectory_rows` (``recipe``: the fine-tuning recipe)."""
    return {"pretrained": pre_spec, "finetune": recipe.as_dict(), "measure_steps": sorted(set(measure_steps)),
            "unlearn_batch": unlearn_batch, "hessian_rows": hessian_rows, "power_iters": power_iters,
            "version": UNROLLING_VERSION}


def trajectory_rows(
    splits: Splits, model_name: str, seed: int, lr: float, sd_lambda: float, epochs: int,
    measure_steps: Sequence[int], pretrain_recipe: Recipe | None = None, store: Store | None = None,
    batch_size: int = REFERENCE_FINETUNE["batch_size"], unlearn_batch: int = REFERENCE_UNLEARN_BATCH,
    hessian_rows: int = REFERENCE_HESSIAN_ROWS, power_iters: int = 100,
) -> list[dict]:
    """Cached :func:`finetune_trajectory` rows of one (seed, lr, loss) setting: the model
    pretrained with ``pretrain_recipe`` (dataset default) plus ``sd_lambda``, fine-tuned
    with the same loss. Rows carry the setting and the pretrained model's test accuracy."""
    store = store or Store()
    base = pretrain_recipe or default_recipe(splits.dataset)
    pre = pretrain(splits, model_name, seed, base.with_(sd_lambda=sd_lambda), store)
    recipe = finetune_recipe(lr, epochs, sd_lambda, batch_size=batch_size)
    spec = trajectory_spec(pre.spec, recipe, measure_steps, unlearn_batch, hessian_rows, power_iters)

    def compute() -> list[dict]:
        start = time.perf_counter()
        rows = finetune_trajectory(pre.model, splits.train, recipe, measure_steps, unlearn_batch, hessian_rows,
                                   splits.test, power_iters, seed=seed)
        seconds = time.perf_counter() - start
        pre_acc = accuracy(pre.model, splits.test)
        return [{"seed": seed, "lr": lr, "sd_lambda": sd_lambda, **r, "pretrain_test_acc": pre_acc,
                 "seconds": seconds} for r in rows]

    return store.rows("unrolling", spec, compute)


# --------------------------------------------------------------------------- units on an executor
# Each unit re-creates the splits from their SplitsKey, once per worker process (.worker_cache).


def pretrain_unit(store: Store, key: SplitsKey, model_name: str, seed: int, recipe: Recipe) -> None:
    """A task (:func:`compute_units`): one :func:`pretrain` checkpoint."""
    pretrain(worker_splits(key), model_name, int(seed), recipe, store)


def sigma_unit(store: Store, key: SplitsKey, model_name: str, seed: int, recipe: Recipe, loss_name: str,
               hessian_rows: int, power_iters: int) -> None:
    """A task (:func:`compute_units`): one :func:`sigma_row` (its pretrained model is stored)."""
    splits = worker_splits(key)
    sigma_row(pretrain(splits, model_name, int(seed), recipe, store), splits, loss_name, store, hessian_rows,
              power_iters)


def trajectory_unit(store: Store, key: SplitsKey, model_name: str, seed: int, lr: float, sd_lambda: float,
                    settings: dict[str, Any]) -> None:
    """A task (:func:`compute_units`): one setting's :func:`trajectory_rows` (``settings``: its
    keyword arguments but the store)."""
    trajectory_rows(worker_splits(key), model_name, int(seed), lr, sd_lambda, store=store, **settings)


def compute_units(
    setup: Setup, seeds: Sequence[int], losses: Mapping[str, float], learning_rates: Sequence[float], epochs: int,
    measure_steps: Sequence[int], *, batch_size: int = REFERENCE_FINETUNE["batch_size"],
    unlearn_batch: int = REFERENCE_UNLEARN_BATCH, hessian_rows: int = REFERENCE_HESSIAN_ROWS,
    power_iters: int = 100, sigma: bool = True, executor: executors.Executor | str | int | None = None,
) -> int:
    """Compute the study's units that are not stored yet on ``executor``'s workers
    (:func:`.executors.resolve`; None: the scheduler of ``$UNLEARNLIB_SCHEDULER`` when set,
    else serial): the :func:`pretrain` checkpoint of every loss (``losses``: name -> SD
    weight) and seed, its :func:`sigma_row` (``sigma``), and the :func:`trajectory_rows` of
    every (seed, learning rate, loss), each after the checkpoint it fine-tunes.

    ``setup`` (:class:`.experiment.Setup`) gives the splits, the model, the pretraining recipe
    (``setup.recipe``: the reference models' recipe, to which each loss adds its SD weight),
    the store, the data folder the workers re-create the splits from and the progress bars;
    the other arguments are :func:`trajectory_rows`'.

    The caller then makes the same calls serially and reads every result from the store.
    Returns how many units ran: 0 on the serial executor, which computes nothing ahead.
    """
    splits, model_name = setup.splits, setup.model
    if not seeds or not losses or not learning_rates:
        raise ValueError(f"Give at least one seed, loss and learning rate; got seeds={list(seeds)}, "
                         f"losses={dict(losses)}, learning_rates={list(learning_rates)}.")
    check_trajectory(len(splits.train), batch_size, epochs, measure_steps, hessian_rows)
    forgotten_first(len(splits.train), batch_size, unlearn_batch)  # checks unlearn_batch
    with executors.using(executor) as ex:
        if not ex.parallel:
            return 0
        store = setup.store
        key = splits_key(splits, setup.data_root)
        base = setup.recipe
        settings = dict(epochs=epochs, measure_steps=list(measure_steps),
                        pretrain_recipe=base, batch_size=batch_size, unlearn_batch=unlearn_batch,
                        hessian_rows=hessian_rows, power_iters=power_iters)
        pre: dict[tuple[float, int], tuple[executors.Task, dict]] = {}  # by (SD weight, seed)

        def pretrained(lam: float, seed: int) -> tuple[executors.Task, dict]:
            """The pretraining task of (SD weight, seed) and its checkpoint's spec."""
            if (lam, seed) not in pre:
                recipe = base.with_(sd_lambda=lam)
                task = ex.task(f"pretrain sd_lambda={lam:g} seed {seed}", pretrain_unit,
                               (key, model_name, seed, recipe), store,
                               done=stored(store, pretrain_entries(splits, model_name, seed, recipe)))
                pre[(lam, seed)] = task, pretrain_spec(splits, model_name, seed, recipe)
            return pre[(lam, seed)]

        tasks: list[executors.Task] = []
        for name, lam in losses.items():
            for seed in map(int, seeds):
                task, spec = pretrained(lam, seed)
                tasks.append(task)
                if sigma:
                    entry = ("unrolling-sigma", sigma_spec(spec, hessian_rows, power_iters))
                    tasks.append(ex.task(f"sigma of {name} seed {seed}", sigma_unit,
                                         (key, model_name, seed, base.with_(sd_lambda=lam), name, hessian_rows,
                                          power_iters), store, needs=(task,), done=stored(store, [entry])))
        for seed in map(int, seeds):
            for lr in learning_rates:
                for lam in dict.fromkeys(losses.values()):  # values as given: they are key parts
                    task, spec = pretrained(lam, seed)
                    finetune = finetune_recipe(lr, epochs, lam, batch_size=batch_size)
                    entry = ("unrolling", trajectory_spec(spec, finetune, measure_steps, unlearn_batch, hessian_rows,
                                                          power_iters))
                    tasks.append(ex.task(f"trajectory seed {seed} lr {lr:g} sd_lambda={lam:g}", trajectory_unit,
                                         (key, model_name, seed, lr, lam, settings), store, needs=(task,),
                                         done=stored(store, [entry])))
        return len(ex.run(tasks, store, "unrolling units", setup.show_progress))


# --------------------------------------------------------------------------- verdicts

THUDI = "Thudi et al. 2022 (Unrolling SGD)"
#: Spearman correlation above which the proxy "tracks" verification error: a strong
#: monotone association (0 would accept any positive tendency at all).
RHO_THRESHOLD = 0.5


def per_seed_spearman(df: pd.DataFrame, by: Sequence[str] = ("lr",)) -> pd.DataFrame:
    """Spearman rho of ``proxy`` against ``ve_sgu`` per seed and per group ``by`` (``()``
    pools every row of a seed): a frame with ``seed``, the ``by`` columns, ``rho``, ``n``."""
    from scipy.stats import spearmanr

    keys = ["seed", *by]
    out = []
    for k, g in df.groupby(keys, sort=True):
        k = k if isinstance(k, tuple) else (k,)
        rho = spearmanr(g["proxy"], g["ve_sgu"]).statistic if len(g) >= 3 else math.nan
        out.append({**dict(zip(keys, k, strict=True)), "rho": float(rho), "n": len(g)})
    return pd.DataFrame(out).assign(lr=lambda d: d["lr"] if "lr" in d else "pooled")


def paired_log_ratios(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``log(metric_SD / metric_plain)`` at matched seed, lr and step, one row per SD weight."""
    key = ["seed", "lr", "step"]
    plain = df[df["sd_lambda"] == 0][[*key, metric]].rename(columns={metric: "plain"})
    reg = df[df["sd_lambda"] > 0][[*key, "sd_lambda", metric]].merge(plain, on=key)
    return reg.assign(log_ratio=np.log(reg[metric] / reg["plain"]))[[*key, "sd_lambda", "log_ratio"]]


def _per_lr(metric: str, worst: Callable[..., np.ndarray], transform=lambda a: a) -> Callable:
    """A bootstrap statistic: per learning rate (the first part of every column key) the
    mean of ``metric`` over that rate's columns, then the worst rate (``np.min``/``np.max``)."""
    def stat(m, t) -> np.ndarray:
        lrs = sorted({c[0] if isinstance(c, tuple) else c for c in t.columns}, key=str)
        cols = [[i for i, c in enumerate(t.columns) if (c[0] if isinstance(c, tuple) else c) == lr] for lr in lrs]
        per = np.stack([np.nanmean(m[metric][:, c], axis=1) for c in cols], axis=1)
        return transform(worst(per, axis=1))
    return stat


def unrolling_verdicts(df: pd.DataFrame, budget: str, chapter: str = "unrolling_sgd",
                       threshold: float = RHO_THRESHOLD) -> list:
    """The chapter's claims on :func:`trajectory_rows` rows of several seeds, each required
    **at every learning rate tested** (the worst rate decides):

    1. the proxy tracks verification error: per seed and learning rate, Spearman rho
       across the trajectory points and losses (the learning rate is fixed, so it cannot
       drive both axes; the step count still moves both). For comparison, the rho pooled
       over learning rates (the paper's setting, where the learning rate drives both axes)
       is a second, informational verdict;
    2. the SD regulariser lowers verification error (and, second, the proxy): geometric
       mean over steps of the paired ratio regularised / plain at matched seed, lr and step;
    3. single-gradient unlearning ends closer to the replay than doing nothing: geometric
       mean over losses, at the last measured step, of ``ve_sgu / ve_nothing``.

    Intervals: 95% from the paired bootstrap over seeds of :mod:`.verdicts` (at least
    :data:`~unlearnlib.studies.verdicts.MIN_SEEDS` seeds, else not tested).
    """
    from . import verdicts as V

    within = per_seed_spearman(df, ("lr",))
    pooled = per_seed_spearman(df, ())
    out = [V.decide(
        "The proxy tracks verification error at a fixed learning rate", THUDI, chapter,
        f"at every learning rate, the Spearman rho of the proxy against verification error across the "
        f"trajectory points and losses, computed per seed and averaged over seeds, is above {threshold}",
        "smallest per-lr mean Spearman rho", threshold,
        V.evidence(V.pivot(within, ["rho"], ("lr",)), _per_lr("rho", np.min), threshold), None, budget),
        V.decide(
        "The proxy tracks verification error pooled over learning rates", THUDI, chapter,
        f"Spearman rho over every trajectory point, loss and learning rate of a seed is above {threshold} "
        "(information: the learning rate moves both axes here)",
        "pooled Spearman rho", threshold,
        V.evidence(V.pivot(pooled, ["rho"], ("lr",)), _per_lr("rho", np.min), threshold), None, budget)]
    if (df["sd_lambda"] > 0).any() and (df["sd_lambda"] == 0).any():
        for metric, what in (("ve_sgu", "verification error"), ("proxy", "the proxy")):
            r = paired_log_ratios(df, metric)
            r = r[np.isfinite(r["log_ratio"])]
            out.append(V.decide(
                f"The SD regulariser lowers {what}", THUDI, chapter,
                f"at every learning rate, the geometric mean over steps and seeds of the paired ratio of {what}, "
                "SD-regularised / plain (same seed, learning rate and step), is below 1",
                f"largest per-lr ratio of {what}, SD / plain", 1.0,
                V.evidence(V.pivot(r, ["log_ratio"], ("lr", "step", "sd_lambda")),
                           _per_lr("log_ratio", np.max, np.exp), 1.0, holds_above=False), None, budget))
    last = df[df["step"] == df["step"].max()]
    gain = last.assign(log_ratio=np.log(last["ve_sgu"] / last["ve_nothing"]))
    out.append(V.decide(
        "Single-gradient unlearning ends closer to the replay than doing nothing", THUDI, chapter,
        "at every learning rate, the geometric mean over losses and seeds, at the last measured step, of "
        "||M' - M_u|| / ||M' - M|| is below 1",
        "largest per-lr ratio sgu / nothing", 1.0,
        V.evidence(V.pivot(gain, ["log_ratio"], ("lr", "sd_lambda")), _per_lr("log_ratio", np.max, np.exp), 1.0,
                   holds_above=False), None, budget))
    lrs = ", ".join(f"{x:g}" for x in sorted(df["lr"].unique()))
    where = ", ".join(dict.fromkeys(f"{d}/{m}" for d, m in zip(df["dataset"], df["model"], strict=True))) \
        if {"dataset", "model"} <= set(df.columns) else ""
    return V.scoped(out, ", ".join(x for x in (where, f"learning rates {lrs}") if x))


# --------------------------------------------------------------------------- the chapter's tables

#: The trajectory columns the chapter averages per learning rate, loss and step.
TRAJECTORY_COLUMNS = ("ve_sgu", "ve_nothing", "proxy", "sigma", "distance", "test_acc")
#: The columns of the whole-forget-set comparison of methods (:func:`method_summary`).
METHOD_COLUMNS = ("l2_to_retrained", "mia_test", "forget_acc", "test_acc", "unlearn_seconds")


def measure_points(n_train: int, batch_size: int, epochs: int, points_per_epoch: int) -> tuple[int, list[int]]:
    """(steps per fine-tuning epoch, the measured steps): ``points_per_epoch`` evenly spaced
    steps in each of ``epochs`` epochs of ``ceil(n_train / batch_size)`` steps."""
    per_epoch = math.ceil(n_train / batch_size)
    steps = sorted({max(1, round(per_epoch * k / points_per_epoch)) for k in range(1, epochs * points_per_epoch + 1)})
    return per_epoch, steps


def budget_text(n_seeds: int, n_lrs: int, n_losses: int, n_steps: int) -> str:
    """What the verdicts rest on, in words."""
    return f"{n_seeds} seeds x {n_lrs} learning rates x {n_losses} losses, {n_steps} steps each"


def pretrained_rows(splits: Splits, model_name: str, seeds: Sequence[int], losses: Mapping[str, float],
                    recipe: Recipe, store: Store | None = None, hessian_rows: int = 512, power_iters: int = 30
                    ) -> pd.DataFrame:
    """:func:`sigma_row` of the model pretrained with each loss (name -> SD weight) and seed,
    loss by loss (every model of a loss is pretrained, or read from the store, first)."""
    pre = {(name, s): pretrain(splits, model_name, s, recipe.with_(sd_lambda=lam), store)
           for name, lam in losses.items() for s in progress(seeds, f"pretrain {name}")}
    return pd.DataFrame([sigma_row(pre[(name, s)], splits, name, store, hessian_rows, power_iters)
                         for name in losses for s in seeds])


def pretrained_table(pretrained: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Per loss of :func:`pretrained_rows`: the seeds, the test accuracy's mean, min and max, and
    the mean sigma under the reference's Hessian convention and under the old one; and the ratio
    of the last loss's two sigmas to the first's (SD / plain)."""
    table = pretrained.groupby("loss", sort=False).agg(
        seeds=("seed", "count"), test_acc_mean=("test_acc", "mean"), test_acc_min=("test_acc", "min"),
        test_acc_max=("test_acc", "max"), sigma_reference=("sigma (eval, own loss)", "mean"),
        sigma_old=("sigma (train mode, CE)", "mean"))
    cols = ["sigma_reference", "sigma_old"]
    return table, table.iloc[-1][cols] / table.iloc[0][cols]


def trajectories(splits: Splits, model_name: str, seeds: Sequence[int], learning_rates: Sequence[float],
                 losses: Mapping[str, float], epochs: int, steps: Sequence[int], recipe: Recipe,
                 store: Store | None = None, **kw) -> pd.DataFrame:
    """:func:`trajectory_rows` of every seed, learning rate and loss (name -> SD weight), each
    row labelled with its ``loss``; ``kw``: :func:`trajectory_rows`'s batch and Hessian options."""
    settings = [(s, lr, name) for s in seeds for lr in learning_rates for name in losses]
    rows = []
    for s, lr, name in progress(settings, "trajectories"):
        rows += [{**r, "loss": name} for r in trajectory_rows(splits, model_name, s, lr, losses[name], epochs, steps,
                                                              recipe, store, **kw)]
    return pd.DataFrame(rows)


def trajectory_means(traj: pd.DataFrame, columns: Sequence[str] = TRAJECTORY_COLUMNS) -> pd.DataFrame:
    """Mean over seeds of ``columns`` per learning rate, loss and step (in the rows' order)."""
    return traj.groupby(["lr", "loss", "step"], sort=False)[list(columns)].mean()


def spearman_table(traj: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Spearman rho of the proxy against verification error per seed (rows) within each
    learning rate (``rho at lr ...``) and pooled over them (``rho pooled``), with the number of
    points behind each (within one rate, pooled)."""
    within, pooled = per_seed_spearman(traj, ("lr",)), per_seed_spearman(traj, ())
    rho = within.pivot(index="seed", columns="lr", values="rho").add_prefix("rho at lr ")
    rho["rho pooled"] = pooled.set_index("seed")["rho"]
    return rho, int(within["n"].iloc[0]), int(pooled["n"].iloc[0])


def sd_ratios(traj: pd.DataFrame, metrics: Sequence[str] = ("ve_sgu", "proxy", "sigma")) -> pd.DataFrame:
    """Geometric mean over seeds of the paired ratio SD / plain (:func:`paired_log_ratios`) of
    each of ``metrics`` per learning rate and step."""
    paired = {m: paired_log_ratios(traj, m) for m in metrics}
    return pd.DataFrame({m: np.exp(p.groupby(["lr", "step"])["log_ratio"].mean())
                         for m, p in paired.items()}).add_suffix(" SD / plain")


def sgu_gain(traj: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of ||w_r - w_u|| / ||w_r - w_t|| (sgu against doing nothing) per learning
    rate and loss (rows) and measured step (columns): below 1, sgu moves towards the replay."""
    gain = traj.assign(ratio=traj["ve_sgu"] / traj["ve_nothing"])
    return gain.pivot_table(index=["lr", "loss"], columns="step", values="ratio", aggfunc="mean", sort=False)


def compare_methods(setup, methods: Sequence[str], seeds: Sequence[int],
                    hparams: Mapping[str, Mapping] | None = None) -> tuple[pd.DataFrame, float]:
    """The library's rows of ``methods`` on every seed of ``setup`` (:class:`.experiment.Setup`:
    its cached original and retrained models; on the book's workers first when it has some,
    :func:`.experiment.compute_rows`), with ``hparams`` (method -> overrides of its defaults);
    and the mean L2 distance the original models travelled from their random initialisation
    (where the whole-forget-set ``sgu`` takes its gradient)."""
    from .experiment import compute_rows

    hparams = hparams or {}
    compute_rows(setup, [(key, s, hparams.get(key)) for s in seeds for key in methods], desc="methods")
    rows = [setup.run(key, s, hparams.get(key)) for s in progress(seeds, "methods") for key in methods]
    travelled = float(np.mean([weight_distance(setup.refs(s).original, setup.refs(s).init_state) for s in seeds]))
    return pd.DataFrame(rows), travelled


def method_summary(rows: pd.DataFrame, columns: Sequence[str] = METHOD_COLUMNS) -> pd.DataFrame:
    """Mean and standard deviation over seeds of ``columns`` per method (in the rows' order)."""
    return rows.groupby("method", sort=False)[list(columns)].agg(["mean", "std"])
