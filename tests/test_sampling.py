"""Pure tests of actionzs.sampling: timelines, the samplers and window bookkeeping. Nothing decodes."""

from __future__ import annotations

import numpy as np
import pytest

from actionzs.sampling import Sample, Span, Timeline, at_fps, frames_in, snapped, uniform, windows

# 100 frames at 25 fps: frame i starts at i * 0.04 s and the video lasts 4 s.
CFR = Timeline.constant_rate(100, 25)

# A variable-frame-rate timeline: a slow start, a burst, then a long hold on the last frame.
VFR_PTS = np.array([0.0, 0.1, 0.5, 0.6, 0.62, 0.64, 2.0])
VFR = Timeline(VFR_PTS, 2.1)


def as_list(sample: Sample) -> list[int]:
    assert sample.indices.dtype == np.int64
    return sample.indices.tolist()


# -- Timeline ------------------------------------------------------------------------------------


def test_constant_rate_timeline_spaces_frames_one_over_fps():
    timeline = Timeline.constant_rate(5, 2.0)
    assert timeline.pts_seconds.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert timeline.duration == 2.5
    assert timeline.num_frames == 5
    assert repr(timeline) == "Timeline(frames=5, duration=2.500s)"


def test_constant_rate_ntsc():
    timeline = Timeline.constant_rate(120, 30000 / 1001)
    assert timeline.num_frames == 120
    assert timeline.duration == pytest.approx(4.004)
    assert timeline.pts_seconds[1] == pytest.approx(1001 / 30000)


@pytest.mark.parametrize(
    "pts, duration, message",
    [
        (np.array([]), 1.0, "at least one frame"),
        (np.zeros((2, 2)), 1.0, "at least one frame"),
        (np.array([0.0, 0.2, 0.1]), 1.0, "must not decrease"),
        (np.array([0.0, 0.5, 1.0]), 0.9, "ends before the last frame"),
    ],
)
def test_timeline_rejects_bad_times(pts, duration, message):
    with pytest.raises(ValueError, match=message):
        Timeline(pts, duration)


def test_timeline_allows_repeated_times_and_a_duration_equal_to_the_last_time():
    timeline = Timeline(np.array([0.0, 0.5, 0.5, 1.0]), 1.0)
    assert timeline.num_frames == 4


def test_frame_at_constant_rate_boundaries():
    # A frame is on screen from its own pts (inclusive) to the next frame's pts (exclusive).
    times = [0.0, 0.039, 0.04, 0.0799, 0.08, 1.0, 3.96, 3.999]
    assert CFR.frame_at(times).tolist() == [0, 0, 1, 1, 2, 25, 99, 99]


def test_frame_at_is_robust_to_float_rounding_at_frame_starts():
    # 0.1 * 3 == 0.30000000000000004 and 3 / 10 == 0.3 must both land on frame 3.
    timeline = Timeline.constant_rate(10, 10)
    assert timeline.frame_at([0.1 * 3, 3 / 10, 0.7]).tolist() == [3, 3, 7]


def test_frame_at_clamps_to_first_and_last_frame():
    assert CFR.frame_at([-5.0, -0.001, 4.0, 100.0]).tolist() == [0, 0, 99, 99]


def test_frame_at_scalar_returns_index():
    assert int(CFR.frame_at(1.0)) == 25


def test_frame_at_variable_frame_rate_picks_the_frame_on_screen():
    times = [0.05, 0.3, 0.55, 0.61, 0.63, 0.65, 1.99, 2.05]
    assert VFR.frame_at(times).tolist() == [0, 1, 2, 3, 4, 5, 5, 6]


def test_frame_at_repeated_times_pick_the_last_frame_with_that_time():
    timeline = Timeline(np.array([0.0, 0.5, 0.5, 1.0]), 1.5)
    assert timeline.frame_at([0.5, 0.7]).tolist() == [2, 2]


# -- Span ----------------------------------------------------------------------------------------


def test_span_must_have_positive_length():
    assert Span(1.0, 2.5) == Span(1.0, 2.5)
    with pytest.raises(ValueError, match="must be after its start"):
        Span(2.0, 2.0)
    with pytest.raises(ValueError, match="must be after its start"):
        Span(3.0, 2.0)


# -- uniform -------------------------------------------------------------------------------------


def test_uniform_takes_the_centres_of_equal_sub_spans():
    # Sub-spans of 1 s: centres 0.5, 1.5, 2.5, 3.5 s -> frames 12, 37, 62, 87 (pts 0.48 ...).
    sample = uniform(CFR, 4)
    assert as_list(sample) == [12, 37, 62, 87]
    assert sample.pts_seconds == pytest.approx([0.48, 1.48, 2.48, 3.48])
    assert len(sample) == 4


