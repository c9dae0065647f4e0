"""The sweep's points as data: the dense grid and its selection, seeds, equal-FLOPs top-k, dependencies."""

import pytest

from benchmarks.sweep_points import (SweepSpec, dependents, keep_rate, resolve_flags, resolve_setting,
                                     rows_in_sweep_order, select_dense, sweep_points, waits_for, with_dependencies)

SPEC = SweepSpec(dense_lrs=("2e-5", "5e-5", "1e-4"), seeds=(42, 43))
ROWS = {"dense_lr2e-5": {"dev": 0.80}, "dense_lr5e-5": {"dev": 0.86}, "dense_lr1e-4": {"dev": 0.83},
        "ltp_target2": {"kept_token_ratio": [1.0, 1.0, 0.9, 0.52, 0.2, 0.004]}}


def _point(points, name):
    return next(p for p in points if p.name == name)


def _checkpoint(name):
    return f"runs/{name}/ckpt"


def test_grid_then_every_method_then_the_seed_points():
    names = [p.name for p in sweep_points(SPEC)]
    assert names[:4] == ["dense_lr2e-5", "dense_lr5e-5", "dense_lr1e-4", "dense_control"]
    assert {"ltp_target1.5", "ltp_target2", "ltp_target2.5", "ltp_target2_nokd", "topk_0.01", "topk_eq_ltp_target2",
            "threshold_0.01", "sparse_2in4", "sparse_4x1", "ltp_2in4"} <= set(names)
    assert names[-5:] == ["dense_seed43", "dense_control_seed43", "ltp_target2_seed43", "ltp_target2_nokd_seed43",
                          "topk_eq_ltp_target2_seed43"]
    assert [p.name for p in sweep_points(SweepSpec())][0] == "dense"  # a grid of one rate is just "dense"


def test_pruned_points_restore_the_best_dense_of_their_seed():
    points = sweep_points(SPEC)
    assert select_dense(points, ROWS, 42) == "dense_lr5e-5"
    flags = resolve_flags(_point(points, "ltp_target2"), points, ROWS, _checkpoint)
    assert flags[-1] == "--restore=runs/dense_lr5e-5/ckpt" and "--target_flops_reduction=2" in flags
    assert "--kd_weight=1" in flags and "--kd_weight=1" not in _point(points, "ltp_target2_nokd").flags
    # A later seed trains dense at the selected rate, and its pruned points restore that model.
    dense43 = _point(points, "dense_seed43")
    assert "--lr=5e-5" in resolve_flags(dense43, points, ROWS, _checkpoint)
    assert resolve_setting(dense43, points, ROWS) == _point(points, "dense_lr5e-5").setting
    rows = {**ROWS, "dense_seed43": {"dev": 0.5}}
    assert resolve_flags(_point(points, "ltp_target2_seed43"), points, rows, _checkpoint)[-1] == \
        "--restore=runs/dense_seed43/ckpt"
    with pytest.raises(ValueError, match="No dense point of seed 43"):
        select_dense(points, ROWS, 43)


def test_topk_at_equal_flops_takes_the_ltp_points_kept_ratios_and_distillation():
    points = sweep_points(SPEC)
    flags = resolve_flags(_point(points, "topk_eq_ltp_target2"), points, ROWS, _checkpoint)
    assert "--token_keep_rates=1,1,0.9,0.52,0.2,0.01" in flags  # floored at LTP's 0.01
    assert "--kd_weight=1" in flags
    assert keep_rate(1.2) == 1.0 and keep_rate(float("nan")) == 1.0


def test_dependencies_pull_in_what_a_point_starts_from():
    points = sweep_points(SPEC)
    assert [p.name for p in with_dependencies(points, ["topk_eq_ltp_target2_seed43"])] == [
        "dense_lr2e-5", "dense_lr5e-5", "dense_lr1e-4", "dense_seed43", "ltp_target2_seed43",
        "topk_eq_ltp_target2_seed43"]
    assert [p.name for p in with_dependencies(points, ["ltp_2in4"])][-2:] == ["sparse_2in4", "ltp_2in4"]
    with pytest.raises(ValueError, match="`points` must name points of this sweep"):
        with_dependencies(points, ["ltp_lambda9"])


def test_a_point_waits_for_what_it_starts_from_and_no_more():
    points = sweep_points(SPEC)
    grid = ("dense_lr2e-5", "dense_lr5e-5", "dense_lr1e-4")
    assert waits_for(_point(points, "dense_lr5e-5"), points) == ()
    assert waits_for(_point(points, "ltp_target2"), points) == grid  # the best of the grid, so all of it
    assert waits_for(_point(points, "topk_eq_ltp_target2"), points) == grid + ("ltp_target2",)
    assert waits_for(_point(points, "ltp_2in4"), points) == ("sparse_2in4",)
    assert waits_for(_point(points, "dense_seed43"), points) == grid  # trains at the grid's selected rate
    assert waits_for(_point(points, "ltp_target2_seed43"), points) == ("dense_seed43",)


def test_points_more_points_wait_for_count_higher():
    points = sweep_points(SPEC)
    count = dependents(points, points)
    assert count["dense_lr5e-5"] == len(points) - 3  # every point but the grid waits for the grid
    # LTP 2x leads to its top-k twin; the later seed's dense model to that seed's four points.
    assert count["ltp_target2"] == 1 and count["dense_seed43"] == 4 and count["ltp_target2.5"] == 0
    assert count["sparse_2in4"] == 1 and count["topk_eq_ltp_target2_seed43"] == 0
    run = with_dependencies(points, ["ltp_target2"])  # only what runs counts
    assert dependents(run, points) == {"dense_lr2e-5": 1, "dense_lr5e-5": 1, "dense_lr1e-4": 1, "ltp_target2": 0}


@pytest.mark.parametrize("changes, message", [
    ({"dense_lrs": ()}, "`dense_lrs` must name at least one"),
    ({"seeds": (42, 42)}, "`seeds` must be distinct"),
    ({"prune_epochs": 0}, "`prune_epochs` must be an integer >= 1"),
])
def test_invalid_specs(changes, message):
    with pytest.raises(ValueError, match=message):
        SweepSpec(**changes)


def test_unknown_names_are_errors():
    with pytest.raises(ValueError, match="`equal_flops` must name LTP points"):
        sweep_points(SweepSpec(equal_flops=("ltp_target3",)))
    with pytest.raises(ValueError, match="`seed_points` must name points"):
        sweep_points(SweepSpec(seeds=(1, 2), seed_points=("nope",)))


def test_a_run_with_other_flags_keeps_every_earlier_row():
    """A one-seed run after a three-seed one (or with other targets) must not drop the rows it does not plan."""
    points = sweep_points(SweepSpec(dense_lrs=("2e-5", "1e-4")))  # seed 42 only
    earlier = {name: {"point": name, "dev": 0.1} for name in
               ("dense_seed43", "dense_lr1e-4", "ltp_target1.5_nokd", "dense_lr2e-5", "topk_0.01")}
    done = {"dense_lr2e-5": {"point": "dense_lr2e-5", "dev": 0.9}, "ltp_target2": {"point": "ltp_target2", "dev": 0.8}}
    rows = rows_in_sweep_order(points, done, earlier)
    assert [r["point"] for r in rows] == ["dense_lr2e-5", "dense_lr1e-4", "ltp_target2", "topk_0.01",
                                          "dense_seed43", "ltp_target1.5_nokd"]
    assert rows[0]["dev"] == 0.9  # this run's row replaces the earlier one
