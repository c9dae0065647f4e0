"""Accuracy versus cost on a GLUE task: dense once, then LTP, top-k, manual threshold, 2:4, 4x1, LTP + 2:4.

    python -m benchmarks.sweep --task=mrpc --output_dir=benchmarks/sweeps/mrpc \
        --train_flags=--max_train_examples=2000,--max_seq_length=96,--bs=32

Every point is one `python -m ltp_tf.train` command (printed in the table, so each row reproduces alone),
run in its own output folder and restored from the dense checkpoint. For each point the sweep reads the dev
metric and FLOPs reduction from the training report and measures batch-1 CPU latency of the point's model
against its dense twin (same weights, pruning off), interleaved call by call through the token-dropping
runner. It writes `<output_dir>/results.{json,csv,md}` and `<output_dir>/pareto.png`. A rerun reuses the rows
of points whose command is unchanged (`--remeasure` times them again) and the training CLI skips finished
stages, so an interrupted or extended sweep continues where it stopped. A `dense (control)` point trains the
dense model for as many more epochs as LTP's soft and hard stages, to separate pruning from extra training.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shlex
import subprocess
import sys
from typing import Any

from absl import app, flags

_TASK = flags.DEFINE_string("task", None, "GLUE task.", required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Sweep folder (default: benchmarks/sweeps/<task>).")
_TRAIN_FLAGS = flags.DEFINE_list("train_flags", [], "Flags every training command gets (data size, length, batch).")
_MODEL = flags.DEFINE_string("model", None, "Pretrained encoder the dense point fine-tunes (`ltp_tf.train --model`: a "
                             "local Hugging Face folder); the other points restore from it. Default: the packaged "
                             "MiniLM.")
_DENSE_EPOCHS = flags.DEFINE_integer("dense_epochs", 3, "Epochs of the dense fine-tune.")
_PRUNE_EPOCHS = flags.DEFINE_integer("prune_epochs", 1, "Epochs of each pruning stage (soft, hard, baselines).")
_SPARSE_EPOCHS = flags.DEFINE_integer("sparse_epochs", 2, "Epochs of weight-pruning fine-tunes.")
_LAMBDAS = flags.DEFINE_list("lambdas", ["0.05", "0.2"], "LTP mask-loss weights.")
_TEMPERATURE = flags.DEFINE_float("temperature", 1e-3, "LTP soft-mask temperature (the paper's default).")
_LTP_THRESHOLD = flags.DEFINE_float("ltp_threshold", 0.01, "LTP's initial final_token_threshold.")
_KEEP_RATES = flags.DEFINE_list("keep_rates", ["0.3", "0.6"], "Top-k keep rates of the last layer.")
_THRESHOLDS = flags.DEFINE_list("thresholds", ["0.01", "0.02"], "Manual final_token_threshold values.")
_SPARSITY = flags.DEFINE_list("sparsity", ["2:4", "4x1"], "Weight-pruning patterns (2:4 at 0.5, others at 0.9).")
_LATENCY_EXAMPLES = flags.DEFINE_integer("latency_examples", 64, "Dev examples timed at batch 1 per point.")
_CALIBRATION_EXAMPLES = flags.DEFINE_integer(
    "calibration_examples", 300, "Training examples the pruned runner fits its batch-1 capacities on (0: off).")
_POINTS = flags.DEFINE_list("points", [], "Run only these point names (default: all).")
_SEED = flags.DEFINE_integer("seed", 42, "Training seed of every point.")
_REMEASURE = flags.DEFINE_bool("remeasure", False, "Time points again whose row results.json already holds, "
                                "without retraining them (by default a rerun reuses a row whose command is unchanged).")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Only rewrite results.{csv,md} and pareto.png from results.json.")


@dataclasses.dataclass(frozen=True)
class Point:
    """One sweep point: a name, its method and setting, and its training flags."""

    name: str
    method: str
    setting: str
    flags: tuple[str, ...]
    restore_from: str | None = "dense"

    @property
    def final_stage(self) -> str:
        """The stage whose checkpoint is this point's model (the last of its `--stages`)."""
        stages = next(f for f in self.flags if f.startswith("--stages="))
        return stages.split("=", 1)[1].split(",")[-1]


