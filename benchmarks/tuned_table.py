"""The shipped tuned-hyperparameter table against issue 32's bars, per setting.

For every (dataset, model, forget set) of ``unlearnlib/tuned/hparams.json`` (or ``--table``):
the entries, their budget (trials per tuning seed x tuning seeds), the mean and the worst
optimism (held-out mean minus tuned objective; :func:`unlearnlib.studies.tuned.optimism`),
and the entries whose tuned objective lies outside their held-out 95% interval, with the
commits the entries were made from and the sum of their recorded ``wall_seconds`` (what each
entry records: its selection and reruns, not the search; a part's wall time is in its commit
message and the README). Needs no training.

    .venv/bin/python benchmarks/tuned_table.py [--table PATH] [--entries]
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict

from unlearnlib.studies import tuned


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=None, help="a tuned table (default: the package's own)")
    ap.add_argument("--entries", action="store_true", help="also list every entry outside its interval")
    args = ap.parse_args(argv)
    groups: dict[tuple, list[tuple[str, dict]]] = defaultdict(list)
    for key, e in tuned.load(args.table).items():
        groups[(e["dataset"], e["model"], e["forget"])].append((key, e))
    print("| setting | entries | trials x tuning seeds | mean optimism | worst | tuned outside held-out 95% | "
          "commits | entries' wall_seconds (s) |")
    print("|---|---|---|---|---|---|---|---|")
    outside_all = []
    for (dataset, model, forget), entries in sorted(groups.items()):
        budgets = sorted({f"{e['trials_per_seed']} x {len(e['tuning_seeds'])}" for _, e in entries})
        opt = [(tuned.optimism(e), e["method"]) for _, e in entries if e.get("source") == "search"]
        opt = [(o, m) for o, m in opt if math.isfinite(o)]
        mean = sum(o for o, _ in opt) / len(opt) if opt else math.nan
        worst = max(opt, key=lambda x: abs(x[0]), default=(math.nan, "-"))
        outside = []
        for _, e in entries:
            h = tuned.held_out(e)
            if math.isfinite(h["low"]) and not h["low"] <= float(e["objective"]) <= h["high"]:
                outside.append(e["method"])
                outside_all.append((f"{dataset}/{model}/{forget}", e, h))
        commits = sorted({str(e.get("commit", "?"))[:7] for _, e in entries})
        wall = sum(float(e.get("wall_seconds") or 0.0) for _, e in entries)
        print(f"| {dataset}/{model}/{forget} | {len(entries)} | {', '.join(budgets)} | {mean:+.4f} | "
              f"{worst[1]} {worst[0]:+.4f} | {len(outside)}{' (' + ', '.join(sorted(outside)) + ')' if outside else ''} | "
              f"{', '.join(commits)} | {wall:,.0f} |")
    if args.entries:
        for setting, e, h in outside_all:
            print(f"{setting}/{e['method']}: tuned {float(e['objective']):.4f}, held-out {h['mean']:.4f} "
                  f"[{h['low']:.4f}, {h['high']:.4f}] over seeds {h['seeds'][0]}-{h['seeds'][-1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
