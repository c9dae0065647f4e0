"""Benchmark pieces: a dense twin of a pruned model, interleaved timing, the results table and its files.

Dense and pruned are timed call by call in turn (dense, pruned, dense, ...) on the same batches, so a
change in machine load affects both alike. Speedup is dense time / pruned time (latency) or pruned
throughput / dense throughput; it is set beside the FLOPs reduction (`ltp_tf.flops`) of the same
examples, and the goals of issue 5 (speedup >= 0.85 x FLOPs reduction at batch 1, >= 0.75 x at batch 32).
The FLOPs reduction is LTP's (unpadded lengths); the padded one counts what an engine really computes
when a batch is padded to its longest (kept) row, the bound padded batching puts on the speedup.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from typing import Any, Callable, Iterable

import numpy as np

from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.models.surgery import without_token_pruning

# Minimum speedup / FLOPs-reduction ratio the issue asks for, by batch size (batch 1: inputs of >= 64 tokens).
GOALS = {1: 0.8, 32: 0.85}
GOAL_MIN_TOKENS_B1 = 64


def dense_twin(model: TokenPruningClassifier) -> TokenPruningClassifier:
    """The same classifier with the same weights and no token pruning."""
    return without_token_pruning(model)


def batches(features: dict[str, np.ndarray], batch_size: int, count: int | None = None) -> list[dict[str, np.ndarray]]:
    """Consecutive batches of `features` (first `count` examples), each cut to its longest row."""
    from ltp_tf.data import trim_to_longest

    total = len(features["token_ids"]) if count is None else min(count, len(features["token_ids"]))
    return [trim_to_longest({key: value[start:min(start + batch_size, total)] for key, value in features.items()})
            for start in range(0, total, batch_size)]


def padded_flops_reduction(lengths: np.ndarray, kept: np.ndarray, batch_size: int, hidden_dim: int,
                           intermediate_dim: int, length_bucket: int = 1, pad_batch: bool = False) -> float:
    """Dense / pruned FLOPs as executed with padding: each batch padded to its longest (kept) row.

    Batches are consecutive rows. Lengths are rounded up as the runner does (`length_bucket`, batch to a
    power of two with `pad_batch`); `length_bucket=1, pad_batch=False` is the in-graph (SavedModel, ONNX)
    path. Every pruning layer removes tokens, as the runner's default compaction does.
    """
    from ltp_tf.flops import layer_flops
    from ltp_tf.serving.buckets import round_up_batch, round_up_length

    dense = pruned = 0.0
    for start in range(0, len(lengths), batch_size):
        rows = slice(start, start + batch_size)
        count = len(lengths[rows])
        rows_run = round_up_batch(count) if pad_batch else count
        length = round_up_length(int(lengths[rows].max()), length_bucket, 10**9)
        dense += rows_run * kept.shape[1] * float(layer_flops(hidden_dim, intermediate_dim, length, length))
        for layer in range(kept.shape[1]):
            out = min(length, round_up_length(int(kept[rows, layer].max()), length_bucket, 10**9))
            pruned += rows_run * float(layer_flops(hidden_dim, intermediate_dim, length, out))
            length = out
    return dense / pruned


def time_interleaved(predictors: dict[str, Callable[[dict], Any]],
                     inputs: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Seconds per call of every predictor on every input, the predictors called in turn per input."""
    times: dict[str, list[float]] = {name: [] for name in predictors}
    for batch in inputs:
        for name, predict in predictors.items():
            start = time.perf_counter()
            predict(batch)
            times[name].append(time.perf_counter() - start)
    return {name: np.asarray(values) for name, values in times.items()}


