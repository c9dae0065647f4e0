"""A sweep's results on disk: `results.json` (one row per point and seed), `results.csv`, `results.md` and
`pareto.png`, all rewritten after every point (each atomically: a rerun reads results.json back).

`results.md` holds two tables: one line per method and setting with the mean and standard deviation over
seeds (what RESULTS.md quotes), then every point of every seed with its exact command. The plot draws the
per-setting means with the seeds' standard deviation as error bars.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
from typing import Any

from ltp_tf.atomic import write_json, write_text

SPEED_COLUMNS = ["latency_ms_pruned", "latency_ms_dense", "speedup_batch1", "throughput_batch32_pruned",
                 "throughput_batch32_dense", "speedup_batch32"]
CSV_COLUMNS = ["point", "method", "setting", "metric", "dev", "target_flops_reduction", "flops_reduction",
               "kept_ratio_last_layer", *SPEED_COLUMNS, "train_seconds", "seed", "selected", "command"]


def read_rows(output_dir: str) -> dict[str, dict[str, Any]]:
    """The rows an earlier run wrote to results.json, by point name (none if there is no such file)."""
    path = os.path.join(output_dir, "results.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return {row["point"]: row for row in json.load(f)}


def write_results(rows: list[dict[str, Any]], output_dir: str, task: str) -> None:
    write_json(os.path.join(output_dir, "results.json"), rows)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(os.path.join(output_dir, "results.csv"), table.getvalue())
    write_text(os.path.join(output_dir, "results.md"),
               f"{summary_table(rows)}\n\nEvery point:\n\n{markdown_table(rows)}\n")
    plot_pareto(rows, os.path.join(output_dir, "pareto.png"), task)


def groups(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by method and setting (the seeds of one configuration), in first-seen order."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["method"], row["setting"]), []).append(row)
    return list(grouped.values())


def _mean_std(values: list[float], scale: float = 1.0, digits: int = 2, suffix: str = "") -> str:
    values = [scale * v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}{suffix}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}{suffix}"


def summary_table(rows: list[dict[str, Any]]) -> str:
    """One line per method and setting: mean ± std over its seeds of the dev metrics, FLOPs, speedup, time."""
    metric = rows[0]["metric"] if rows else ""
    lines = [f"| method | setting | seeds | dev {metric} | all dev metrics | target | FLOPs reduction "
             "| kept at last layer | measured speedup (batch 1) | measured speedup (batch 32) | training minutes |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for group in groups(rows):
        first = group[0]
        others = ", ".join(f"{name} {_mean_std([r['all_metrics'][name] for r in group], 100)}"
                           for name in sorted(first["all_metrics"]))
        target = first.get("target_flops_reduction")
        selected = " (selected)" if any(r.get("selected") for r in group) else ""
        lines.append(f"| {first['method']}{selected} | {first['setting']} | {len(group)} | "
                     f"{_mean_std([r['dev'] for r in group], 100)} | {others} | "
                     f"{'-' if target is None else f'{target:g}x'} | "
                     f"{_mean_std([r['flops_reduction'] for r in group], suffix='x')} | "
                     f"{_mean_std([r['kept_ratio_last_layer'] for r in group], digits=3)} | "
                     f"{_mean_std([r.get('speedup_batch1') for r in group], suffix='x')} | "
                     f"{_mean_std([r.get('speedup_batch32') for r in group], suffix='x')} | "
                     f"{_mean_std([r.get('train_seconds') for r in group], 1 / 60, digits=1)} |")
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """One line per point and seed with its exact command."""
    lines = ["| point | method | setting | dev | FLOPs reduction | kept at last layer | batch-1 ms, pruned / dense "
             "| training minutes | seed | command |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        latency = ("-" if row.get("latency_ms_pruned") is None
                   else f"{row['latency_ms_pruned']:.1f} / {row['latency_ms_dense']:.1f}")
        minutes = "-" if row.get("train_seconds") is None else f"{row['train_seconds'] / 60:.1f}"
        lines.append(f"| {row['point']} | {row['method']} | {row['setting']} | {100 * row['dev']:.2f} | "
                     f"{row['flops_reduction']:.2f}x | {row['kept_ratio_last_layer']:.3f} | {latency} | {minutes} | "
                     f"{row['seed']} | `{row['command']}` |")
    return "\n".join(lines)


def plot_pareto(rows: list[dict[str, Any]], path: str, task: str) -> None:
    """Dev metric against FLOPs reduction per method (seed means, std as error bars), with the goal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5), dpi=100)
    by_method: dict[str, list[tuple[float, float, float, float]]] = {}
    for group in groups(rows):
        flops = [r["flops_reduction"] for r in group]
        scores = [100 * r["dev"] for r in group]
        by_method.setdefault(group[0]["method"], []).append(
            (statistics.mean(flops), statistics.mean(scores), statistics.stdev(flops) if len(group) > 1 else 0.0,
             statistics.stdev(scores) if len(group) > 1 else 0.0))
    for method, values in by_method.items():
        values.sort()
        axis.errorbar([v[0] for v in values], [v[1] for v in values], xerr=[v[2] for v in values],
                      yerr=[v[3] for v in values], marker="o", capsize=3, label=method,
                      linestyle="-" if len(values) > 1 else "none")
    # The goal line: 1 point under the dense control (as many epochs as the pruned points) where there is one.
    for reference in ("dense (control)", "dense"):
        scores = [100 * r["dev"] for r in rows if r["method"] == reference and (reference != "dense" or
                                                                                 r.get("selected"))]
        if scores:
            axis.axhline(statistics.mean(scores) - 1.0, linestyle="--", color="gray", linewidth=0.8,
                         label=f"{reference} - 1 point")
            break
    axis.axvline(2.0, linestyle=":", color="gray", linewidth=0.8)
    axis.set_xlabel("FLOPs reduction vs dense (x)")
    axis.set_ylabel(f"dev {rows[0]['metric']}" if rows else "dev metric")
    axis.set_title(f"{task}: dev metric vs FLOPs (mean ± std over seeds)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
