"""The landing dashboard is generated from the chapters' published verdicts, never typed."""

from __future__ import annotations

import plotly.graph_objects as go
from test_verdicts import GOOD, grid

from unlearnlib.book import dashboard
from unlearnlib.studies import verdicts as V


def build(tmp_path, df) -> str:
    folder = tmp_path / "verdicts"
    V.publish(V.deep_unlearn_verdicts(df, df, "b"), "methods", str(folder))
    dashboard.publish_figure(go.Figure(go.Bar(x=["a"], y=[1])), folder=str(folder))
    out = dashboard.write_dashboard(folder, tmp_path / "dashboard.md", {"methods": "generated/methods.ipynb"},
                                    {"methods": "Deep Unlearn, reproduced"})
    return out.read_text()


def test_a_changed_result_row_changes_the_published_verdict(tmp_path):
    text = build(tmp_path, grid(GOOD))
    assert "**3 hold**" in text and "[Deep Unlearn, reproduced](generated/methods.ipynb)" in text
    assert "NG+ is the baseline to beat" in text and "Plotly.newPlot('unlearnlib-headline'" in text
    worse = grid(GOOD)
    worse.loc[worse["method"] == "ngplus", ["retain_acc", "val_acc"]] -= 0.5
    text = build(tmp_path, worse)
    row = next(line for line in text.splitlines() if line.startswith("| NG+ is the baseline to beat"))
    assert V.FAILS in row and "**2 hold**" in text


def test_publishing_needs_a_folder(monkeypatch):
    monkeypatch.delenv(V.PUBLISH_ENV, raising=False)
    assert V.publish([], "x") is None and dashboard.publish_figure(go.Figure()) is None
    assert "No chapter published a verdict" in dashboard.dashboard_markdown([], {})