@dataclasses.dataclass(frozen=True)
class Row:
    """One measurement: an engine, a measure, dense and pruned values, and the FLOPs reduction beside them."""

    engine: str
    measure: str  # "latency_b1_median_ms", "latency_b1_p90_ms" or "throughput_b{N}_per_s"
    batch_size: int
    dense: float
    pruned: float
    flops_reduction: float
    padded_flops_reduction: float
    max_abs_logit_diff: float
    dataset: str = ""
    mean_tokens: float = 0.0
    fastest_dense: float | None = None  # the best dense value of any engine on the same data and measure
    fastest_dense_engine: str = ""

    @property
    def speedup_vs_fastest_dense(self) -> float | None:
        if self.fastest_dense is None:
            return None
        if self.measure.startswith("latency"):
            return self.fastest_dense / self.pruned
        return self.pruned / self.fastest_dense

    @property
    def speedup(self) -> float:
        if self.measure.startswith("latency"):
            return self.dense / self.pruned
        return self.pruned / self.dense

    @property
    def efficiency(self) -> float:
        """Speedup divided by the FLOPs reduction (1.0 = all the FLOPs saved became time saved)."""
        return self.speedup / self.flops_reduction

    @property
    def goal(self) -> float | None:
        if self.batch_size == 1 and self.mean_tokens and self.mean_tokens < GOAL_MIN_TOKENS_B1:
            return 1.0 / self.flops_reduction  # short inputs: only "not slower than dense"
        return GOALS.get(self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        goal = self.goal
        against = self.speedup_vs_fastest_dense
        ratio = self.efficiency if against is None else against / self.flops_reduction
        return {"dataset": self.dataset, "mean_tokens": round(self.mean_tokens, 1), "engine": self.engine,
                "measure": self.measure, "batch_size": self.batch_size,
                "dense": round(self.dense, 3), "pruned": round(self.pruned, 3), "speedup": round(self.speedup, 3),
                "flops_reduction": round(self.flops_reduction, 3), "speedup_over_flops": round(self.efficiency, 3),
                "padded_flops_reduction": round(self.padded_flops_reduction, 3),
                "fastest_dense": None if self.fastest_dense is None else round(self.fastest_dense, 3),
                "fastest_dense_engine": self.fastest_dense_engine,
                "speedup_vs_fastest_dense": None if against is None else round(against, 3),
                "goal": None if goal is None else round(goal, 3),
                "goal_met": None if goal is None else bool(ratio >= goal - 1e-9),
                "max_abs_logit_diff": float(f"{self.max_abs_logit_diff:.3g}")}


def with_fastest_dense(rows: list[Row]) -> list[Row]:
    """`rows` with the fastest dense engine of the same dataset and measure filled in."""
    best: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row.dataset, row.measure)
        current = best.get(key)
        faster = current is None or (row.dense < current.dense if row.measure.startswith("latency")
                                     else row.dense > current.dense)
        if faster:
            best[key] = row
    return [dataclasses.replace(row, fastest_dense=best[(row.dataset, row.measure)].dense,
                                fastest_dense_engine=best[(row.dataset, row.measure)].engine) for row in rows]


def latency_rows(engine: str, times: dict[str, np.ndarray], flops: tuple[float, float], difference: float,
                 dataset: str = "", mean_tokens: float = 0.0) -> list[Row]:
    """Median and p90 latency rows (milliseconds) from batch-1 timings; `flops`: (unpadded, padded) reduction."""
    return [Row(engine, f"latency_b1_{name}_ms", 1, float(np.percentile(times["dense"], q)) * 1e3,
                float(np.percentile(times["pruned"], q)) * 1e3, *flops, difference, dataset, mean_tokens)
            for name, q in (("median", 50), ("p90", 90))]


def throughput_row(engine: str, batch_size: int, examples: int, times: dict[str, np.ndarray],
                   flops: tuple[float, float], difference: float, dataset: str = "", mean_tokens: float = 0.0) -> Row:
    """Examples per second at `batch_size`; `flops`: (unpadded, padded) reduction."""
    return Row(engine, f"throughput_b{batch_size}_per_s", batch_size, examples / float(times["dense"].sum()),
               examples / float(times["pruned"].sum()), *flops, difference, dataset, mean_tokens)


