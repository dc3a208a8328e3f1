"""The scorecard's rendering (:mod:`unlearnlib.book.scorecard_view`): the heatmap, the
sortable HTML table and the Markdown table on constructed draws, and every sentence the
chapter generates from its numbers (issue 35: the notebook's text and tables moved here)."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scorecard_draws import constructed_draws

from unlearnlib.book import scorecard_view as view
from unlearnlib.studies import scorecard as sc

_draws = constructed_draws


# --------------------------------------------------------------------------- figures and tables


def _frame():
    d, r = _draws(5, shallow_mia=0.5)
    return sc.scorecard_frame(d, sc.scores(d), r, {"shallow": "defaults"})


def test_html_table_is_sortable_coloured_and_has_one_script():
    text = view.html_table(_frame(), table_id="sc-test")
    assert text.count("<script>") == 1 and "getElementById('sc-test')" in text
    assert text.count("<tr>") == 5  # header + 4 methods
    green = view.cell_color(1.0)
    assert f"background:{green}" in text  # the retrained model's own cells
    assert view.cell_color(math.nan) == view.GREY and view.cell_color(0.0) != green


def test_ct_on_a_1d_model_is_named_as_the_extension_in_the_table_and_the_figure():
    """Issue 30: on cnn1d the scorecard's rows name CT "ct (1-D extension)"; on a 2-D CNN "ct"."""
    d, r = _draws(5, shallow_mia=0.5)
    d = dataclasses.replace(d, methods=["original", "retrain", "ct", "msg"])
    for model, want in (("cnn1d", "ct (1-D extension)"), ("small_cnn", "ct")):
        frame = sc.scorecard_frame(d, sc.scores(d), r, model=model)
        assert list(view.heatmap_figure(frame).data[0].y) == ["original", "retrain", want, "msg"]
        assert f"<b>{want}</b>" in view.html_table(frame)


def test_heatmap_marks_passes_and_unresolved_columns():
    fig = view.heatmap_figure(_frame())
    h = fig.data[0]
    tests = list(h.x)
    retrain = list(h.y).index("retrain")
    assert h.text[retrain][tests.index("loss-MIA")].startswith("✓")
    assert h.text[retrain][tests.index("KLOM")] == "n/r"  # no KLOM values: unresolved
    assert "0 = original, 1 = retrained" in h.hovertext[0][0]


def test_heatmap_reads_at_a_glance():
    """Issue 34: colour is the distance from retraining (overshooting to 2 looks like staying
    at 0, never like the best), the text is clipped to the display scale with the raw value on
    hover, never "-0"; a test that reads the same for every model is left out and named; the
    utility mark is explained under the figure."""
    assert view.cell_color(2.0) == view.cell_color(0.0) and view.cell_color(3.0) == view.cell_color(-1.0)
    assert view.cell_color(1.0) not in (view.cell_color(0.0), view.cell_color(2.0))
    assert view.score_text(5.3) == ">3" and view.score_text(-11.0) == "<-1" and view.score_text(-0.0) == "0"
    assert view.score_text(0.004) == "0.004" and view._fmt(-0.0) == "0"
    frame = _frame()
    first = frame["test"].iloc[0]
    dead = frame.assign(value=np.where(frame["test"] == first, 11.5, frame["value"]))
    dead = dead.assign(keeps_utility=np.where(dead["method"] == "shallow", False, dead["keeps_utility"]))
    fig = view.heatmap_figure(dead)
    label = sc.test_of(first).label
    assert label not in list(fig.data[0].x) and len(fig.data[0].x) == frame["test"].nunique() - 1
    note = fig.layout.annotations[0].text
    assert f"left out, the same value for every model: {label}" in note
    assert f"{view.UTILITY_MARK}: the method loses more than 3% test accuracy" in note
    assert any(y.endswith(view.UTILITY_MARK) for y in fig.data[0].y)
    texts = [x for row in fig.data[0].text for x in row]
    assert not any(x.lstrip("✓ ").startswith("-0") for x in texts)
    assert fig.layout.xaxis.side == "bottom"  # the title never runs into the test names


