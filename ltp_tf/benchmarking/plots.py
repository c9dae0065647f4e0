"""The benchmark's plots: speedup bars per measure and engine, and speedup against input length.

Both take the result rows (`ltp_tf.benchmarking.results.Row`) and write a PNG; matplotlib is imported on use.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ltp_tf.benchmarking.results import Row


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