def markdown_table(rows: list[Row]) -> str:
    """The results as a Markdown table."""
    lines = ["| data | tokens | engine | measure | dense | pruned | speedup | FLOPs reduction | speedup / FLOPs | "
             "fastest dense | speedup vs fastest dense | goal | met | padded FLOPs reduction | max abs logit diff |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|"]
    for row in rows:
        d = row.to_dict()
        goal = "" if d["goal"] is None else f"{d['goal']:.2f}"
        met = "" if d["goal_met"] is None else ("yes" if d["goal_met"] else "no")
        fastest = "" if d["fastest_dense"] is None else f"{d['fastest_dense_engine']} {d['fastest_dense']:.2f}"
        against = "" if d["speedup_vs_fastest_dense"] is None else f"{d['speedup_vs_fastest_dense']:.2f}x"
        lines.append(f"| {d['dataset']} | {d['mean_tokens']:.1f} | {d['engine']} | {d['measure']} | {d['dense']:.2f} "
                     f"| {d['pruned']:.2f} | {d['speedup']:.2f}x | {d['flops_reduction']:.2f}x | "
                     f"{d['speedup_over_flops']:.2f} | {fastest} | {against} | {goal} | {met} | "
                     f"{d['padded_flops_reduction']:.2f}x | {d['max_abs_logit_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def write_results(rows: list[Row], info: dict[str, Any], output_dir: str, stem: str) -> dict[str, str]:
    """Writes `<stem>.csv`, `<stem>.md` (table and run information), `<stem>.json`, `<stem>.png` (bars) and,
    with several datasets, `<stem>_length.png` (speedup against input length)."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {ext: os.path.join(output_dir, f"{stem}.{ext}") for ext in ("csv", "md", "json", "png")}
    if len({row.dataset for row in rows}) > 1:
        paths["length_png"] = os.path.join(output_dir, f"{stem}_length.png")
        plot_length(rows, paths["length_png"], title=stem)
    records = [row.to_dict() for row in rows]
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    with open(paths["md"], "w", encoding="utf-8") as f:
        f.write(f"# Benchmark: {stem}\n\n{markdown_table(rows)}\n## Run\n\n")
        for key, value in info.items():
            f.write(f"- **{key}**: {value}\n")
    with open(paths["json"], "w", encoding="utf-8") as f:
        json.dump({"rows": records, "info": info}, f, indent=2, default=str)
        f.write("\n")
    plot(rows, paths["png"], title=stem)
    return paths


def plot(rows: list[Row], path: str, title: str) -> None:
    """Grouped bars: speedup per measure and engine, with the FLOPs reduction and the goals as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [dataclasses.replace(r, measure=f"{r.dataset} {r.measure}".strip()) for r in rows]
    measures = list(dict.fromkeys(row.measure for row in rows))
    engines = list(dict.fromkeys(row.engine for row in rows))
    width = 0.8 / len(engines)
    figure, axis = plt.subplots(figsize=(max(7, 1.8 * len(measures)), 4.5))
    for i, engine in enumerate(engines):
        values = [next((r.speedup for r in rows if r.engine == engine and r.measure == m), np.nan) for m in measures]
        axis.bar(np.arange(len(measures)) + (i - (len(engines) - 1) / 2) * width, values, width, label=engine)
    for j, measure in enumerate(measures):
        row = next(r for r in rows if r.measure == measure)
        span = (j - 0.45, j + 0.45)
        axis.plot(span, [row.flops_reduction] * 2, "k--", linewidth=1.2,
                  label="FLOPs reduction" if j == 0 else None)
        if row.goal is not None:
            axis.plot(span, [row.goal * row.flops_reduction] * 2, "r:", linewidth=1.2,
                      label="goal (x FLOPs reduction)" if j == 0 else None)
    axis.axhline(1.0, color="grey", linewidth=0.6)
    axis.set_xticks(np.arange(len(measures)), [m.replace("_", " ") for m in measures], fontsize=8)
    axis.set_ylabel("speedup of pruned over dense")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_length(rows: list[Row], path: str, title: str) -> None:
    """Speedup against mean input length, one panel per batch size: per engine against its own dense twin
    (solid) and against the fastest dense engine (dashed), the FLOPs reduction as the reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.measure.startswith("throughput") or r.measure == "latency_b1_median_ms"]
    measures = list(dict.fromkeys(r.measure for r in rows))
    figure, axes = plt.subplots(1, len(measures), figsize=(5.5 * len(measures), 4.2), squeeze=False)
    for axis, measure in zip(axes[0], measures):
        selected = sorted((r for r in rows if r.measure == measure), key=lambda r: r.mean_tokens)
        for engine in dict.fromkeys(r.engine for r in selected):
            points = [r for r in selected if r.engine == engine]
            line, = axis.plot([r.mean_tokens for r in points], [r.speedup for r in points], "o-", label=engine)
            if points[0].fastest_dense is not None:
                axis.plot([r.mean_tokens for r in points], [r.speedup_vs_fastest_dense for r in points], "x--",
                          color=line.get_color(), label=f"{engine} vs fastest dense")
        flops = {r.mean_tokens: r.flops_reduction for r in selected}
        axis.plot(list(flops), list(flops.values()), "k-", linewidth=2, label="FLOPs reduction")
        axis.axhline(1.0, color="grey", linewidth=0.6)
        axis.set_xscale("log", base=2)
        axis.set_xlabel("mean input tokens")
        axis.set_ylabel("speedup of pruned over dense")
        axis.set_title(measure.replace("_", " "), fontsize=9)
        axis.legend(fontsize=6)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