def test_markdown_table_has_a_row_per_method():
    md = view.markdown_table(_frame())
    assert len(md.splitlines()) == 2 + 4 and "✓1" in md


# --------------------------------------------------------------------------- the chapter's text


HP = {"original": ({}, "reference"), "retrain": ({}, "reference"), "ft": ({"lr": 0.01}, "shipped (5 trials x 1 seed(s))"),
      "ga": ({}, "defaults")}


def test_plan_rules_and_hyperparameters_say_what_runs():
    text = view.plan_text(list(HP), HP, "3-12", registered=["original", "retrain", "ft", "ga", "scrub", "ssd"])
    assert text == ("2 methods and the two references on seeds 3-12: 1 with shipped tuned hyperparameters, 1 at "
                    "their defaults\n2 registered methods not run by this profile (for time): scrub, ssd")
    assert "\n" not in view.plan_text(list(HP), HP, "0", registered=list(HP))
    assert view.rules_markdown(0.1) == (
        "The rules in numbers: a method passes a test when $|s - 1| \\le 0.2$; a method losing more than 3 points of "
        "test accuracy against the retrained model passes no test; a claim needs at least 5 seeds; the poisoning "
        "test unlearns within 10% of the training compute.")
    table = view.hparams_text(HP)
    assert table.loc["ft", "hyperparameters"] == '{"lr":0.01}' and table.loc["ga", "hyperparameters"] == "defaults"
    assert table.loc["original", "from"] == "reference"


def test_run_lines_name_the_deeper_methods_shadows_and_poisons():
    rows = pd.DataFrame({"method": ["original", "retrain", "ga", "ft"] * 2})
    assert view.deeper_text(rows, list(HP), ["ft"], ["ft"]) == (
        "8 rows; 1 methods keep their utility: ft\nlost it (deeper tests not run): ga")
    assert view.deeper_text(rows, list(HP), [], ["ft", "ga"]).endswith("keep their utility: none\n"
                                                                       "lost it (deeper tests not run): none")
    shadows = SimpleNamespace(config=SimpleNamespace(k=4), pool=range(10), is_target=np.ones(6, bool),
                              in_masks=[np.ones(7, bool)], forget_masks=[np.ones(2, bool)])
    runner = SimpleNamespace(shadows=shadows, recipe=SimpleNamespace(epochs=15))
    assert view.shadows_text(runner, 4.6) == ("shadows: 4 splits, 10 population samples, 6 targets, 7 training and 2 "
                                              "forgotten samples per shadow, 15 epochs: 5 s")
    setting = sc.PoisonSetting(epochs=2, budget=0.1)
    assert view.poison_text(setting, sc.poison_methods(["ft", "ga"]), 2, 3.2) == (
        "poisoning: gaussian (2% poisons, eps 1.0) on mnist5k with an mlp, 2 seed(s), 2 methods at 10% of the "
        "training compute: 3 s")


def test_resolution_and_findings_are_read_from_the_frames():
    d, r = _draws(5, shallow_mia=0.5)
    text = view.resolution_text(r, ("klom",))
    unresolved = [sc.test_of(t).label for t, ok in zip(r.tests, r.resolved, strict=True) if not ok]
    assert text.splitlines() == ["tests whose original-retrained gap is not resolved at this budget: "
                                 + ", ".join(unresolved), "left out of the scorecard: KLOM (reason above)"]
    frame = sc.scorecard_frame(d, sc.scores(d), r)
    summary = sc.summaries(d, r)
    md = view.findings_markdown(summary, frame)
    # both pass the loss-MIA; "shallow" keeps U-LiRA's original value: a false sense of success
    assert md == ("- Pass every test: **honest**.\n- Pass the population loss-MIA: shallow, honest; of them, with a "
                  "false sense of success (they fail a deeper test): **shallow** (U-LiRA accuracy).")


