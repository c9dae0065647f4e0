"""Accuracy versus cost on a GLUE task: a dense learning-rate grid, then LTP at FLOPs targets with and without
distillation, top-k (LTP's schedule and at equal FLOPs), the manual threshold, 2:4 and 4x1 weights, LTP + 2:4,
over one or more seeds.

    python -m benchmarks.sweep --task=mrpc --dense_lrs=2e-5,5e-5,1e-4 --seeds=42,43,44 \
        --train_flags=--max_seq_length=128,--bs=32

Every point is one `python -m ltp_tf.train` command (printed in the table, so each row reproduces alone), run
in its own folder `<output_dir>/<point>` (`<point>_seed<s>` for the seeds after the first). The points and
how they depend on each other are `benchmarks.sweep_points`: every pruned point restores the selected dense
model of its seed (the best dev score of the learning-rate grid; later seeds train dense at that rate), and
a `dense (control)` point trains it for as many more epochs as LTP's soft and hard stages, to separate
pruning from extra training. For each point the sweep reads the dev metrics, FLOPs reduction, kept ratios
and training time from the training report and (unless `--latency_examples=0`) measures batch-1 CPU latency
and batch-32 throughput of the point's model against its dense twin (same weights, pruning off), timed in
turns through the XLA token-dropping runner. Results: `benchmarks.sweep_table` (`results.{json,csv,md}`, `pareto.png`). A
rerun reuses the rows of points whose command is unchanged (`--remeasure` times them again) and the training
CLI skips finished stages, so an interrupted or extended sweep continues where it stopped. `--jobs=N` trains
up to N points at once (a point starts when the points it depends on have finished, those more points wait for
first, then in sweep order; the first failure stops new starts). Checkpoints are git-ignored: on a fresh clone
a point that starts from a finished point's model rebuilds that model first by the command its row recorded
(`rebuilt_dev` in the row is the rebuilt model's dev score).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shlex
import subprocess
import sys
from typing import Any

from absl import app, flags

from benchmarks.sweep_points import (Point, SweepSpec, dependents, resolve_flags, resolve_setting,
                                     rows_in_sweep_order, select_dense, sweep_points, waits_for, with_dependencies)
from benchmarks.sweep_table import SPEED_COLUMNS, markdown_table, read_rows, summary_table, write_results

_TASK = flags.DEFINE_string("task", None, "GLUE task.", required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Sweep folder (default: benchmarks/sweeps/<task>).")
_TRAIN_FLAGS = flags.DEFINE_list("train_flags", [], "Flags every training command gets (data size, length, batch).")
_MODEL = flags.DEFINE_string("model", None, "Pretrained encoder the dense point fine-tunes (`ltp_tf.train --model`: a "
                             "local Hugging Face folder); the other points restore from it. Default: the packaged "
                             "MiniLM.")
_DENSE_LRS = flags.DEFINE_list("dense_lrs", ["5e-5"], "Learning-rate grid of the dense fine-tune (best dev is kept).")
_DENSE_EPOCHS = flags.DEFINE_integer("dense_epochs", 3, "Epochs of the dense fine-tune.")
_DENSE_WARMUP = flags.DEFINE_float("dense_warmup", 0.1, "Warm-up ratio of the dense fine-tune.")
_PRUNE_LR = flags.DEFINE_string("prune_lr", "5e-5", "Learning rate of every point after the dense fine-tune.")
_PRUNE_EPOCHS = flags.DEFINE_integer("prune_epochs", 1, "Epochs of each LTP stage (soft, hard); single-stage "
                                     "baselines and the control train twice as long.")
_SPARSE_EPOCHS = flags.DEFINE_integer("sparse_epochs", 2, "Epochs of weight-pruning fine-tunes.")
_TARGETS = flags.DEFINE_list("targets", ["1.5", "2", "2.5"], "FLOPs-reduction targets of LTP with distillation.")
_NO_KD_TARGETS = flags.DEFINE_list("no_kd_targets", ["2"], "FLOPs-reduction targets of LTP without distillation.")
_TARGET_FLAGS = flags.DEFINE_list("target_flags", ["--soft_mask=straight_through", "--threshold_lr=2e-4"],
                                  "Training flags of every FLOPs-target point.")
_KD_FLAGS = flags.DEFINE_list("kd_flags", ["--kd_weight=1", "--kd_temperature=2"],
                              "Distillation flags of the `LTP + KD` points.")
_LAMBDAS = flags.DEFINE_list("lambdas", [], "LTP mask-loss weights (points with a fixed lambda, no target).")
_TEMPERATURE = flags.DEFINE_float("temperature", 1e-3, "LTP soft-mask temperature (the paper's default).")
_LTP_THRESHOLD = flags.DEFINE_float("ltp_threshold", 0.01, "LTP's initial final_token_threshold.")
_KEEP_RATES = flags.DEFINE_list("keep_rates", ["0.01"], "Top-k keep rates of the last layer (LTP's schedule).")
_EQUAL_FLOPS = flags.DEFINE_list("equal_flops", ["ltp_target2"], "LTP points that get a top-k point at their "
                                 "measured per-layer kept ratios (top-k at equal FLOPs).")
_THRESHOLDS = flags.DEFINE_list("thresholds", ["0.01"], "Manual final_token_threshold values.")
_SPARSITY = flags.DEFINE_list("sparsity", ["2:4", "4x1"], "Weight-pruning patterns (2:4 at 0.5, others at 0.9).")
_SPARSE_FLAGS = flags.DEFINE_list("sparse_flags", ["--distill_loss_weight=1"],
                                  "Flags of the weight-pruning points (the reference distils from the dense model).")
_SPARSE_LTP_LAMBDA = flags.DEFINE_string("sparse_ltp_lambda", "0.1", "Lambda of LTP on the 2:4 model (empty: no "
                                         "such point; FLOPs targets do not combine with weight pruning yet).")
_SEEDS = flags.DEFINE_list("seeds", ["42"], "Training seeds: the first runs every point, the others `--seed_points`.")
_SEED_POINTS = flags.DEFINE_list(
    "seed_points", ["dense", "dense_control", "ltp_target2", "ltp_target2_nokd", "topk_eq_ltp_target2"],
    "Points the seeds after the first run again (with their own dense model).")
_LATENCY_EXAMPLES = flags.DEFINE_integer("latency_examples", 64, "Dev examples timed at batch 1 per point (0: no "
                                         "timing, e.g. while other jobs share the CPU).")
_CALIBRATION_EXAMPLES = flags.DEFINE_integer(
    "calibration_examples", 300, "Training examples the pruned runner fits its batch-1 capacities on (0: off).")
_POINTS = flags.DEFINE_list("points", [], "Run only these point names and the points they depend on (default: all).")
_REMEASURE = flags.DEFINE_bool("remeasure", False, "Time points again whose row results.json already holds, "
                                "without retraining them (by default a rerun reuses a row whose command is unchanged).")
_JOBS = flags.DEFINE_integer("jobs", 1, "Points trained at once, each as soon as the points it starts from have "
                             "finished (e.g. several on one GPU). Above 1, each point's output goes to "
                             "<output_dir>/logs/<point>.log and timing is off (`--latency_examples=0`).")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Only rewrite results.{csv,md} and pareto.png from results.json.")


def spec_from_flags() -> SweepSpec:
    """The sweep's settings, parsed once from the flags."""
    try:
        seeds = tuple(int(s) for s in _SEEDS.value)
    except ValueError:
        raise ValueError(f"`--seeds` must be comma-separated integers. Received: --seeds={','.join(_SEEDS.value)}") from None
    return SweepSpec(
        dense_lrs=tuple(_DENSE_LRS.value), dense_epochs=_DENSE_EPOCHS.value, dense_warmup=_DENSE_WARMUP.value,
        prune_lr=_PRUNE_LR.value, prune_epochs=_PRUNE_EPOCHS.value, sparse_epochs=_SPARSE_EPOCHS.value,
        targets=tuple(_TARGETS.value), no_kd_targets=tuple(_NO_KD_TARGETS.value),
        target_flags=tuple(_TARGET_FLAGS.value), kd_flags=tuple(_KD_FLAGS.value), lambdas=tuple(_LAMBDAS.value),
        temperature=_TEMPERATURE.value, ltp_threshold=_LTP_THRESHOLD.value, keep_rates=tuple(_KEEP_RATES.value),
        equal_flops=tuple(_EQUAL_FLOPS.value), thresholds=tuple(_THRESHOLDS.value), sparsity=tuple(_SPARSITY.value),
        sparse_flags=tuple(_SPARSE_FLAGS.value), sparse_ltp_lambda=_SPARSE_LTP_LAMBDA.value, model=_MODEL.value,
        seeds=seeds, seed_points=tuple(_SEED_POINTS.value))


