"""Sparsity schedules: the target sparsity at each pruning event.

Masks are updated every `frequency` optimizer steps from `start_step` to `end_step` (inclusive): events
`k = 0 .. K` at steps `start_step + k * frequency`, `K = (end_step - start_step) // frequency`. Event k asks for
sparsity `s_k`, from the initial sparsity `s0` (event 0) to the target `s_T` (event K), following INC's
`schedulers.py`, with `p = k / K`:

- `exp`:    s_k = 1 - (1 - s0) * ((1 - s_T) / (1 - s0)) ** p
- `cos`:    s_k = s0 + (s_T - s0) * (1 - cos(p * pi / 2))
- `linear`: s_k = s0 + (s_T - s0) * p
- `cube`:   s_k = s0 + (s_T - s0) * p ** 3

clipped at `s_T`. With `start_step == end_step` there is one event (K = 0) and it prunes straight to the
target (INC's one-shot scheduler). Step t means "after t optimizer steps" (INC's `global_step`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from ltp_tf.validation import check_int_at_least, check_int_in_range, check_number, check_one_of


class SparsitySchedule:
    """Base class: validated steps and the event arithmetic; subclasses give the curve `_progress`.

    Args:
        target_sparsity: s_T, in [0, 1).
        start_step: first event (steps completed), >= 0.
        end_step: last possible event, >= start_step.
        frequency: steps between events, >= 1.
        initial_sparsity: s0, in [0, target_sparsity].
    """

    name: ClassVar[str]

    def __init__(self, target_sparsity: float, start_step: int, end_step: int, frequency: int = 1,
                 initial_sparsity: float = 0.0):
        check_number("target_sparsity", target_sparsity, "a number in [0, 1)", lambda v: 0.0 <= v < 1.0)
        check_int_at_least("start_step", start_step, 0)
        check_int_at_least("frequency", frequency, 1)
        check_int_at_least("end_step", end_step, start_step, minimum_text=f"start_step ({start_step})")
        check_number("initial_sparsity", initial_sparsity, f"a number in [0, target_sparsity={target_sparsity}]",
                     lambda v: 0.0 <= v <= target_sparsity)
        self.target_sparsity = float(target_sparsity)
        self.start_step = start_step
        self.end_step = end_step
        self.frequency = frequency
        self.initial_sparsity = float(initial_sparsity)

    @property
    def num_events(self) -> int:
        """K + 1: how many mask updates the schedule makes."""
        return (self.end_step - self.start_step) // self.frequency + 1

    @property
    def final_step(self) -> int:
        """The step of the last event, where the target is reached."""
        return self.start_step + (self.num_events - 1) * self.frequency

    def event_index(self, step: int) -> int | None:
        """k when `step` is an event step, else None."""
        if step < self.start_step or step > self.end_step or (step - self.start_step) % self.frequency:
            return None
        return (step - self.start_step) // self.frequency

    def sparsity(self, event: int) -> float:
        """s_k for event k in [0, K]."""
        last = self.num_events - 1
        check_int_in_range("event", event, 0, last)
        if last == 0:
            return self.target_sparsity
        return min(self.target_sparsity, self._progress(event / last))

    def _progress(self, fraction: float) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "target_sparsity": self.target_sparsity, "start_step": self.start_step,
                "end_step": self.end_step, "frequency": self.frequency, "initial_sparsity": self.initial_sparsity}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SparsitySchedule":
        config = dict(config)
        name = config.pop("name", cls.name if cls is not SparsitySchedule else None)
        return get_schedule(name, **config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class ExpSchedule(SparsitySchedule):
    """Exponential decay of density: s_k = 1 - (1 - s0) * ((1 - s_T) / (1 - s0)) ** (k / K)."""

    name = "exp"

    def _progress(self, fraction: float) -> float:
        s0, st = self.initial_sparsity, self.target_sparsity
        return 1.0 - (1.0 - s0) * ((1.0 - st) / (1.0 - s0)) ** fraction


class CosSchedule(SparsitySchedule):
    """s_k = s0 + (s_T - s0) * (1 - cos(k / K * pi / 2))."""

    name = "cos"

    def _progress(self, fraction: float) -> float:
        s0, st = self.initial_sparsity, self.target_sparsity
        return s0 + (st - s0) * (1.0 - math.cos(fraction * math.pi / 2.0))


class LinearSchedule(SparsitySchedule):
    """s_k = s0 + (s_T - s0) * k / K."""

    name = "linear"

    def _progress(self, fraction: float) -> float:
        return self.initial_sparsity + (self.target_sparsity - self.initial_sparsity) * fraction


class CubeSchedule(SparsitySchedule):
    """s_k = s0 + (s_T - s0) * (k / K) ** 3."""

    name = "cube"

    def _progress(self, fraction: float) -> float:
        return self.initial_sparsity + (self.target_sparsity - self.initial_sparsity) * fraction ** 3


SCHEDULES = {cls.name: cls for cls in (ExpSchedule, CosSchedule, LinearSchedule, CubeSchedule)}


def get_schedule(name: str, **kwargs: Any) -> SparsitySchedule:
    """The schedule called `name` (`exp`, `cos`, `linear`, `cube`) built with `kwargs`."""
    check_one_of("sparsity_decay_type", name, SCHEDULES)
    return SCHEDULES[name](**kwargs)
