"""Unit tests of actionzs.events: smoothing, window cells and turning window values into events."""

from __future__ import annotations


import numpy as np
import pytest

from actionzs.errors import InvalidInputError
from actionzs.events import EventOptions, find_events, moving_average, window_cells
from actionzs.sampling import Span, windows

def options(**kw) -> EventOptions:
    return EventOptions(**kw)


def one_label(values) -> np.ndarray:
    return np.asarray(values, np.float64)[:, None]


# -- moving_average ------------------------------------------------------------------------------


def test_moving_average_length_one_is_identity():
    values = np.array([[0.1, 0.9], [0.5, 0.2], [0.3, 0.3]])
    assert np.array_equal(moving_average(values, 1), values)


def test_moving_average_odd_length_is_centred_and_edges_use_existing_windows():
    values = one_label([0.0, 3.0, 6.0, 0.0, 9.0])
    got = moving_average(values, 3)[:, 0]
    expected = [(0 + 3) / 2, (0 + 3 + 6) / 3, (3 + 6 + 0) / 3, (6 + 0 + 9) / 3, (0 + 9) / 2]
    np.testing.assert_allclose(got, expected)


def test_moving_average_even_length_and_each_column_alone():
    values = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    got = moving_average(values, 2)
    # pad (0, 1): window i averages rows i and i+1; the last row has only itself
    np.testing.assert_allclose(got[:, 0], [1.5, 2.5, 3.5, 4.0])
    np.testing.assert_allclose(got[:, 1], [15.0, 25.0, 35.0, 40.0])
    assert got.shape == values.shape


def test_moving_average_longer_than_the_series_is_the_mean():
    values = one_label([1.0, 2.0, 6.0])
    np.testing.assert_allclose(moving_average(values, 7)[:, 0], [3.0, 3.0, 3.0])


def test_moving_average_passes_over_a_frameless_window_and_leaves_it_frameless():
    values = np.array([[1.0, 10.0], [np.nan, np.nan], [3.0, 30.0], [5.0, 50.0]])
    smoothed = moving_average(values, 3)
    assert np.isnan(smoothed[1]).all()  # nothing was seen there: nothing is made up
    np.testing.assert_allclose(smoothed[[0, 2, 3]], [[1.0, 10.0], [4.0, 40.0], [4.0, 40.0]])  # the NaN counts for nothing
    one_label_only = np.array([[1.0, 10.0], [np.nan, 20.0], [3.0, 30.0], [5.0, 50.0]])
    smoothed = moving_average(one_label_only, 3)
    assert np.isnan(smoothed[1, 0]) and not np.isnan(smoothed[:, 1]).any()
    np.testing.assert_allclose(smoothed[:, 1], [15.0, 20.0, 100 / 3, 40.0])  # each label counts its own windows
    np.testing.assert_allclose(smoothed[[0, 2, 3], 0], [1.0, 4.0, 4.0])


def test_moving_average_keeps_a_constant_series():
    values = np.full((6, 3), 0.25)
    np.testing.assert_allclose(moving_average(values, 4), values)


# -- window_cells --------------------------------------------------------------------------------


def test_window_cells_of_overlapping_windows_meet_halfway_between_centres():
    spans = windows(10.0, 2.0, 1.0)  # [0,2) [1,3) ... [8,10): centres 1..9
    cells = window_cells(spans, 10.0)
    assert cells.shape == (9, 2)
    np.testing.assert_allclose(cells[:, 0], [0.0, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5])
    np.testing.assert_allclose(cells[:, 1], [1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 10.0])


def test_window_cells_tile_the_video_without_gaps():
    spans = windows(7.3, 3.0, 0.7)
    cells = window_cells(spans, 7.3)
    assert cells[0, 0] == 0.0 and cells[-1, 1] == pytest.approx(7.3)
    np.testing.assert_allclose(cells[1:, 0], cells[:-1, 1])
    assert np.all(cells[:, 1] > cells[:, 0])


def test_window_cells_of_equal_non_overlapping_windows_are_the_windows():
    spans = windows(6.0, 2.0, 2.0)
    np.testing.assert_allclose(window_cells(spans, 6.0), [[0, 2], [2, 4], [4, 6]])


def test_window_cells_of_a_clipped_last_window_start_where_it_starts():
    spans = windows(5.0, 2.0, 2.0)  # [0,2) [2,4) [4,5)
    assert spans[-1] == Span(4.0, 5.0)
    np.testing.assert_allclose(window_cells(spans, 5.0), [[0, 2], [2, 4], [4, 5]])


def test_window_cells_single_window_is_the_whole_video():
    np.testing.assert_allclose(window_cells([Span(0.0, 1.3)], 1.3), [[0.0, 1.3]])