def test_uniform_eight_frames():
    assert as_list(uniform(CFR, 8)) == [6, 18, 31, 43, 56, 68, 81, 93]


def test_uniform_one_frame_is_the_middle():
    assert as_list(uniform(CFR, 1)) == [50]
    assert as_list(uniform(Timeline.constant_rate(1, 25), 1)) == [0]


def test_uniform_every_frame_when_num_equals_frame_count():
    assert as_list(uniform(CFR, 100)) == list(range(100))


def test_uniform_more_frames_than_the_video_has_repeats_frames():
    sample = uniform(Timeline.constant_rate(3, 1), 6)
    assert as_list(sample) == [0, 0, 1, 1, 2, 2]


def test_uniform_sub_span():
    # [1, 2) in 4 parts: centres 1.125, 1.375, 1.625, 1.875 s.
    assert as_list(uniform(CFR, 4, start=1.0, end=2.0)) == [28, 34, 40, 46]


def test_uniform_end_past_the_video_is_clipped_to_its_duration():
    # [1, 4) in 4 parts: centres 1.375, 2.125, 2.875, 3.625 s.
    assert as_list(uniform(CFR, 4, start=1.0, end=10.0)) == [34, 53, 71, 90]
    assert as_list(uniform(CFR, 4, start=1.0, end=None)) == [34, 53, 71, 90]


def test_uniform_variable_frame_rate_samples_by_time_not_by_index():
    # Centres 0.2625, 0.7875, 1.3125, 1.8375 s: the burst of frames 2..5 gets one sample only.
    assert as_list(uniform(VFR, 4)) == [1, 5, 5, 5]


@pytest.mark.parametrize("num", [0, -3])
def test_uniform_rejects_num_below_one(num):
    with pytest.raises(ValueError, match="num must be at least 1"):
        uniform(CFR, num)


@pytest.mark.parametrize("start, end", [(2.0, 2.0), (3.0, 1.0), (-0.5, 1.0), (4.0, None), (5.0, 6.0)])
def test_uniform_rejects_empty_or_outside_spans(start, end):
    with pytest.raises(ValueError, match="empty or outside the video"):
        uniform(CFR, 2, start=start, end=end)


# -- at_fps --------------------------------------------------------------------------------------


def test_at_fps_takes_the_centre_of_each_step():
    # 1 fps over 4 s: 0.5, 1.5, 2.5, 3.5 s.
    sample = at_fps(CFR, 1)
    assert as_list(sample) == [12, 37, 62, 87]
    assert sample.pts_seconds == pytest.approx([0.48, 1.48, 2.48, 3.48])


def test_at_fps_fractional_rate():
    # 2.5 fps: steps of 0.4 s, centres 0.2, 0.6, ..., 3.8 s.
    assert as_list(at_fps(CFR, 2.5)) == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]


def test_at_fps_at_the_video_rate_takes_every_frame():
    assert as_list(at_fps(CFR, 25)) == list(range(100))


@pytest.mark.parametrize("rate", [26, 60, 1000])
def test_at_fps_above_the_video_rate_drops_duplicates(rate):
    sample = at_fps(CFR, rate)
    assert as_list(sample) == list(range(100))
    assert sample.pts_seconds == pytest.approx(CFR.pts_seconds)


def test_at_fps_above_rate_on_variable_frame_rate_keeps_each_frame_once():
    assert as_list(at_fps(VFR, 100)) == [0, 1, 2, 3, 4, 5, 6]


def test_at_fps_variable_frame_rate_picks_frames_at_real_times():
    # 2 fps over 2.1 s: 0.25, 0.75, 1.25, 1.75, 2.25 s -> 1, 5, 5, 5, 6 -> duplicates dropped.
    assert as_list(at_fps(VFR, 2)) == [1, 5, 6]


def test_at_fps_sub_span_aligned_to_steps():
    # [1, 2) at 2 fps: 1.25, 1.75 s.
    sample = at_fps(CFR, 2, start=1.0, end=2.0)
    assert as_list(sample) == [31, 43]
    assert sample.pts_seconds == pytest.approx([1.24, 1.72])


def test_at_fps_sub_span_end_clipped_to_duration():
    assert as_list(at_fps(CFR, 1, start=2.0, end=99.0)) == [62, 87]