def sweep_points(task: str, dense_epochs: int, prune_epochs: int, sparse_epochs: int, lambdas: list[str],
                 temperature: float, ltp_threshold: float, keep_rates: list[str], thresholds: list[str],
                 sparsity: list[str], model: str | None = None) -> list[Point]:
    """The points of a sweep, dense first (pure: no I/O)."""
    dense_flags = ("--stages=finetune", f"--epoch={dense_epochs}") + ((f"--model={model}",) if model else ())
    points = [Point("dense", "dense", "-", dense_flags, restore_from=None),
              # Control: dense fine-tuned for as many more epochs as LTP's soft + hard stages train, so a pruned
              # point's gain over dense can be told apart from the gain of training longer.
              Point("dense_control", "dense (control)", f"+{2 * prune_epochs} epochs",
                    ("--stages=finetune", f"--epoch={2 * prune_epochs}"))]
    for value in lambdas:
        points.append(Point(f"ltp_lambda{value}", "LTP", f"lambda={value}, T={temperature:g}",
                            ("--stages=soft,hard", f"--epoch={prune_epochs}", f"--lambda={value}",
                             f"--temperature={temperature}", f"--final_token_threshold={ltp_threshold}")))
    for rate in keep_rates:
        points.append(Point(f"topk_{rate}", "top-k", f"keep rate={rate}",
                            ("--stages=topk", f"--epoch={prune_epochs}", f"--token_keep_rate={rate}")))
    for threshold in thresholds:
        points.append(Point(f"threshold_{threshold}", "manual threshold", f"threshold={threshold}",
                            ("--stages=threshold", f"--epoch={prune_epochs}", f"--final_token_threshold={threshold}")))
    for pattern in sparsity:
        target = 0.5 if ":" in pattern else 0.9
        points.append(Point(f"sparse_{pattern.replace(':', 'in')}", f"weights {pattern}", f"sparsity={target}",
                            ("--stages=finetune", f"--epoch={sparse_epochs}", "--do_prune",
                             f"--pruning_pattern={pattern}", f"--target_sparsity={target}",
                             "--sparsity_warm_epochs=0", "--cooldown_epochs=0.5", "--pruning_frequency=10")))
    if "2:4" in sparsity and lambdas:
        points.append(Point("ltp_2in4", "LTP + 2:4", f"lambda={lambdas[0]}, 2:4",
                            ("--stages=soft,hard", f"--epoch={prune_epochs}", f"--lambda={lambdas[0]}",
                             f"--temperature={temperature}", f"--final_token_threshold={ltp_threshold}", "--do_prune",
                             "--pruning_pattern=2:4", "--target_sparsity=0.5", "--sparsity_warm_epochs=0",
                             "--cooldown_epochs=0", "--pruning_frequency=10"), restore_from="sparse_2in4"))
    del task
    return points


def point_command(point: Point, task: str, output_dir: str, common: list[str], seed: int) -> list[str]:
    command = [sys.executable, "-m", "ltp_tf.train", f"--task={task}", f"--output_dir={output_dir}/{point.name}",
               f"--seed={seed}", "--verbose=2", *common, *point.flags]
    if point.restore_from is not None:
        source = next(p for p in POINTS_BY_NAME.values() if p.name == point.restore_from)
        checkpoint = stage_report(os.path.join(output_dir, source.name), source)["checkpoint"]
        command.append(f"--restore={os.path.relpath(checkpoint)}")  # relative: the printed command works in any clone
    return command


POINTS_BY_NAME: dict[str, Point] = {}


def stage_report(point_dir: str, point: Point) -> dict[str, Any]:
    """The report of a point's final stage (reports are keyed by stage name, not ordered)."""
    return read_report(point_dir)["stages"][point.final_stage]


def has_report(point_dir: str) -> bool:
    try:
        read_report(point_dir)
    except FileNotFoundError:
        return False
    return True


def read_report(point_dir: str) -> dict[str, Any]:
    for root, _, files in os.walk(point_dir):
        if "report.json" in files and os.path.basename(root) == os.path.basename(root).upper():
            with open(os.path.join(root, "report.json"), encoding="utf-8") as f:
                return json.load(f)
    raise FileNotFoundError(f"No training report under {point_dir}: has this point run?")