def point_command(point: Point, task: str, output_dir: str, common: list[str], resolved: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "ltp_tf.train", f"--task={task}", f"--output_dir={output_dir}/{point.name}",
            f"--seed={point.seed}", "--verbose=2", *common, *resolved]


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


def measure_speed(checkpoint_dir: str, task: str, count: int, calibration_count: int,
                  batch_size: int = 32) -> dict[str, float]:
    """Batch-1 median latency (ms, `count` dev examples) and batch-`batch_size` throughput (examples/s, the whole
    dev set) of a checkpoint's model and of its dense twin (`ltp_tf.benchmarking.runner_speed`); the pruned
    runner's batch-1 capacities are fitted on `calibration_count` training examples."""
    from ltp_tf.benchmarking.runner_speed import measure
    from ltp_tf.checkpoints import load_checkpoint
    from ltp_tf.data import read_split, tokenize
    from ltp_tf.serving.text import checkpoint_preprocessor

    checkpoint = load_checkpoint(checkpoint_dir)
    preprocessor = checkpoint_preprocessor(checkpoint)
    features = tokenize(preprocessor, read_split(task, checkpoint_task_split(task)).texts).as_dict()
    calibration = None
    if calibration_count:
        calibration = tokenize(preprocessor, read_split(task, "train").take(calibration_count).texts).as_dict()
    return measure(checkpoint.model, features, count, calibration, (batch_size,))


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
        spec = spec_from_flags()
        if _JOBS.value < 1:
            raise ValueError(f"`--jobs` must be an integer >= 1. Received: --jobs={_JOBS.value}")
        if _JOBS.value > 1 and _LATENCY_EXAMPLES.value:
            raise ValueError("`--jobs` above 1 trains points at once, which would share the machine with every timing: "
                             f"set --latency_examples=0. Received: --jobs={_JOBS.value}, "
                             f"--latency_examples={_LATENCY_EXAMPLES.value}")
        points = sweep_points(spec)
        run = with_dependencies(points, _POINTS.value) if _POINTS.value else points
    except ValueError as error:
        sys.exit(f"benchmarks.sweep: error: {error}")
    output_dir = _OUTPUT_DIR.value or os.path.join("benchmarks", "sweeps", task.name)
    if _REPORT_ONLY.value:
        earlier = read_rows(output_dir)
        if not earlier:
            sys.exit(f"benchmarks.sweep: error: `--report_only` needs {output_dir}/results.json; run the sweep first.")
        write_results(list(earlier.values()), output_dir, task.name)
        return
    os.makedirs(output_dir, exist_ok=True)
    metric, split = primary_metric(task), task.dev_splits[0]
    earlier = read_rows(output_dir)
    rows: dict[str, dict[str, Any]] = {}

    def checkpoint_of(name: str) -> str:
        point = next(p for p in points if p.name == name)
        point_dir = os.path.join(output_dir, name)
        if not has_report(point_dir) and name in earlier:
            # Checkpoints are git-ignored: on a fresh clone a finished point's row is here, its model is not.
            command = point_command(point, task.name, output_dir, _TRAIN_FLAGS.value,
                                    resolve_flags(point, points, finished(), checkpoint_of))
            rebuild_checkpoint(point, point_dir, command, earlier[name], split, metric)
        # Relative: the printed command works in any clone.
        return os.path.relpath(stage_report(point_dir, point)["checkpoint"])

    def finished() -> dict[str, dict[str, Any]]:
        return {**earlier, **rows}

    run_names = {p.name for p in run}

    def ready(point: Point) -> bool:
        return all(name in rows or (name not in run_names and name in earlier) for name in waits_for(point, points))

    def finish(point: Point, printable: str, trained: bool) -> None:
        setting = resolve_setting(point, points, finished())
        rows[point.name] = point_row(point, setting, os.path.join(output_dir, point.name), task.name, metric, split,
                                     printable, earlier.get(point.name) if trained else None)
        _mark_selected(points, rows, spec)
        write_results(rows_in_sweep_order(points, rows, earlier), output_dir, task.name)

    # Ready points start in sweep order, except that with `--jobs` above 1 the ones more points wait for go first.
    priority = dependents(run, points) if _JOBS.value > 1 else {p.name: 0 for p in run}
    pending, failed = sorted(run, key=lambda p: -priority[p.name]), []
    running: dict[concurrent.futures.Future, tuple[Point, str]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=_JOBS.value) as pool:
        while True:
            startable = [p for p in pending if ready(p)] if not failed else []
            for point in startable[:_JOBS.value - len(running)]:
                pending.remove(point)
                command = point_command(point, task.name, output_dir, _TRAIN_FLAGS.value,
                                        resolve_flags(point, points, finished(), checkpoint_of))
                printable = " ".join(shlex.quote(c) for c in ["python", *command[1:]])
                print(f"\n=== {point.name}: {printable}", flush=True)
                unchanged = earlier.get(point.name, {}).get("command") == printable
                if unchanged and not _REMEASURE.value:
                    print(f"{point.name}: measured by an earlier run of this command; reusing its row (--remeasure to "
                          "time it again).", flush=True)
                    rows[point.name] = earlier[point.name]
                    _mark_selected(points, rows, spec)
                    write_results(rows_in_sweep_order(points, rows, earlier), output_dir, task.name)
                elif unchanged and has_report(os.path.join(output_dir, point.name)):
                    finish(point, printable, trained=True)  # --remeasure: time the trained checkpoint again
                else:
                    log = os.path.join(output_dir, "logs", f"{point.name}.log") if _JOBS.value > 1 else None
                    running[pool.submit(train_point, command, log)] = (point, printable)
            if not running:
                if startable:  # rows were reused: points waiting on them may start now
                    continue
                break
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                point, printable = running.pop(future)
                if future.result():
                    failed.append(f"point {point.name} failed; its command was: {printable}")
                else:
                    print(f"{point.name}: finished.", flush=True)
                    finish(point, printable, trained=False)
    if failed:
        sys.exit("benchmarks.sweep: error: " + "; ".join(failed))
    if pending:  # not expected: `with_dependencies` runs what every point waits for
        sys.exit(f"benchmarks.sweep: error: points {[p.name for p in pending]} wait for points that neither ran nor "
                 "have a row in results.json")
    print(summary_table(list(rows.values())))
    print(markdown_table(list(rows.values())))


