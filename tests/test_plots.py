import math
import struct

import pytest

pytest.importorskip("matplotlib")

from matplotlib.colors import to_hex

from llmzero.metrics import names
from llmzero.metrics.store import MetricSeries, append_record
from llmzero.metrics.plots import (
    PLOT_METRICS,
    _metric_grid,
    _node_figure,
    _overlay_figure,
    _Run,
    plot_node_metrics,
    plot_overlay,
)

BLUE, GREEN = to_hex("tab:blue"), to_hex("tab:green")


def _records(n=30, offset=0, nan_grad_at=None, kl_spike_at=None, val_every=5, val_base=0.2):
    out = []
    for s in range(1, n + 1):
        r = {
            names.STEP: s,
            names.GLOBAL_STEP: s + offset,
            names.REWARD_MEAN: 0.1 + 0.01 * s,
            names.KL: 5.0 if s == kl_spike_at else 0.001 * s,
            names.ENTROPY: 1.0 - 0.01 * s,
            names.GRAD_NORM: float("nan") if s == nan_grad_at else 0.5,
            names.RESPONSE_LENGTH: 200.0 + s,
            names.LR: 1e-5,
        }
        if s % val_every == 0:
            r[names.VAL_SCORE] = val_base + 0.01 * s - (0.05 if s == n else 0.0)
        out.append(r)
    return out


# metrics the synthetic records carry, in grid order (no clip_ratio, no response clip ratio)
PRESENT = [names.VAL_SCORE, names.REWARD_MEAN, names.KL, names.ENTROPY, names.GRAD_NORM,
           names.RESPONSE_LENGTH, names.LR]


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [fig.get_suptitle()]


def test_plot_metrics_are_the_nine_canonical_ones():
    assert PLOT_METRICS == (names.VAL_SCORE, names.REWARD_MEAN, names.KL, names.ENTROPY, names.CLIP_RATIO,
                            names.GRAD_NORM, names.RESPONSE_LENGTH, names.RESPONSE_CLIP_RATIO, names.LR)