def test_at_fps_slow_rate_on_a_whole_video_still_gives_one_frame():
    assert len(at_fps(CFR, 0.1)) == 1


@pytest.mark.parametrize("rate, start, end", [(1, 0.0, 2.2), (0.1, 1.0, 2.0), (2, 0.0, 1.1)])
def test_at_fps_sub_span_returns_only_frames_inside_the_span(rate, start, end):
    sample = at_fps(CFR, rate, start=start, end=end)
    assert len(sample) >= 1
    assert np.all(sample.pts_seconds < end), sample.pts_seconds
    assert np.all(sample.indices >= CFR.frame_at(start))


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_at_fps_rejects_bad_rates(rate):
    with pytest.raises(ValueError, match="rate must be a positive number"):
        at_fps(CFR, rate)


def test_at_fps_rejects_bad_spans():
    with pytest.raises(ValueError, match="empty or outside the video"):
        at_fps(CFR, 1, start=4.0)
    with pytest.raises(ValueError, match="empty or outside the video"):
        at_fps(CFR, 1, start=1.0, end=1.0)


# -- windows -------------------------------------------------------------------------------------


def spans(pairs) -> list[Span]:
    return [Span(float(a), float(b)) for a, b in pairs]


def test_windows_tile_with_overlap():
    assert windows(10.0, 4.0, 2.0) == spans([(0, 4), (2, 6), (4, 8), (6, 10)])


def test_windows_without_overlap_clip_the_last_one():
    assert windows(10.0, 4.0, 4.0) == spans([(0, 4), (4, 8), (8, 10)])


def test_windows_last_window_ends_exactly_at_duration():
    assert windows(10.0, 4.0, 3.0) == spans([(0, 4), (3, 7), (6, 10)])


def test_windows_stride_longer_than_length_leaves_gaps():
    assert windows(10.0, 2.0, 4.0) == spans([(0, 2), (4, 6), (8, 10)])
    assert windows(13.0, 2.0, 5.0) == spans([(0, 2), (5, 7), (10, 12)])  # no span starts past the end
    assert windows(10.5, 2.0, 5.0) == spans([(0, 2), (5, 7), (10, 10.5)])
    assert windows(300.0, 2.0, 5.0)[-1] == Span(295.0, 297.0)


def test_windows_video_shorter_than_one_window_gives_the_whole_video():
    assert windows(3.0, 4.0, 2.0) == spans([(0, 3)])
    assert windows(0.04, 8.0, 4.0) == spans([(0, 0.04)])


def test_windows_video_exactly_one_window_long():
    assert windows(4.0, 4.0, 2.0) == spans([(0, 4)])


def test_windows_float_strides_do_not_add_a_sliver_at_the_end():
    result = windows(1.0, 0.1, 0.1)
    assert len(result) == 10
    assert result[-1].end_seconds == pytest.approx(1.0, abs=1e-9)
    assert all(s.end_seconds - s.start_seconds > 0.0999 for s in result)


@pytest.mark.parametrize("length, stride", [(0, 1), (-1, 1), (1, 0), (1, -2), (float("nan"), 1)])
def test_windows_rejects_non_positive_length_or_stride(length, stride):
    with pytest.raises(ValueError, match="must be positive"):
        windows(10.0, length, stride)


@pytest.mark.parametrize("duration", [0.0, -1.0])
def test_windows_rejects_non_positive_duration(duration):
    with pytest.raises(ValueError, match="duration must be positive"):
        windows(duration, 4.0, 2.0)


# -- frames_in -----------------------------------------------------------------------------------


def test_frames_in_ranges_of_sampled_frames_per_span():
    pts = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    ranges = frames_in(pts, spans([(0, 2), (1, 3), (2, 6)]))
    assert ranges.tolist() == [[0, 2], [1, 3], [2, 6]]


def test_frames_in_start_is_inclusive_and_end_exclusive():
    pts = np.array([0.0, 1.0, 2.0, 3.0])
    assert frames_in(pts, spans([(1, 3)])).tolist() == [[1, 3]]
    # Float error at a boundary: 0.1 * 3 is just above 0.3 but counts as the start of [0.3, ...).
    pts = np.array([0.0, 0.1, 0.2, 0.1 * 3])
    assert frames_in(pts, spans([(0.3, 0.4), (0.0, 0.3)])).tolist() == [[3, 4], [0, 3]]