def train_point(command: list[str], log: str | None) -> int:
    """Runs a point's training command; its output goes to `log` when given (points running at once). Returns
    the exit status."""
    if log is None:
        return subprocess.run(command).returncode
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w", encoding="utf-8") as f:
        return subprocess.run(command, stdout=f, stderr=subprocess.STDOUT).returncode


# How far a rebuilt model's dev score may be from its row's and count as the same model: CPU kernels reduce in
# thread order, so a retrained model can differ in the 7th digit (seen: STS-B 0.8584533 vs 0.8584531).
REBUILT_TOLERANCE = 1e-4


def rebuild_checkpoint(point: Point, point_dir: str, command: list[str], row: dict[str, Any], split: str,
                       metric: str) -> None:
    """Retrains a finished point whose checkpoint this machine lacks, by the command its row recorded, for the
    points that start from it; records the rebuilt model's dev score in the row (`rebuilt_dev`) and warns when it
    differs from the recorded one by more than `REBUILT_TOLERANCE`."""
    printable = " ".join(shlex.quote(c) for c in ["python", *command[1:]])
    if printable != row["command"]:
        sys.exit(f"benchmarks.sweep: error: point {point.name} has a row but no checkpoint, and its recorded command "
                 f"differs from this sweep's ({row['command']!r} vs {printable!r}); rerun it with its own flags or "
                 f"delete its row to train it anew.")
    print(f"{point.name}: its row is in results.json but its checkpoint is not on this machine; retraining it by "
          "its recorded command.", flush=True)
    if subprocess.run(command).returncode:
        sys.exit(f"benchmarks.sweep: error: rebuilding point {point.name} failed; its command was: {printable}")
    rebuilt = stage_report(point_dir, point)["dev"][split][metric]
    row["rebuilt_dev"] = rebuilt
    if abs(rebuilt - row["dev"]) > REBUILT_TOLERANCE:
        print(f"{point.name}: WARNING: the rebuilt model scores {metric}={rebuilt:.6g} on dev, its row "
              f"{row['dev']:.6g}; the points trained from it now start from the rebuilt model.", flush=True)


