"""Shadow models for per-sample attacks: trained, unlearned and cached as their own layer.

:class:`ShadowRunner` trains (or loads) the shadow models of a
:class:`~unlearnlib.evaluation.lira.ShadowSet` (the design: population, targets,
in-halves, forget partitions), unlearns them with a method, and keeps both the models
and their outputs (:class:`~unlearnlib.evaluation.lira.ShadowOutputs`: phi, losses,
accuracies) in the :class:`~unlearnlib.store.Store`; every shadow group is trained as one
computation by :mod:`unlearnlib.ensemble`, and a second run trains nothing. The attacks
that score those outputs (U-LiRA, RMIA, KLOM, the NeurIPS score, forget quality) are
statistics in :mod:`unlearnlib.evaluation`.

Layering (issue 35): this code lived in ``unlearnlib.evaluation.lira``, where it reached
the methods and the ensemble engine through nine imports inside functions, so evaluation
sat on one floor with what it evaluates. Here it sits above the methods and the ensemble
and below the studies; evaluation imports nothing above the engine. The store keys are
unchanged (tests/test_store_keys.py): the specs never named a module.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from . import methods as registry
from .data import Split, Splits
from .ensemble import Ensemble, train_ensemble, unlearn_ensemble
from .evaluation.lira import ShadowConfig, ShadowOutputs, ShadowSet, make_shadow_set, phi
from .store import Store
from .training import Recipe, default_recipe, model_spec

#: Bump when what a ``shadow_outputs`` entry holds changes (2: ``test_phi`` added); the
#: outputs are then recomputed from the stored models, which are not retrained.
OUTPUTS_VERSION = 2


def _outputs(ens, shadows: ShadowSet, test: Split, rows: np.ndarray) -> dict[str, torch.Tensor]:
    """phi, loss and accuracies of ensemble ``ens`` (its models are ``rows`` of the set), and
    phi on the test set, which RMIA's population signal is computed from as the samples' one
    (the float32 test loss is exactly 0 from a logit margin of about 17)."""
    pool = shadows.pool
    z = ens.logits(pool.x)
    zt = ens.logits(test.x)
    ce = torch.nn.functional.cross_entropy
    loss = ce(z.flatten(0, 1), pool.y.repeat(len(ens)), reduction="none").view(len(ens), -1)
    tloss = ce(zt.flatten(0, 1), test.y.repeat(len(ens)), reduction="none").view(len(ens), -1)
    correct = (z.argmax(-1) == pool.y).cpu()
    r = torch.as_tensor(rows)
    ret, fgt = shadows.retain_masks[r], shadows.forget_masks[r]
    return {
        "phi": phi(z, pool.y.expand(len(ens), -1)).cpu(),
        "loss": loss.cpu(), "test_loss": tloss.cpu(),
        "test_phi": phi(zt, test.y.expand(len(ens), -1)).cpu(),
        "retain_acc": (correct & ret).sum(1) / ret.sum(1),
        "forget_acc": (correct & fgt).sum(1) / fgt.sum(1).clamp(min=1),
        "test_acc": (zt.argmax(-1) == test.y).float().mean(1).cpu(),
    }


class ShadowRunner:
    """Trains (or loads) the originals, the retrained references and every method's
    unlearned shadows of one :class:`ShadowSet`, all through the :class:`Store`.

    Two cache levels: model ensembles (``shadow_models``) and their outputs
    (``shadow_outputs``); when the outputs are cached no model is even loaded.
    :meth:`outputs_many` computes the missing groups of several methods on an executor's
    workers (:mod:`unlearnlib.studies.executors`) before reading them back.
    """

    def __init__(
        self, splits: Splits, model_name: str, config: ShadowConfig, store: Store | None = None,
        recipe: Recipe | None = None, path: str = "auto", show_progress: bool = True,
    ) -> None:
        self.splits, self.model_name, self.config = splits, model_name, config
        self.store = store or Store()
        base = recipe or default_recipe(splits.dataset)
        self.recipe = base.with_(epochs=config.epochs)
        self.path, self.show_progress = path, show_progress
        self._base_recipe = base
        self.shadows = make_shadow_set(splits, config)
        spec = model_spec(splits, model_name, self.recipe, 0)
        self.spec = {**{k: v for k, v in spec.items() if k != "seed"}, "shadows": self.shadows.fingerprint(),
                     "config": asdict(config)}
        self._cache: dict[str, Any] = {}

    # -- models ---------------------------------------------------------------
    def _ensemble(self, role: str, build, extra: dict | None = None):
        if role in self._cache:
            return self._cache[role]
        spec = {**self.spec, "role": role, **(extra or {})}
        state, meta = self.store.checkpoint("shadow_models", spec, build)
        ens = Ensemble.from_state_dict(self.model_name, self.splits.input_shape, self.splits.num_classes,
                                       {k: v.to(self.splits.device) for k, v in state.items()})
        self._cache[role] = (ens, meta)
        return ens, meta

    def init(self):
        return Ensemble.build(self.model_name, self.splits.input_shape, self.splits.num_classes,
                              self.shadows.init_seeds, self.splits.device)

    def originals(self):
        """The K models trained on their in-halves, expanded to the K*P rows."""
        def build():
            ens = self.init()
            log = train_ensemble(ens, self.shadows.pool, self.shadows.in_masks, self.recipe,
                                 self.shadows.init_seeds, path=self.path, show_progress=self.show_progress)
            return ens.state_dict(), {"seconds": log.seconds, "paths": str(log.paths)}

        ens, meta = self._ensemble("original", build)
        return ens.select(self.shadows.split_of), meta

    def retrained(self):
        """Reference models of the NeurIPS score: retrained from the same init without forget set p,
        with the original's data-order seed."""
        def build():
            ens = self.init().select(self.shadows.split_of)
            seeds = [self.shadows.init_seeds[k] for k in self.shadows.split_of]
            log = train_ensemble(ens, self.shadows.pool, self.shadows.retain_masks, self.recipe, seeds,
                                 path=self.path, show_progress=self.show_progress)
            return ens.state_dict(), {"seconds": log.seconds, "paths": str(log.paths)}

        return self._ensemble("retrained-reference", build)

    @property
    def scale(self):
        """The sizes a method's default epoch counts scale with on one shadow row."""
        return registry.DataScale(int(self.shadows.retain_masks[0].sum()), int(self.shadows.forget_masks[0].sum()),
                         int(self.recipe.epochs))

    def unlearned(self, method: str, hparams: dict | None = None):
        """Every row's original, unlearned with ``method`` (seed = the row's unlearn seed)."""
        if method == "original":
            return self.originals()
        hp = registry.get(method).resolve_hparams(hparams, self.scale)

        def build():
            orig, _ = self.originals()
            t = time.perf_counter()
            out = unlearn_ensemble(
                method, orig, self.shadows.pool, self.shadows.retain_masks, self.shadows.forget_masks,
                self.shadows.unlearn_seeds, self.splits.num_classes, hp,
                init=self.init().select(self.shadows.split_of), train_recipe=self.recipe,
                val=self.splits.val, model_name=self.model_name, path=self.path,
                show_progress=self.show_progress)
            return out.state_dict(), {"seconds": time.perf_counter() - t}

        return self._ensemble(f"unlearned:{method}", build, {"hparams": hp, **self._version(method)})

    # -- outputs --------------------------------------------------------------
    def outputs(self, method: str, hparams: dict | None = None) -> ShadowOutputs:
        """phi / losses / accuracies of ``method``'s unlearned shadows (``"retrained-reference"``
        for the NeurIPS score's reference models)."""
        hp = self._resolve(method, hparams)
        rows = np.arange(self.shadows.rows)

        def build():
            ens, meta = self.retrained() if method == "retrained-reference" else self.unlearned(method, hp)
            out = _outputs(ens, self.shadows, self.splits.test, rows)
            return out, {"seconds": float(meta.get("seconds", 0.0))}

        state, meta = self.store.checkpoint("shadow_outputs", self._outputs_spec(method, hp), build)
        arr = {k: v.numpy() for k, v in state.items()}
        return ShadowOutputs(method, arr["phi"], arr["loss"], arr["test_loss"], arr["retain_acc"],
                             arr["forget_acc"], arr["test_acc"], float(meta.get("seconds", 0.0)), meta,
                             test_phi=arr["test_phi"])


    # -- orchestration: which groups run where ------------------------------------
    def _resolve(self, method: str, hparams: dict | None) -> dict:
        return {} if method == "retrained-reference" else registry.get(method).resolve_hparams(hparams, self.scale)

    def _outputs_spec(self, method: str, hp: dict) -> dict:
        return {**self.spec, "role": method, "hparams": hp, **self._version(method), "outputs": OUTPUTS_VERSION}

    @staticmethod
    def _version(method: str) -> dict:
        """The method's version in its store keys (empty at version 1 and for the references)."""
        if method == "retrained-reference":
            return {}
        return {k: v for k, v in registry.get(method).identity.items() if k != "method"}

    def __getstate__(self) -> dict:
        """What a worker re-creates the runner from: no loaded ensembles, the splits on the CPU."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_cache", "shadows")}
        state["splits"], state["_device"] = self.splits.to("cpu"), str(self.splits.device)
        return state

    def __setstate__(self, state: dict) -> None:
        device = state.pop("_device")
        self.__dict__.update(state)
        self.splits = self.splits.to(device)
        self.shadows = make_shadow_set(self.splits, self.config)
        self._cache = {}

    def outputs_many(self, methods: Any, executor: Any = None) -> dict[str, ShadowOutputs]:
        """:meth:`outputs` of several methods (a sequence of keys, or keys -> hyperparameters;
        ``"retrained-reference"`` allowed), in their order.

        ``executor``: an :class:`~unlearnlib.studies.executors.Executor` (None: serial, as
        :meth:`outputs` one after the other). With parallel workers, the groups not stored
        yet run there first: the originals and the retrained references side by side, then
        each method's unlearned shadows and their outputs (they need the originals), one
        task per method; the outputs are then read back here.
        """
        wanted = dict(methods) if isinstance(methods, dict) else {m: None for m in methods}
        if executor is not None and getattr(executor, "parallel", False):
            executor.run(self.tasks(wanted, executor), self.store, "shadow groups", self.show_progress)
        return {m: self.outputs(m, hp) for m, hp in wanted.items()}

    def tasks(self, wanted: dict[str, dict | None], executor: Any) -> list:
        """The tasks of the shadow groups that ``wanted``'s outputs need, each done when its
        store entry exists."""
        store = self.store
        originals = executor.task(
            "shadow originals", _shadow_unit, (self, "original-models", None), store,
            done=lambda: store.has("shadow_models", {**self.spec, "role": "original"}))
        out = []
        for method, hparams in wanted.items():
            hp = self._resolve(method, hparams)
            spec = self._outputs_spec(method, hp)
            needs = () if method == "retrained-reference" else (originals,)
            out.append(executor.task(f"shadow outputs of {method}", _shadow_unit, (self, method, hp), store,
                                     needs=needs, done=lambda spec=spec: store.has("shadow_outputs", spec)))
        return out


#: Runners re-created in this process (a worker's), by what determines them.
_RUNNERS: dict[str, ShadowRunner] = {}


def _shadow_unit(store: Store, runner: ShadowRunner, role: str, hparams: dict | None) -> None:
    """In a worker: one shadow group of ``runner`` (re-created once per process on ``store``):
    the originals (``"original-models"``) or one role's outputs (computing its models)."""
    key = hashlib.sha256(repr((sorted(runner.spec.items(), key=str), str(runner.splits.device),
                               runner.path, str(store.root))).encode()).hexdigest()
    if key not in _RUNNERS:
        runner.store, runner.show_progress = store, False
        _RUNNERS[key] = runner
    runner = _RUNNERS[key]
    if role == "original-models":
        runner.originals()
    else:
        runner.outputs(role, hparams)


__all__ = [
    "ShadowRunner", "OUTPUTS_VERSION",
    # the design and the outputs, for one import with the runner (defined in evaluation.lira)
    "ShadowConfig", "ShadowSet", "make_shadow_set", "ShadowOutputs",
]