def test_node_plot_writes_compact_png_round_trip_through_jsonl(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for r in _records(nan_grad_at=12, kl_spike_at=17):
        append_record(path, r)  # nan goes through json as NaN, as the phases write it
    metrics = MetricSeries.load(path)
    out = plot_node_metrics(metrics, tmp_path / "plots" / "node_3.png", title="node 3")
    assert out == tmp_path / "plots" / "node_3.png"
    w, h = _png_size(out)
    assert 400 <= w <= 1000 and 300 <= h <= 800, (w, h)
    assert [p.name for p in out.parent.iterdir()] == ["node_3.png"]  # no temp file left behind


def test_node_grid_axes_titles_best_val_and_non_finite_note():
    metrics = MetricSeries(_records(nan_grad_at=12, kl_spike_at=17))
    fig = _metric_grid([_Run(metrics, "tab:blue")], title="node 3", step_key=names.STEP)
    assert [ax.get_title() for ax in fig.axes] == PRESENT
    val_ax = fig.axes[0]
    # the val curve is drawn with markers, and the best point (step 25, not the dip at 30) is starred
    assert val_ax.get_lines()[0].get_marker() == "o"
    star = [ln for ln in val_ax.get_lines() if ln.get_marker() == "*"]
    assert len(star) == 1 and list(star[0].get_xdata()) == [25]
    assert math.isclose(star[0].get_ydata()[0], 0.45)
    # kl spike is drawn, not clipped away
    kl_line = fig.axes[PRESENT.index(names.KL)].get_lines()[0]
    assert max(kl_line.get_ydata()) == 5.0
    # nan dropped from the grad_norm line and said in words on that subplot only
    grad_ax = fig.axes[PRESENT.index(names.GRAD_NORM)]
    xs = list(grad_ax.get_lines()[0].get_xdata())
    assert 12 not in xs and len(xs) == 29
    assert any("non-finite at step 12" in t.get_text() for t in grad_ax.texts)
    assert all("non-finite" not in t.get_text() for ax in fig.axes if ax is not grad_ax for t in ax.texts)


def test_titles_name_best_val():
    fig = _node_figure(MetricSeries(_records()), title="node 3")
    assert fig.get_suptitle() == "node 3 — val 0.45 @ step 25"
    no_val = [{names.STEP: 1, names.KL: 0.1}]
    assert _node_figure(MetricSeries(no_val), title="node 4").get_suptitle() == "node 4"
    fig = _overlay_figure(MetricSeries(_records(offset=20)), MetricSeries(_records(n=40, val_base=0.3)),
                          title="node 7")
    assert fig.get_suptitle() == ("node 7 — running val 0.45 @ step 45  |  best completed val 0.65 @ step 35")  # tie with 40: earliest
    fig = _overlay_figure(MetricSeries(no_val), None)
    assert fig.get_suptitle() == "running no val yet"


def test_missing_metrics_skipped_and_small_grid_is_shorter(tmp_path):
    recs = [{names.STEP: s, names.GLOBAL_STEP: s, names.KL: 0.01 * s, "custom/thing": 1.0} for s in range(1, 6)]
    fig = _metric_grid([_Run(MetricSeries(recs), "tab:blue")])
    assert [ax.get_title() for ax in fig.axes] == [names.KL]
    out = plot_node_metrics(MetricSeries(recs), tmp_path / "kl.png")
    w, h = _png_size(out)
    assert w <= 1000 and h < 400  # one row only: fewer image tokens


def test_empty_series_returns_none_and_writes_nothing(tmp_path):
    assert plot_node_metrics(MetricSeries(), tmp_path / "a.png") is None
    only_other = MetricSeries([{names.STEP: 1, "custom": 1.0}])
    assert plot_node_metrics(only_other, tmp_path / "b.png") is None
    assert plot_overlay(MetricSeries(), None, tmp_path / "c.png") is None
    assert not list(tmp_path.iterdir())


def test_all_non_finite_metric_still_shown():
    recs = [{names.STEP: s, names.GRAD_NORM: float("inf")} for s in (3, 4)]
    fig = _metric_grid([_Run(MetricSeries(recs), "tab:blue")])
    assert [ax.get_title() for ax in fig.axes] == [names.GRAD_NORM]
    assert any("non-finite at step 3 (2 pts)" in t for t in _texts(fig))


def test_overlay_colours_global_steps_and_fallback(tmp_path):
    # incumbent: a completed 40-step path; current: a child resumed at global step 20
    incumbent = MetricSeries(_records(n=40, offset=0, val_base=0.3))
    current_recs = _records(n=30, offset=20, nan_grad_at=12)
    del current_recs[0][names.GLOBAL_STEP]  # an old record without global_step falls back to step
    current = MetricSeries(current_recs)

    runs = [_Run(current, "tab:blue", "running"), _Run(incumbent, "tab:green", "best completed")]
    fig = _metric_grid(runs, step_key=names.GLOBAL_STEP)
    assert [ax.get_title() for ax in fig.axes] == PRESENT
    for ax in fig.axes:
        colours = {to_hex(ln.get_color()) for ln in ax.get_lines()}
        assert {BLUE, GREEN} <= colours
    reward_ax = fig.axes[PRESENT.index(names.REWARD_MEAN)]
    green = [ln for ln in reward_ax.get_lines() if ln.get_label() == "best completed"]
    blue = [ln for ln in reward_ax.get_lines() if ln.get_label() == "running"]
    assert to_hex(green[0].get_color()) == GREEN and to_hex(blue[0].get_color()) == BLUE
    assert list(green[0].get_xdata()) == list(range(1, 41))
    assert list(blue[0].get_xdata()) == [1] + list(range(22, 51))
    # legend once, on the figure, not per subplot
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["running", "best completed"]
    # the non-finite note names the run and the global step
    assert any("running: non-finite at step 32" in t for t in _texts(fig))

    out = plot_overlay(current, incumbent, tmp_path / "overlay.png", title="node 7")
    w, h = _png_size(out)
    assert 400 <= w <= 1000 and 300 <= h <= 800, (w, h)


def test_overlay_metric_drawn_if_either_run_has_it_and_incumbent_optional(tmp_path):
    current = MetricSeries([{names.STEP: s, names.GLOBAL_STEP: s + 10, names.KL: 0.1} for s in range(1, 4)])
    incumbent = MetricSeries([{names.STEP: s, names.GLOBAL_STEP: s, names.ENTROPY: 1.0} for s in range(1, 4)])
    fig = _metric_grid([_Run(current, "tab:blue", "running"), _Run(incumbent, "tab:green", "best")],
                       step_key=names.GLOBAL_STEP)
    assert [ax.get_title() for ax in fig.axes] == [names.KL, names.ENTROPY]
    assert plot_overlay(current, None, tmp_path / "solo.png") is not None


def test_a_damaged_line_in_the_middle_of_a_metrics_file_loses_nothing_after_it(tmp_path):
    # One garbage line used to end the read there: the agents diagnosed from a truncated history.
    path = tmp_path / "metrics.jsonl"
    for step in range(1, 31):
        append_record(path, {names.STEP: step, names.VAL_SCORE: step / 40})
        if step == 5:
            with open(path, "a") as fh:
                fh.write("\x00\x00 not json at all\n[1, 2]\n")
    with open(path, "a") as fh:
        fh.write('{"step": 31, "val/sc')  # a torn last line: no damage to report
    series = MetricSeries.load(path)
    assert series.last_step() == 30 and series.best_val() == (30 / 40, 30)
    assert series.damaged_lines == [6, 7]

    from llmzero.agents.llm.render import summaries_text
    assert "2 damaged line(s), skipped" in summaries_text(series)