def point_row(point: Point, setting: str, point_dir: str, task: str, metric: str, split: str, command: str,
              earlier: dict[str, Any] | None) -> dict[str, Any]:
    """A finished point's row: dev metrics, FLOPs, kept ratios and training time from its report, and (unless
    `--latency_examples=0`) its batch-1 latency and batch-32 throughput against its dense twin."""
    report = read_report(point_dir)["stages"]
    last = report[point.final_stage]
    speed: dict[str, Any] = {name: None for name in SPEED_COLUMNS}
    if _LATENCY_EXAMPLES.value:
        speed = measure_speed(last["checkpoint"], task, _LATENCY_EXAMPLES.value, _CALIBRATION_EXAMPLES.value)
    # A remeasured point keeps the training time of the run that trained it.
    seconds = (earlier or {}).get("train_seconds") or sum(stage["train"].get("seconds_this_run", 0.0)
                                                          for stage in report.values())
    return {"point": point.name, "method": point.method, "setting": setting, "metric": metric,
            "dev": last["dev"][split][metric], "all_metrics": last["dev"][split],
            "target_flops_reduction": point.target, "flops_reduction": last["flops"]["reduction"],
            "kept_token_ratio": last["kept_token_ratio"], "kept_ratio_last_layer": last["kept_token_ratio"][-1],
            **speed, "train_seconds": seconds, "seed": point.seed, "selected": False, "command": command}


def _mark_selected(points: list[Point], rows: dict[str, dict[str, Any]], spec: SweepSpec) -> None:
    """Flags each seed's selected dense row (the one the pruned points of that seed start from)."""
    for seed in spec.seeds:
        try:
            chosen = select_dense(points, rows, seed)
        except ValueError:
            continue
        for name, row in rows.items():
            if row["method"] == "dense" and row["seed"] == seed:
                row["selected"] = name == chosen


if __name__ == "__main__":
    app.run(main)
