"""Picks ONNX Runtime's token budget (`--onnx_max_batch_tokens`) on this machine from measured throughput.

A batch too large for the CPU's caches runs slower per sequence than its parts: the pruned graph spells out
attention at pruning layers (batch x heads x seq x seq probabilities, written several times) and pads every
row to the batch's longest kept row at each compaction. `OnnxPredictor` can run a batch as sub-batches of
rows sorted by length under a token budget (`ltp_tf.serving.onnx_export`). This times the dense and pruned
ONNX graphs of a checkpoint (exported as `ltp_tf.benchmark` exports them) at one batch size under each
budget, timed in turns on the same inputs (dev sets and long windows of dev text), and prints
a Markdown table of sequences per second with the budget that serves every input fastest per model:

    python -m benchmarks.onnx_batch_tokens --checkpoint=<LTP checkpoint> --datasets=mrpc,sst2 \\
        --long_lengths=128,256,512 --batch_size=32 --budgets=0,512,1024,2048,4096,8192 --threads=2 \\
        --output=benchmarks/results/onnx_batch_tokens.md

Run it on a quiet machine (timings); outputs are the same under every budget (tested in
tests/tf/test_onnx_budget.py), so the choice is a speed choice only. Store the chosen budget with
the export: `python -m ltp_tf.export --onnx --onnx_max_batch_tokens=<budget>`.
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
import tempfile

import numpy as np
from absl import app, flags

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint folder of a token-pruning model.", required=True)
_DATASETS = flags.DEFINE_list("datasets", [], "GLUE tasks whose dev texts are timed (default: the model's task).")
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", 256, "Dev examples per dataset.", lower_bound=1)
_LONG_LENGTHS = flags.DEFINE_list("long_lengths", ["128", "256", "512"], "Also time windows of dev text this long.")
_LONG_EXAMPLES = flags.DEFINE_integer("long_examples", 32, "Windows per long length.", lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Rows per call.", lower_bound=1)
_BUDGETS = flags.DEFINE_list("budgets", ["0", "512", "1024", "2048", "4096", "8192"],
                             "Token budgets to time (0: whole batches).")
_ENGINES = flags.DEFINE_list("engines", ["onnxruntime"], "onnxruntime and/or onnxruntime_int8.")
_THREADS = flags.DEFINE_integer("threads", None, "onnxruntime intra-op threads (default: every CPU).", lower_bound=1)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "GLUE folder (default: ../shared/data/glue).")
_OUTPUT = flags.DEFINE_string("output", None, "Markdown file to write (default: print only).")


def fastest_budget(seconds: dict[int, float]) -> int:
    """The budget of least total time (the smallest budget among equals)."""
    return min(sorted(seconds), key=lambda budget: seconds[budget])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        sys.exit(f"benchmarks.onnx_batch_tokens: error: unexpected arguments {argv[1:]} (flags are --name=value)")
    try:
        budgets = tuple(int(b) for b in _BUDGETS.value)
        long_lengths = tuple(int(n) for n in _LONG_LENGTHS.value)
    except ValueError:
        budgets, long_lengths = (), (-1,)
    if not budgets or min(budgets) < 0 or (long_lengths and min(long_lengths) < 3):
        sys.exit("benchmarks.onnx_batch_tokens: error: `--budgets` must be integers >= 0 and `--long_lengths` "
                 f"integers >= 3. Received: --budgets={','.join(_BUDGETS.value)} "
                 f"--long_lengths={','.join(_LONG_LENGTHS.value)}")
    engines = tuple(_ENGINES.value)
    if not engines or not set(engines) <= {"onnxruntime", "onnxruntime_int8"}:
        sys.exit("benchmarks.onnx_batch_tokens: error: `--engines` must name onnxruntime and/or onnxruntime_int8. "
                 f"Received: --engines={','.join(engines)}")

    from ltp_tf.atomic import write_file
    from ltp_tf.benchmarking import engines as engines_lib
    from ltp_tf.benchmarking import inputs as inputs_lib
    from ltp_tf.benchmarking.timing import time_after_warm_up
    from ltp_tf.checkpoints import load_checkpoint
    from ltp_tf.data import get_task
    from ltp_tf.models.surgery import without_token_pruning
    from ltp_tf.serving.text import checkpoint_preprocessor

    try:  # a missing checkpoint or unknown dataset: one line, before anything is exported or timed
        pruned = load_checkpoint(_CHECKPOINT.value)
        task = get_task(pruned.task)
        for name in _DATASETS.value:
            get_task(name)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"benchmarks.onnx_batch_tokens: error: {error}")
    positions = pruned.model.backbone.max_sequence_length
    if long_lengths and max(long_lengths) > positions:
        sys.exit(f"benchmarks.onnx_batch_tokens: error: `--long_lengths` must be <= the model's {positions} "
                 f"positions. Received: --long_lengths={','.join(_LONG_LENGTHS.value)}")
    load_before = os.getloadavg()
    datasets, _ = inputs_lib.dev_and_long_inputs(
        checkpoint_preprocessor(pruned), task, _DATASETS.value, _MAX_EXAMPLES.value, 1, long_lengths,
        _LONG_EXAMPLES.value, _DATA_DIR.value)
    models = {"dense": without_token_pruning(pruned.model), "pruned": pruned.model}
    workdir = tempfile.mkdtemp(prefix="ltp_tf_batch_tokens_")
    try:
        _, exports = engines_lib.prepare_exports(engines, pruned, models, workdir,
                                                 max([pruned.max_seq_length, *long_lengths]))
        settings = engines_lib.EngineSettings(threads=_THREADS.value)
        seconds = {}  # (engine, model, budget) -> {dataset: total seconds}
        for engine in engines:
            base = engines_lib.predictors(engine, models, exports, settings, None, workdir)
            timed = {}
            for model, predictor in base.items():
                for budget in budgets:
                    timed[(engine, model, budget)] = copy.copy(predictor)  # one session, its own budget
                    timed[(engine, model, budget)].max_batch_tokens = budget
            for dataset, (features, total, _) in datasets.items():
                batches = inputs_lib.batches(features, _BATCH_SIZE.value, total)
                times = time_after_warm_up({str(key): predict for key, predict in timed.items()}, batches)
                for key in timed:
                    seconds.setdefault(key, {})[dataset] = float(np.sum(times[str(key)]))
                print(f"timed {engine} {dataset}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    table = _table(seconds, datasets, engines, budgets)
    print(table)
    if _OUTPUT.value:
        command = " ".join(["python -m benchmarks.onnx_batch_tokens", *sys.argv[1:]])
        text = (f"# ONNX Runtime token budget at batch {_BATCH_SIZE.value}\n\n`{command}`\n\n"
                f"{os.cpu_count()} CPUs; load average (1 min) {load_before[0]:.2f} before, "
                f"{os.getloadavg()[0]:.2f} after.\n\n{table}\n")
        write_file(_OUTPUT.value, lambda tmp: open(tmp, "w").write(text))


def _table(seconds, datasets, engines, budgets) -> str:
    """Sequences per second per (engine, model, budget) and dataset, and each model's fastest budget."""
    names = list(datasets)
    lines = ["| engine | model | budget | " + " | ".join(f"{name} (seq/s)" for name in names) + " | all inputs (s) |",
             "|---|---|---:|" + "---:|" * (len(names) + 1)]
    choice = {}
    for engine in engines:
        for model in ("dense", "pruned"):
            totals = {budget: sum(seconds[(engine, model, budget)].values()) for budget in budgets}
            choice[(engine, model)] = fastest_budget(totals)
            for budget in budgets:
                cells = [f"{datasets[name][1] / seconds[(engine, model, budget)][name]:.1f}" for name in names]
                mark = " (fastest)" if budget == choice[(engine, model)] else ""
                lines.append(f"| {engine} | {model} | {budget or 'whole batch'}{mark} | " + " | ".join(cells)
                             + f" | {totals[budget]:.2f} |")
    lines.append("")
    lines += [f"- {engine} {model}: fastest budget {budget or 'whole batches (0)'}"
              for (engine, model), budget in choice.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    app.run(main)