def test_frames_in_empty_span_borrows_the_frame_nearest_its_centre():
    pts = np.array([0.5, 1.5, 8.5])
    # [4, 6) holds no frame: its centre 5 is nearest 1.5 (3.5 away) rather than 8.5 (3.5 away too,
    # the tie goes to the earlier frame); [6, 8) -> centre 7 is nearest 8.5.
    ranges = frames_in(pts, spans([(0, 2), (4, 6), (6, 8), (8, 10)]))
    assert ranges.tolist() == [[0, 2], [1, 2], [2, 3], [2, 3]]


def test_frames_in_without_borrowing_leaves_an_empty_span_empty():
    pts = np.array([0.5, 1.5, 8.5])
    ranges = frames_in(pts, spans([(0, 2), (4, 6), (6, 8), (8, 10)]), borrow=False)
    assert ranges.tolist() == [[0, 2], [2, 2], [2, 2], [2, 3]]  # [4, 6) and [6, 8) hold no frame


def test_frames_in_matches_windows_over_at_fps():
    sample = at_fps(CFR, 2)  # 8 frames at 0.25, 0.75, ... 3.75 s
    ranges = frames_in(sample.pts_seconds, windows(CFR.duration, 2.0, 1.0))
    assert ranges.tolist() == [[0, 4], [2, 6], [4, 8]]
    assert all(last > first for first, last in ranges)


# -- snapping to keyframes -----------------------------------------------------------------------

# 10 s at 10 fps with a keyframe every 2.5 s: 0, 2.5, 5, 7.5
GOP_TIMELINE = Timeline(np.arange(100) / 10, 10.0, keyframes=np.arange(0, 100, 25))


def test_frames_at_a_rate_snap_to_the_nearest_keyframe_within_the_tolerance():
    exact = as_list(at_fps(GOP_TIMELINE, 1.0))
    assert exact == [5, 15, 25, 35, 45, 55, 65, 75, 85, 95]
    # 1 s: frames 1 s or less from a keyframe go to it (taken once); 9.5 s is 2 s from 7.5 s and stays
    assert as_list(at_fps(GOP_TIMELINE, 1.0, snap_seconds=1.0)) == [0, 25, 50, 75, 95]
    # 0.5 s: 4.5 s and 5.5 s both go to 5 s, which is taken once
    assert as_list(at_fps(GOP_TIMELINE, 1.0, snap_seconds=0.5)) == [0, 15, 25, 35, 50, 65, 75, 85, 95]
    assert as_list(at_fps(GOP_TIMELINE, 1.0, snap_seconds=0.0)) == exact
    sample = at_fps(GOP_TIMELINE, 1.0, snap_seconds=2.0)
    assert as_list(sample) == [0, 25, 50, 75] and sample.pts_seconds.tolist() == [0.0, 2.5, 5.0, 7.5]


def test_snapping_keeps_to_the_part_of_the_video_a_run_covers():
    # from 3 s on, the keyframe at 2.5 s is outside: 3.5 s is 1.5 s from 5 s, beyond 1.3 s, and stays
    assert as_list(at_fps(GOP_TIMELINE, 1.0, start=3.0, snap_seconds=1.3)) == [35, 50, 75, 95]
    assert as_list(at_fps(GOP_TIMELINE, 1.0, end=7.0, snap_seconds=1.3)) == [0, 25, 50, 65]


def test_uniform_frames_snap_and_a_frame_taken_twice_counts_twice():
    assert as_list(uniform(GOP_TIMELINE, 8, snap_seconds=2.0)) == [0, 25, 25, 50, 50, 75, 75, 75]


def test_snapping_without_known_keyframes_keeps_the_exact_frames():
    assert as_list(at_fps(CFR, 5.0, snap_seconds=1.0)) == as_list(at_fps(CFR, 5.0))


def test_snapped_frames_are_the_nearest_keyframe_or_themselves_and_keep_their_order():
    rng = np.random.default_rng(7)
    for _ in range(200):
        pts = np.cumsum(rng.uniform(0.01, 0.2, 300))
        pts -= pts[0]
        keys = np.unique(np.concatenate([[0], rng.choice(300, rng.integers(1, 12), replace=False)]))
        timeline = Timeline(pts, pts[-1] + 0.1, keyframes=keys)
        tolerance = float(rng.uniform(0, 3))
        wanted = np.sort(rng.choice(300, 40))
        got = snapped(timeline, wanted, tolerance)
        assert np.all(np.diff(got) >= 0)
        for frame, was in zip(got.tolist(), wanted.tolist()):
            distance = np.abs(pts[keys] - pts[was])
            if distance.min() <= tolerance:
                assert frame in keys and abs(pts[frame] - pts[was]) == pytest.approx(distance.min())
            else:
                assert frame == was
