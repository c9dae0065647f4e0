"""The points of an accuracy-versus-FLOPs sweep (`benchmarks.sweep`), as data: no I/O, no flags.

A point is one `python -m ltp_tf.train` command. Its flags can depend on points that ran before it, resolved
when it runs (`resolve_flags`): `restore_from="dense"` is the sweep's selected dense model (the best dev score
of the learning-rate grid, for the first seed; that seed's dense point for the others), a dense point of a
later seed trains with the selected learning rate, and a top-k point at equal FLOPs takes its per-layer keep
rates from the kept-token ratios its LTP point reached on dev.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

DENSE = "dense"


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """The sweep's settings (one per `benchmarks.sweep` flag that shapes the points)."""

    dense_lrs: tuple[str, ...] = ("5e-5",)
    dense_epochs: int = 3
    dense_warmup: float = 0.1
    prune_lr: str = "5e-5"
    prune_epochs: int = 1
    sparse_epochs: int = 2
    targets: tuple[str, ...] = ("1.5", "2", "2.5")
    no_kd_targets: tuple[str, ...] = ("2",)
    target_flags: tuple[str, ...] = ("--soft_mask=straight_through", "--threshold_lr=2e-4")
    kd_flags: tuple[str, ...] = ("--kd_weight=1", "--kd_temperature=2")
    lambdas: tuple[str, ...] = ()
    temperature: float = 1e-3
    ltp_threshold: float = 0.01
    keep_rates: tuple[str, ...] = ("0.01",)
    equal_flops: tuple[str, ...] = ("ltp_target2",)
    thresholds: tuple[str, ...] = ("0.01",)
    sparsity: tuple[str, ...] = ("2:4", "4x1")
    sparse_flags: tuple[str, ...] = ("--distill_loss_weight=1",)
    sparse_ltp_lambda: str = "0.1"
    model: str | None = None
    seeds: tuple[int, ...] = (42,)
    seed_points: tuple[str, ...] = ("dense", "dense_control", "ltp_target2", "ltp_target2_nokd", "topk_eq_ltp_target2")

    def __post_init__(self) -> None:
        if not self.dense_lrs:
            raise ValueError("`dense_lrs` must name at least one learning rate. Received: dense_lrs=()")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"`seeds` must be distinct and at least one. Received: seeds={self.seeds}")
        for name in ("dense_epochs", "prune_epochs", "sparse_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class Point:
    """One sweep point: a name, its method and setting, its training flags and what it depends on.

    `restore_from` names the point whose final checkpoint it starts from (`"dense"`: the selected dense model of
    its seed); `keep_rates_from` the LTP point whose dev kept ratios become its `--token_keep_rates`;
    `dense_lr_selected` marks a later seed's dense point, which trains with the first seed's selected rate.
    """

    name: str
    method: str
    setting: str
    flags: tuple[str, ...]
    restore_from: str | None = DENSE
    keep_rates_from: str | None = None
    dense_lr_selected: bool = False
    target: float | None = None
    seed: int = 42
    grid: bool = False  # one learning rate of the dense grid

    @property
    def final_stage(self) -> str:
        """The stage whose checkpoint is this point's model (the last of its `--stages`)."""
        stages = next(f for f in self.flags if f.startswith("--stages="))
        return stages.split("=", 1)[1].split(",")[-1]

    @property
    def dependencies(self) -> tuple[str, ...]:
        return tuple(name for name in (self.restore_from, self.keep_rates_from) if name is not None)


def dense_point_name(lr: str, spec: SweepSpec) -> str:
    return DENSE if len(spec.dense_lrs) == 1 else f"dense_lr{lr}"


def _dense_flags(spec: SweepSpec, lr: str) -> tuple[str, ...]:
    return ("--stages=finetune", f"--epoch={spec.dense_epochs}", f"--lr={lr}",
            f"--warmup_ratio={spec.dense_warmup:g}") + ((f"--model={spec.model}",) if spec.model else ())


def _dense_setting(spec: SweepSpec, lr: str) -> str:
    return f"lr={lr}, {spec.dense_epochs} epochs, warm-up {spec.dense_warmup:g}"


def first_seed_points(spec: SweepSpec) -> list[Point]:
    """Every point of the first seed, in run order (each after the points it depends on)."""
    seed, prune = spec.seeds[0], (f"--lr={spec.prune_lr}",)
    epochs = f"--epoch={spec.prune_epochs}"
    stage_epochs = f"--epoch={2 * spec.prune_epochs}"  # single-stage baselines train as long as soft + hard
    ltp = (f"--temperature={spec.temperature}", f"--final_token_threshold={spec.ltp_threshold}")
    points = [Point(dense_point_name(lr, spec), "dense", _dense_setting(spec, lr), _dense_flags(spec, lr),
                    restore_from=None, seed=seed, grid=len(spec.dense_lrs) > 1) for lr in spec.dense_lrs]
    # Control: the selected dense model trained as many more epochs as LTP's soft and hard stages, so a pruned
    # point's gain over dense can be told apart from the gain of training longer.
    points.append(Point("dense_control", "dense (control)", f"+{2 * spec.prune_epochs} epochs",
                        ("--stages=finetune", stage_epochs, *prune), seed=seed))
    for target in spec.targets:
        points.append(Point(f"ltp_target{target}", "LTP + KD", f"target {target}x",
                            ("--stages=soft,hard", epochs, *prune, f"--target_flops_reduction={target}", *ltp,
                             *spec.target_flags, *spec.kd_flags), target=float(target), seed=seed))
    for target in spec.no_kd_targets:
        points.append(Point(f"ltp_target{target}_nokd", "LTP", f"target {target}x",
                            ("--stages=soft,hard", epochs, *prune, f"--target_flops_reduction={target}", *ltp,
                             *spec.target_flags), target=float(target), seed=seed))
    for value in spec.lambdas:
        points.append(Point(f"ltp_lambda{value}", "LTP", f"lambda={value}, T={spec.temperature:g}",
                            ("--stages=soft,hard", epochs, *prune, f"--lambda={value}", *ltp), seed=seed))
    for rate in spec.keep_rates:
        points.append(Point(f"topk_{rate}", "top-k (LTP schedule)", f"keep rate={rate}",
                            ("--stages=topk", stage_epochs, *prune, f"--token_keep_rate={rate}"), seed=seed))
    names = {p.name for p in points}
    for source in spec.equal_flops:
        if source not in names:
            raise ValueError(f"`equal_flops` must name LTP points of this sweep {sorted(n for n in names if 'ltp' in n)}. "
                             f"Received: equal_flops={source!r}")
        # As the LTP point distils, so does its top-k twin: the two differ only in how tokens are chosen.
        kd = spec.kd_flags if source in {f"ltp_target{t}" for t in spec.targets} else ()
        points.append(Point(f"topk_eq_{source}", "top-k (equal FLOPs)",
                            f"kept ratios of {source}" + (" + KD" if kd else ""),
                            ("--stages=topk", stage_epochs, *prune, *kd), keep_rates_from=source, seed=seed))
    for threshold in spec.thresholds:
        points.append(Point(f"threshold_{threshold}", "manual threshold", f"threshold={threshold}",
                            ("--stages=threshold", stage_epochs, *prune, f"--final_token_threshold={threshold}"),
                            seed=seed))
    for pattern in spec.sparsity:
        sparsity = 0.5 if ":" in pattern else 0.9
        points.append(Point(f"sparse_{pattern.replace(':', 'in')}", f"weights {pattern}", f"sparsity={sparsity}",
                            ("--stages=finetune", f"--epoch={spec.sparse_epochs}", *prune, "--do_prune",
                             f"--pruning_pattern={pattern}", f"--target_sparsity={sparsity}",
                             "--sparsity_warm_epochs=0", "--cooldown_epochs=0.5", "--pruning_frequency=10",
                             *spec.sparse_flags), seed=seed))
    if "2:4" in spec.sparsity and spec.sparse_ltp_lambda:
        points.append(Point("ltp_2in4", "LTP + 2:4", f"lambda={spec.sparse_ltp_lambda}, 2:4",
                            ("--stages=soft,hard", epochs, *prune, f"--lambda={spec.sparse_ltp_lambda}", *ltp,
                             "--do_prune", "--pruning_pattern=2:4", "--target_sparsity=0.5",
                             "--sparsity_warm_epochs=0", "--cooldown_epochs=0", "--pruning_frequency=10"),
                            restore_from="sparse_2in4", seed=seed))
    return points


def sweep_points(spec: SweepSpec) -> list[Point]:
    """All points: the first seed's, then for each further seed its `seed_points` (named `<name>_seed<s>`)."""
    first = first_seed_points(spec)
    by_name = {p.name: p for p in first}
    unknown = sorted(set(spec.seed_points) - set(by_name) - {DENSE})  # "dense": every seed has its dense point
    if len(spec.seeds) > 1 and unknown:
        raise ValueError(f"`seed_points` must name points of this sweep {sorted(by_name)}. Received: {unknown}")
    points = list(first)
    for seed in spec.seeds[1:]:
        suffix = f"_seed{seed}"
        dense = Point(DENSE + suffix, "dense", "selected lr", _dense_flags(spec, "{selected}"), restore_from=None,
                      dense_lr_selected=True, seed=seed)
        points.append(dense)
        for name in spec.seed_points:
            if name == DENSE or by_name[name].grid:
                continue
            point = by_name[name]
            keep_from = None if point.keep_rates_from is None else point.keep_rates_from + suffix
            restore = None if point.restore_from is None else (
                point.restore_from if point.restore_from == DENSE else point.restore_from + suffix)
            points.append(dataclasses.replace(point, name=name + suffix, restore_from=restore,
                                              keep_rates_from=keep_from, seed=seed))
    return points


def with_dependencies(points: list[Point], names: list[str]) -> list[Point]:
    """The points named, and every point they depend on (the dense grid of their seed included), in run order."""
    by_name = {p.name: p for p in points}
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise ValueError(f"`points` must name points of this sweep {sorted(by_name)}. Received: {unknown}")
    wanted: set[str] = set()
    stack = list(names)
    while stack:
        point = by_name[stack.pop()]
        if point.name in wanted:
            continue
        wanted.add(point.name)
        stack.extend(waits_for(point, points))
    return [p for p in points if p.name in wanted]


def waits_for(point: Point, points: list[Point]) -> tuple[str, ...]:
    """The points that must finish before `point` starts: the point it restores from or takes keep rates from
    (for `"dense"`, every dense point of its seed, since the selected one is the best of them) and, for a later
    seed's dense point, the first seed's dense grid (it trains with the selected rate)."""
    names: list[str] = []
    for dependency in point.dependencies:
        names.extend(dense_candidates(points, point.seed) if dependency == DENSE else [dependency])
    if point.dense_lr_selected:
        names.extend(dense_candidates(points, points[0].seed))
    return tuple(dict.fromkeys(names))


def dependents(run: list[Point], points: list[Point]) -> dict[str, int]:
    """How many points of `run` wait, directly or through others, for each point of `run`: a sweep running
    several points at once starts the ready point with the most first (the longest chains start early)."""
    names = {p.name for p in run}
    waiting: dict[str, set[str]] = {name: set() for name in names}
    for point in run:
        for name in waits_for(point, points):
            if name in names:
                waiting[name].add(point.name)

    def closure(name: str, seen: set[str]) -> set[str]:
        for child in waiting[name] - seen:
            seen.add(child)
            closure(child, seen)
        return seen

    return {name: len(closure(name, set())) for name in names}


def dense_candidates(points: list[Point], seed: int) -> list[str]:
    """The dense points the selected dense model of `seed` is chosen from."""
    return [p.name for p in points if p.method == "dense" and p.seed == seed]


def select_dense(points: list[Point], rows: dict[str, dict[str, Any]], seed: int) -> str:
    """The selected dense point of a seed: the best primary dev score among its dense points (its grid)."""
    candidates = [name for name in dense_candidates(points, seed) if name in rows]
    if not candidates:
        raise ValueError(f"No dense point of seed {seed} has run yet; the points that start from it need one.")
    return max(candidates, key=lambda name: rows[name]["dev"])


def resolve_flags(point: Point, points: list[Point], rows: dict[str, dict[str, Any]],
                  checkpoint_of: Callable[[str], str]) -> tuple[str, ...]:
    """The point's training flags with what depends on earlier points filled in (`checkpoint_of(name)` is a
    finished point's checkpoint folder)."""
    flags = point.flags
    if point.dense_lr_selected:
        selected = select_dense(points, rows, points[0].seed)
        lr = next(f for f in next(p for p in points if p.name == selected).flags if f.startswith("--lr="))
        flags = tuple(lr if f == "--lr={selected}" else f for f in flags)
    if point.keep_rates_from is not None:
        kept = rows[point.keep_rates_from]["kept_token_ratio"]
        flags += ("--token_keep_rates=" + ",".join(f"{keep_rate(ratio):.4g}" for ratio in kept),)
    if point.restore_from is not None:
        source = select_dense(points, rows, point.seed) if point.restore_from == DENSE else point.restore_from
        flags += (f"--restore={checkpoint_of(source)}",)
    return flags


def resolve_setting(point: Point, points: list[Point], rows: dict[str, dict[str, Any]]) -> str:
    """The point's setting; a later seed's dense point takes the selected grid point's, so they group together."""
    if not point.dense_lr_selected:
        return point.setting
    selected = select_dense(points, rows, points[0].seed)
    return next(p for p in points if p.name == selected).setting


def keep_rate(kept_ratio: float) -> float:
    """A measured kept ratio as a top-k keep rate: in (0, 1], at least LTP's floor of 0.01."""
    return min(1.0, max(0.01, float(kept_ratio))) if math.isfinite(kept_ratio) else 1.0


def rows_in_sweep_order(points: list[Point], done: dict[str, dict[str, Any]],
                        earlier: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows results.json keeps: this run's rows so far and the earlier rows of points it has not reached, in
    sweep order, then every other earlier row in its earlier order. A run with other flags (fewer seeds, other
    targets) or an interrupted one loses no row an earlier run wrote."""
    names = {p.name for p in points}
    ordered = [done.get(p.name) or earlier[p.name] for p in points if p.name in done or p.name in earlier]
    return ordered + [row for name, row in earlier.items() if name not in names and name not in done]
