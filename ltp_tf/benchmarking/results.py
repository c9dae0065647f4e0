"""A benchmark's results: one `Row` per engine and measure, the goals, the Markdown table and the result files.

Speedup is dense time / pruned time (latency) or pruned throughput / dense throughput; it is set beside the
FLOPs reduction (`ltp_tf.flops`) of the same examples, and the goals (`GOALS`: speedup / FLOPs reduction by
batch size). The FLOPs reduction is LTP's (unpadded lengths); the padded one
(`ltp_tf.benchmarking.padded_flops`) counts what an engine really computes when a batch is padded to its
longest (kept) row, the bound padded batching puts on the speedup. `write_results` writes `<stem>.csv`,
`<stem>.md`, `<stem>.json` and the plots (`ltp_tf.benchmarking.plots`). The dense baseline is `ltp_tf.models.surgery.without_token_pruning`:
the same weights with pruning off.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Any

import numpy as np

from ltp_tf.atomic import write_json
from ltp_tf.benchmarking.plots import plot, plot_length

# Minimum speedup / FLOPs-reduction ratio the issue asks for, by batch size (batch 1: inputs of >= 64 tokens).
GOALS = {1: 0.8, 32: 0.85}
GOAL_MIN_TOKENS_B1 = 64


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
    write_json(paths["json"], {"rows": records, "info": info}, default=str)
    plot(rows, paths["png"], title=stem)
    return paths
