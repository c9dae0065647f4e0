"""Sparsity schedules against their formulas, at the boundaries and in between."""

import math

import numpy as np
import pytest

from ltp_tf.sparsity.schedules import SCHEDULES, SparsitySchedule, get_schedule

FORMULAS = {
    "exp": lambda s0, st, p: 1 - (1 - s0) * ((1 - st) / (1 - s0)) ** p,
    "cos": lambda s0, st, p: s0 + (st - s0) * (1 - math.cos(p * math.pi / 2)),
    "linear": lambda s0, st, p: s0 + (st - s0) * p,
    "cube": lambda s0, st, p: s0 + (st - s0) * p ** 3,
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_values_follow_the_formula_from_s0_to_target(name):
    rng = np.random.default_rng(0)
    for _ in range(5):
        target = float(rng.uniform(0.3, 0.95))
        s0 = float(rng.uniform(0.0, target / 2))
        start, frequency = int(rng.integers(0, 50)), int(rng.integers(1, 20))
        end = start + frequency * int(rng.integers(1, 30)) + int(rng.integers(0, frequency))
        schedule = get_schedule(name, target_sparsity=target, start_step=start, end_step=end, frequency=frequency,
                                initial_sparsity=s0)
        last = (end - start) // frequency
        assert schedule.num_events == last + 1
        assert schedule.sparsity(0) == pytest.approx(s0)
        assert schedule.sparsity(last) == pytest.approx(target)
        values = [schedule.sparsity(k) for k in range(last + 1)]
        np.testing.assert_allclose(values, [min(target, FORMULAS[name](s0, target, k / last)) for k in range(last + 1)])
        assert np.all(np.diff(values) >= -1e-12) and max(values) <= target


def test_event_steps_at_the_boundaries():
    schedule = get_schedule("exp", target_sparsity=0.9, start_step=10, end_step=53, frequency=5)
    assert schedule.event_index(9) is None
    assert schedule.event_index(10) == 0
    assert schedule.event_index(12) is None
    assert schedule.event_index(15) == 1
    assert schedule.final_step == 50 and schedule.event_index(50) == 8
    assert schedule.event_index(55) is None and schedule.event_index(53) is None


def test_one_shot_prunes_straight_to_the_target():
    schedule = get_schedule("cube", target_sparsity=0.7, start_step=3, end_step=3)
    assert schedule.num_events == 1 and schedule.event_index(3) == 0 and schedule.sparsity(0) == 0.7


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_config_round_trip(name):
    schedule = get_schedule(name, target_sparsity=0.5, start_step=2, end_step=40, frequency=4, initial_sparsity=0.1)
    clone = SparsitySchedule.from_config(schedule.get_config())
    assert type(clone) is type(schedule) and clone.get_config() == schedule.get_config()
    assert [clone.sparsity(k) for k in range(10)] == [schedule.sparsity(k) for k in range(10)]


@pytest.mark.parametrize("kwargs, message", [
    ({"target_sparsity": 1.5}, r"`target_sparsity` must be a number in \[0, 1\). Received: target_sparsity=1.5"),
    ({"start_step": -1}, r"`start_step` must be an integer >= 0. Received: start_step=-1"),
    ({"end_step": 4}, r"`end_step` must be an integer >= start_step \(5\). Received: end_step=4"),
    ({"frequency": 0}, r"`frequency` must be an integer >= 1. Received: frequency=0"),
    ({"initial_sparsity": 0.8}, r"`initial_sparsity` must be a number in \[0, target_sparsity=0.5\]"),
])
def test_invalid_arguments(kwargs, message):
    args = {"target_sparsity": 0.5, "start_step": 5, "end_step": 10, "frequency": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        get_schedule("linear", **args)


def test_unknown_schedule_and_event():
    with pytest.raises(ValueError, match=r"`sparsity_decay_type` must be one of \['exp', 'cos', 'linear', 'cube'\]"):
        get_schedule("poly", target_sparsity=0.5, start_step=0, end_step=1)
    with pytest.raises(ValueError, match=r"`event` must be an integer in \[0, 1\]. Received: event=2"):
        get_schedule("exp", target_sparsity=0.5, start_step=0, end_step=1).sparsity(2)