# -- find_events ---------------------------------------------------------------------------------

SPANS = windows(10.0, 2.0, 1.0)  # 9 windows, cells [0,1.5] [1.5,2.5] ... [8.5,10]


def test_find_events_thresholds_each_label_and_reports_cells_and_mean_score():
    values = np.zeros((9, 2))
    values[0:2, 0] = [0.9, 0.7]
    values[4:7, 1] = [0.6, 0.8, 1.0]
    values[8, 0] = 0.49  # below the threshold
    events = find_events(SPANS, values, ["walk", "run"], 10.0, options(threshold=0.5))
    assert events == [
        {"label": "walk", "start": 0.0, "end": 2.5, "score": pytest.approx(0.8), "threshold": 0.5},
        {"label": "run", "start": 4.5, "end": 7.5, "score": pytest.approx(0.8), "threshold": 0.5},
    ]


def test_find_events_value_equal_to_threshold_is_on():
    values = one_label([0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    events = find_events(SPANS, values, ["a"], 10.0, options(threshold=0.5))
    assert [(e["start"], e["end"]) for e in events] == [(2.5, 3.5)]


def test_find_events_nothing_above_threshold_gives_no_events():
    values = np.full((9, 3), 0.2)
    assert find_events(SPANS, values, ["a", "b", "c"], 10.0, options(threshold=0.5)) == []


def test_find_events_whole_video_on_is_one_event_covering_it():
    values = np.full((9, 1), 0.75)
    events = find_events(SPANS, values, ["a"], 10.0, options(threshold=0.5))
    assert events == [{"label": "a", "start": 0.0, "end": 10.0, "score": pytest.approx(0.75), "threshold": 0.5}]


def test_find_events_threshold_applies_to_the_values_given():
    """`find_events` thresholds whatever it is given (probabilities or raw cosines); a threshold
    on a similarity scale picks out the windows above it."""
    sims = one_label([0.1, 0.31, 0.32, 0.1, 0.1, 0.1, 0.1, 0.1, 0.35])
    events = find_events(SPANS, sims, ["a"], 10.0, options(threshold=0.3, measure="similarity"))
    assert [(e["start"], e["end"]) for e in events] == [(1.5, 3.5), (8.5, 10.0)]


def test_find_events_max_gap_merges_close_runs_and_leaves_the_gap_out_of_the_score():
    values = one_label([0.9, 0.9, 0.1, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0])
    apart = find_events(SPANS, values, ["a"], 10.0, options(threshold=0.5))
    assert [(e["start"], e["end"]) for e in apart] == [(0.0, 2.5), (3.5, 5.5)]  # gap of 1.0 s
    assert find_events(SPANS, values, ["a"], 10.0, options(threshold=0.5, max_gap=0.99)) == apart
    merged = find_events(SPANS, values, ["a"], 10.0, options(threshold=0.5, max_gap=1.0))
    # the bridged window (0.1) is part of the event's time, not of its score
    assert merged == [{"label": "a", "start": 0.0, "end": 5.5, "score": pytest.approx(0.9), "threshold": 0.5}]


def test_find_events_a_frameless_window_is_never_on_and_is_bridged_like_a_gap():
    values = one_label([0.9, 0.9, np.nan, 0.9, 0.9, 0.0, 0.0, 0.0, 0.0])
    apart = find_events(SPANS, values, ["a"], 10.0, options(threshold=0.5))
    assert [(e["start"], e["end"]) for e in apart] == [(0.0, 2.5), (3.5, 5.5)]
    assert find_events(SPANS, values, ["a"], 10.0, options(threshold=0.0, smooth=3))[0]["end"] == 2.5
    merged = find_events(SPANS, values, ["a"], 10.0, options(threshold=0.5, max_gap=1.0))
    assert merged == [{"label": "a", "start": 0.0, "end": 5.5, "score": pytest.approx(0.9), "threshold": 0.5}]


def test_find_events_max_gap_does_not_merge_different_labels():
    values = np.zeros((9, 2))
    values[0:2, 0] = 0.9
    values[3:5, 1] = 0.9
    events = find_events(SPANS, values, ["a", "b"], 10.0, options(threshold=0.5, max_gap=5.0))
    assert [(e["label"], e["start"], e["end"]) for e in events] == [("a", 0.0, 2.5), ("b", 3.5, 5.5)]


def test_find_events_min_duration_drops_short_events_only():
    values = one_label([0.0, 0.9, 0.0, 0.0, 0.9, 0.9, 0.9, 0.0, 0.0])  # 1 s and 3 s long
    kept_all = find_events(SPANS, values, ["a"], 10.0, options(min_duration=1.0))
    assert [(e["start"], e["end"]) for e in kept_all] == [(1.5, 2.5), (4.5, 7.5)]
    long_only = find_events(SPANS, values, ["a"], 10.0, options(min_duration=1.5))
    assert [(e["start"], e["end"]) for e in long_only] == [(4.5, 7.5)]
    assert find_events(SPANS, values, ["a"], 10.0, options(min_duration=3.01)) == []


def test_find_events_min_duration_applies_after_merging():
    values = one_label([0.9, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # cells [0,1.5] and [2.5,3.5]
    assert find_events(SPANS, values, ["a"], 10.0, options(min_duration=2.0)) == []
    merged = find_events(SPANS, values, ["a"], 10.0, options(min_duration=2.0, max_gap=1.0))
    assert [(e["start"], e["end"]) for e in merged] == [(0.0, 3.5)]


def test_find_events_smoothing_removes_a_one_window_spike_but_keeps_a_run():
    spike = one_label([0, 0, 0, 1.0, 0, 0, 0, 0, 0])
    assert len(find_events(SPANS, spike, ["a"], 10.0, options(threshold=0.5))) == 1
    assert find_events(SPANS, spike, ["a"], 10.0, options(threshold=0.5, smooth=3)) == []
    run = one_label([0, 0, 0, 1.0, 1.0, 1.0, 0, 0, 0])
    events = find_events(SPANS, run, ["a"], 10.0, options(threshold=0.5, smooth=3))
    # smoothed: windows 2 and 6 reach 1/3, windows 3..5 reach 2/3, 1, 2/3
    assert [(e["start"], e["end"]) for e in events] == [(3.5, 6.5)]
    # the score is the mean of the smoothed values compared with the threshold: 2/3, 1, 2/3
    assert events[0]["score"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


def test_find_events_smoothing_fills_a_one_window_dip():
    values = one_label([0.9, 0.9, 0.9, 0.2, 0.9, 0.9, 0.9, 0.0, 0.0])
    assert len(find_events(SPANS, values, ["a"], 10.0, options(threshold=0.5))) == 2
    events = find_events(SPANS, values, ["a"], 10.0, options(threshold=0.5, smooth=3))
    assert [(e["start"], e["end"]) for e in events] == [(0.0, 7.5)]  # window 6 smooths to 0.6, window 7 to 0.3


def test_find_events_are_in_time_order_then_best_score_first():
    values = np.zeros((9, 3))
    values[5:7, 0] = 0.9
    values[0:2, 1] = 0.6
    values[0:2, 2] = 0.8
    events = find_events(SPANS, values, ["late", "early-weak", "early-strong"], 10.0, options())
    assert [e["label"] for e in events] == ["early-strong", "early-weak", "late"]
    assert all(isinstance(e["start"], float) and isinstance(e["end"], float) for e in events)


def test_find_events_on_a_video_shorter_than_one_window():
    spans = windows(1.2, 2.0, 1.0)
    assert spans == [Span(0.0, 1.2)]
    events = find_events(spans, np.array([[0.7, 0.3]]), ["a", "b"], 1.2, options())
    assert events == [{"label": "a", "start": 0.0, "end": 1.2, "score": pytest.approx(0.7), "threshold": 0.5}]


# -- EventOptions --------------------------------------------------------------------------------


def test_event_options_defaults():
    opts = EventOptions()
    assert (opts.smooth, opts.threshold, opts.measure, opts.max_gap, opts.min_duration) == (1, 0.5, "score", 0.0, 0.0)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"smooth": 0}, "smooth"),
        ({"smooth": -2}, "smooth"),
        ({"smooth": 2.5}, "smooth"),
        ({"smooth": "3"}, "smooth"),
        ({"measure": "probability"}, "'probability'"),
        ({"max_gap": -0.5}, "max_gap"),
        ({"min_duration": -1.0}, "min_duration"),
    ],
)
def test_event_options_rejects_bad_values(kwargs, words):
    with pytest.raises(InvalidInputError) as info:
        options(**kwargs)
    assert isinstance(info.value, ValueError)
    assert words in str(info.value)


@pytest.mark.parametrize("kwargs", [{"max_gap": "1"}, {"min_duration": None}, {"threshold": "high"}, {"threshold": float("nan")}])
def test_event_options_rejects_non_numbers(kwargs):
    with pytest.raises(InvalidInputError):
        options(**kwargs)


def test_event_options_accepts_similarity_measure_and_valid_values():
    opts = options(smooth=3, threshold=0.25, measure="similarity", max_gap=1.5, min_duration=2.0)
    assert opts.measure == "similarity" and opts.smooth == 3 and opts.max_gap == 1.5


# -- an event's score and its threshold ----------------------------------------------------------


def test_find_events_score_is_never_below_its_threshold():
    """Whatever the smoothing, gaps and durations, each event's score is the mean of the smoothed
    values that reached its threshold over its span, and so at least that threshold."""
    rng = np.random.default_rng(7)
    spans = windows(30.0, 2.0, 1.0)
    for trial in range(200):
        values = rng.random((len(spans), 3)) ** rng.uniform(0.3, 3.0)
        opts = options(
            smooth=int(rng.integers(1, 6)), threshold=float(rng.uniform(0.2, 0.8)),
            max_gap=float(rng.choice([0.0, 1.0, 3.0])), min_duration=float(rng.choice([0.0, 2.0])),
        )
        smoothed = moving_average(values, opts.smooth)
        cells = window_cells(spans, 30.0)
        for event in find_events(spans, values, ["a", "b", "c"], 30.0, opts):
            m = ["a", "b", "c"].index(event["label"])
            inside = (cells[:, 0] >= event["start"] - 1e-9) & (cells[:, 1] <= event["end"] + 1e-9)
            on = inside & (smoothed[:, m] >= opts.threshold)
            assert event["threshold"] == opts.threshold
            assert event["score"] >= event["threshold"], (trial, event)
            assert event["score"] == pytest.approx(smoothed[on, m].mean())


def test_find_events_bridged_gap_would_have_pulled_the_score_below_the_threshold():
    values = one_label([0.6, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # the old mean over the span: 0.4
    [event] = find_events(SPANS, values, ["a"], 10.0, options(threshold=0.5, max_gap=1.0))
    assert (event["start"], event["end"]) == (0.0, 3.5) and event["score"] == pytest.approx(0.6)


def write_thresholds(path, thresholds: dict, measure: str = "score", labels=None) -> str:
    from actionzs.calibration import Thresholds

    made = Thresholds("tiny", "fingerprint-0", measure, tuple(labels or thresholds), thresholds)
    path.write_text(made.to_yaml())
    return str(path)


def test_find_events_uses_each_labels_own_threshold_and_the_global_one_for_the_others(tmp_path):
    values = np.zeros((9, 3))
    values[0:2, 0] = 0.35  # "walk": on at its own 0.3, not at the global 0.5
    values[3:5, 1] = 0.45  # "run": off at its own 0.6 although above the global 0.4
    values[6:8, 2] = 0.45  # "sit": not in the file, the global 0.4
    path = write_thresholds(tmp_path / "t.yaml", {"walk": 0.3, "run": 0.6})
    opts = options(threshold=0.4, thresholds=path)
    events = find_events(SPANS, values, ["walk", "run", "sit"], 10.0, opts)
    assert [(e["label"], e["threshold"]) for e in events] == [("walk", 0.3), ("sit", 0.4)]
    assert all(e["score"] >= e["threshold"] for e in events)
    assert opts.described(["walk", "run", "sit"]) == {"measure": "score", "threshold": 0.4, "labels": {"walk": 0.3, "run": 0.6}}
    assert options(threshold=0.4).described(["walk"]) == {"measure": "score", "threshold": 0.4}


def test_event_options_refuse_a_thresholds_file_for_another_measure(tmp_path):
    path = write_thresholds(tmp_path / "sim.yaml", {"walk": 0.25}, measure="similarity")
    with pytest.raises(InvalidInputError, match=r"sim\.yaml: holds thresholds on similarity.*--measure similarity"):
        options(thresholds=path)
    assert options(thresholds=path, measure="similarity").threshold_of("walk") == 0.25


@pytest.mark.parametrize("text, words", [
    (None, "No such file"),
    ("thresholds: [1, 2]\nmodel: m\nfingerprint: f\nmeasure: score\n", "map each label to a number"),
    ("thresholds: {a: high}\nmodel: m\nfingerprint: f\nmeasure: score\n", "threshold of 'a' must be a number"),
    ("thresholds: {a: 0.3}\nmodel: m\nfingerprint: f\nmeasure: loud\n", "measure must be score or similarity"),
    ("thresholds: {1: 0.3}\nmodel: m\nfingerprint: f\nmeasure: score\n", "1 is not a label name; quote it"),
    ("thresholds: {a: 0.3}\nmeasure: score\n", "model must be a text"),
    ("thresholds: {a: 0.3}\nmodel: m\nfingerprint: f\nmeasure: score\ncolour: red\n", "unknown key(s) colour"),
    ("a: &x [1]\nb: *x\n", "aliases"),
    ("- 1\n- 2\n", "not a thresholds file"),
    ("thresholds: {a: [\n", "not valid YAML"),
])
def test_event_options_refuse_a_bad_thresholds_file_naming_it(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InvalidInputError) as info:
        options(thresholds=str(path))
    assert str(path) in str(info.value) and words in str(info.value)