def test_headline_figure_counts_methods_and_shown_tests_and_names_klom():
    d, r = _draws(5, shallow_mia=0.5)
    frame = sc.scorecard_frame(d, sc.scores(d), r)
    klom = sc.KlomResolution(False, 2.0, 1, 4, 11.51, 11.51, 9, "left out")
    fig = view.headline_figure(frame, r, "mnist1d, cnn1d, random:0.1", klom)
    assert fig.layout.title.text == (f"The scorecard: 2 methods x {len(r.tests)} tests (mnist1d, cnn1d, random:0.1; "
                                     "0 = original, 1 = retrained)")
    assert ("left out, KLOM: N = 2 models per side; its small-sample floor 11.51 is at its ceiling 11.51"
            in fig.layout.annotations[0].text)
    kept = view.headline_figure(frame, r, "x", dataclasses.replace(klom, keep=True))
    assert "left out, KLOM" not in kept.layout.annotations[0].text


def test_kendall_text_needs_enough_methods():
    few = pd.DataFrame({"mia_test": [0.1, 0.2], "ulira_accuracy": [0.3, 0.1]}, index=["a", "b"])
    assert not view.kendall_shown(few, sc.kendall_matrix(few))
    assert view.kendall_markdown(few, sc.kendall_matrix(few)) == (
        "2 utility-keeping method(s); Kendall's tau between two rankings of 2 moves in steps of 2: too few to compare "
        "the tests' rankings (this chapter draws the matrix from 5 methods on).")
    one = few.iloc[:1]
    assert view.kendall_markdown(one, sc.kendall_matrix(one)).startswith("1 utility-keeping method(s): too few")
    many = pd.DataFrame({"mia_test": [0.1, 0.2, 0.3, 0.4, 0.5], "ulira_accuracy": [0.5, 0.4, 0.3, 0.2, 0.1],
                         "forget_acc": [0.1, 0.2, 0.3, 0.5, 0.4]}, index=list("abcde"))
    tau = sc.kendall_matrix(many)
    assert view.kendall_shown(many, tau)
    assert view.kendall_markdown(many, tau) == ("Over 5 methods: Kendall's tau between the loss-MIA's ranking and the "
                                                "deeper tests' ranges from -1.00 to -1.00 (mean -1.00).")
    assert view.kendall_markdown(many[["mia_test", "forget_acc"]], sc.kendall_matrix(many[["mia_test", "forget_acc"]])) == ""


def test_cost_and_caveats_carry_their_numbers():
    assert view.cost_markdown("the budget", 61.4, 20.2, 6, 32, peak_gb=1.234) == (
        "Budget: the budget. Wall time 61 s (full-data rows and relearning 20 s), peak memory of this kernel "
        "1.23 GiB; store: 6 hits, 32 misses.")
    assert "peak memory of this kernel" in view.cost_markdown("b", 1, 1, 0, 0)
    text = view.caveats_markdown(15, 40, 0.5)
    assert text.startswith("Caveats: the shadows train for 15 epochs (the full-data models for 40) on 50% of $D_r$")
    from unlearnlib.evaluation.klom import small_sample_floor

    assert f"{small_sample_floor(sc.AUTHORS_N):.2f} at the authors' {sc.AUTHORS_N})" in text
    assert f"leaves {sc.KLOM_MIN_ROOM:.0%} of its range below its ceiling" in text


def test_rendering_lives_in_the_book_not_in_the_studies():
    """Issue 35: the studies package computes; its figures, HTML and Markdown are the book's."""
    for name in ("heatmap_figure", "kendall_figure", "html_table", "markdown_table", "hparams_text", "cell_color"):
        assert not hasattr(sc, name) and callable(getattr(view, name))