def measure_latency(checkpoint_dir: str, task: str, count: int, calibration_count: int) -> dict[str, float]:
    """Median batch-1 latency of a checkpoint's model and of its dense twin (interleaved), in ms.

    The pruned runner first fits its batch-1 capacities on `calibration_count` training examples (one compiled
    program per call instead of one per pruning layer, as `ltp_tf.benchmark` serves batch 1).
    """
    from ltp_tf.benchmarking.inputs import batches
    from ltp_tf.models.surgery import without_token_pruning
    from ltp_tf.benchmarking.timing import median_ms, time_after_warm_up
    from ltp_tf.checkpoints import load_checkpoint
    from ltp_tf.data import read_split, tokenize
    from ltp_tf.inference import TokenDroppingRunner
    from ltp_tf.serving.text import checkpoint_preprocessor

    checkpoint = load_checkpoint(checkpoint_dir)
    examples = read_split(task, checkpoint_task_split(task)).take(count)
    features = tokenize(checkpoint_preprocessor(checkpoint), examples.texts).as_dict()
    rows = batches(features, 1, count)
    runners = {"pruned": TokenDroppingRunner(checkpoint.model),
               "dense": TokenDroppingRunner(without_token_pruning(checkpoint.model))}
    if calibration_count:
        calibration = read_split(task, "train").take(calibration_count)
        runners["pruned"].fit_capacities(tokenize(checkpoint_preprocessor(checkpoint), calibration.texts).as_dict())
    return median_ms(time_after_warm_up(runners, rows))  # the warm-up pass compiles every length bucket


def checkpoint_task_split(task: str) -> str:
    from ltp_tf.data.glue import get_task

    return get_task(task).dev_splits[0]


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        sys.exit(f"benchmarks.sweep: error: unexpected arguments {argv[1:]} (flags are --name=value)")
    from ltp_tf.data.glue import get_task
    from ltp_tf.data.glue_metrics import primary_metric

    try:
        task = get_task(_TASK.value)
    except ValueError as error:
        sys.exit(f"benchmarks.sweep: error: {error}")
    output_dir = _OUTPUT_DIR.value or os.path.join("benchmarks", "sweeps", task.name)
    if _REPORT_ONLY.value:
        results = os.path.join(output_dir, "results.json")
        if not os.path.isfile(results):
            sys.exit(f"benchmarks.sweep: error: `--report_only` needs {results}; run the sweep first.")
        with open(results, encoding="utf-8") as f:
            write_results(json.load(f), output_dir, task.name)
        return
    os.makedirs(output_dir, exist_ok=True)
    points = sweep_points(task.name, _DENSE_EPOCHS.value, _PRUNE_EPOCHS.value, _SPARSE_EPOCHS.value, _LAMBDAS.value,
                          _TEMPERATURE.value, _LTP_THRESHOLD.value, _KEEP_RATES.value, _THRESHOLDS.value,
                          _SPARSITY.value, _MODEL.value)
    if _POINTS.value:
        unknown = sorted(set(_POINTS.value) - {p.name for p in points})
        if unknown:
            sys.exit(f"benchmarks.sweep: error: `--points` must name points of this sweep {[p.name for p in points]}. "
                     f"Received: {unknown}")
        points = [p for p in points if p.name in _POINTS.value or p.name == "dense"]
    POINTS_BY_NAME.update({p.name: p for p in sweep_points(
        task.name, _DENSE_EPOCHS.value, _PRUNE_EPOCHS.value, _SPARSE_EPOCHS.value, _LAMBDAS.value, _TEMPERATURE.value,
        _LTP_THRESHOLD.value, _KEEP_RATES.value, _THRESHOLDS.value, _SPARSITY.value, _MODEL.value)})
    rows: dict[str, dict[str, Any]] = {}
    metric = primary_metric(task)
    split = task.dev_splits[0]
    earlier = previous_rows(output_dir)
    for point in points:
        command = point_command(point, task.name, output_dir, _TRAIN_FLAGS.value, _SEED.value)
        printable = " ".join(shlex.quote(c) for c in ["python", *command[1:]])
        print(f"\n=== {point.name}: {printable}", flush=True)
        unchanged = earlier.get(point.name, {}).get("command") == printable
        if unchanged and not _REMEASURE.value:
            print(f"{point.name}: measured by an earlier run of this command; reusing its row (--remeasure to time "
                  "it again).", flush=True)
            rows[point.name] = earlier[point.name]
            write_results(_in_sweep_order(points, rows, earlier), output_dir, task.name)
            continue
        trained = unchanged and _REMEASURE.value and has_report(os.path.join(output_dir, point.name))
        if not trained and subprocess.run(command).returncode:
            sys.exit(f"benchmarks.sweep: error: point {point.name} failed; its command was: {printable}")
        last = stage_report(os.path.join(output_dir, point.name), point)
        latency = measure_latency(last["checkpoint"], task.name, _LATENCY_EXAMPLES.value, _CALIBRATION_EXAMPLES.value)
        row = {"point": point.name, "method": point.method, "setting": point.setting, "metric": metric,
               "dev": last["dev"][split][metric], "all_metrics": last["dev"][split],
               "flops_reduction": last["flops"]["reduction"], "kept_ratio_last_layer": last["kept_token_ratio"][-1],
               "latency_ms_pruned": latency["pruned"], "latency_ms_dense": latency["dense"],
               "speedup_batch1": latency["dense"] / latency["pruned"], "seed": _SEED.value, "command": printable}
        rows[point.name] = row
        write_results(_in_sweep_order(points, rows, earlier), output_dir, task.name)
    print(markdown_table(list(rows.values()), task.name))


def _in_sweep_order(points: list[Point], done: dict[str, dict[str, Any]],
                    earlier: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """This run's rows so far, plus the earlier rows of points it has not reached (an interruption loses none)."""
    return [done.get(p.name) or earlier[p.name] for p in points if p.name in done or p.name in earlier]


def previous_rows(output_dir: str) -> dict[str, dict[str, Any]]:
    """The rows an earlier run wrote to results.json, by point name (none if there is no such file)."""
    path = os.path.join(output_dir, "results.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return {row["point"]: row for row in json.load(f)}


def write_results(rows: list[dict[str, Any]], output_dir: str, task: str) -> None:
    """results.json, results.csv, results.md and pareto.png (rewritten after every point, each atomically:
    a rerun reads results.json back)."""
    from ltp_tf.atomic import write_json, write_text

    write_json(os.path.join(output_dir, "results.json"), rows)
    columns = ["point", "method", "setting", "metric", "dev", "flops_reduction", "speedup_batch1",
               "kept_ratio_last_layer", "latency_ms_pruned", "latency_ms_dense", "seed", "command"]
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(os.path.join(output_dir, "results.csv"), table.getvalue())
    write_text(os.path.join(output_dir, "results.md"), markdown_table(rows, task) + "\n")
    plot_pareto(rows, os.path.join(output_dir, "pareto.png"), task)


def markdown_table(rows: list[dict[str, Any]], task: str) -> str:
    """One row per point: the primary dev metric, the others, FLOPs, batch-1 latency, seed and command."""
    lines = [f"| method | setting | dev {rows[0]['metric'] if rows else ''} | all dev metrics | FLOPs reduction "
             "| kept at last layer | batch-1 ms, pruned / dense | measured speedup (batch 1) | seed | command |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        others = ", ".join(f"{name} {100 * value:.2f}" for name, value in sorted(row["all_metrics"].items()))
        lines.append(f"| {row['method']} | {row['setting']} | {100 * row['dev']:.2f} | {others} | "
                     f"{row['flops_reduction']:.2f}x | {row['kept_ratio_last_layer']:.3f} | "
                     f"{row['latency_ms_pruned']:.1f} / {row['latency_ms_dense']:.1f} | {row['speedup_batch1']:.2f}x | "
                     f"{row['seed']} | `{row['command']}` |")
    del task
    return "\n".join(lines)


def plot_pareto(rows: list[dict[str, Any]], path: str, task: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4), dpi=100)
    for method in dict.fromkeys(r["method"] for r in rows):
        points = sorted((r["flops_reduction"], 100 * r["dev"]) for r in rows if r["method"] == method)
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
    # The goal line: 1 point under the dense control (as many epochs as the pruned points) where there is one.
    for reference in ("dense (control)", "dense"):
        scores = [100 * r["dev"] for r in rows if r["method"] == reference]
        if scores:
            axis.axhline(scores[0] - 1.0, linestyle="--", color="gray", linewidth=0.8, label=f"{reference} - 1 point")
            break
    axis.axvline(2.0, linestyle=":", color="gray", linewidth=0.8)
    axis.set_xlabel("FLOPs reduction vs dense (x)")
    axis.set_ylabel(f"dev {rows[0]['metric']}" if rows else "dev metric")
    axis.set_title(f"{task}: dev metric vs FLOPs")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


if __name__ == "__main__":
    app.run(main)
