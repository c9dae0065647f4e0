"""Where inference time goes in ONNX Runtime: time per op class (onnxruntime's profiler), one model or several.

    python -m benchmarks.profile_onnx --models=dense=a.onnx,pruned=b.onnx [--task=sst2] [--examples=64] \
        [--batch_size=32]

Runs every model on the first `--examples` dev sentences of `--task` (tokenized with the packaged MiniLM
vocabulary, max 128 tokens), one at a time or in consecutive batches of `--batch_size` padded to their longest
row, with onnxruntime's profiler on, and prints a Markdown table: per op type, the mean microseconds per call
summed over that type's nodes, and its share of the time spent in nodes; plus the mean wall time per call (the
rest is session overhead: input binding, allocation). Op types under 2% of every model's node time are summed
as "other". The profiler's own cost per node inflates graphs of many small nodes, so a last row times every
model again with the profiler off, all sessions taking turns on the same inputs (`ltp_tf.benchmarking.timing`,
after a warm-up pass): that row, not the profiled one, compares the models' speed.
"""

from __future__ import annotations

import collections
import json
import os
import tempfile

import numpy as np
from absl import app, flags

_MODELS = flags.DEFINE_list("models", None, "name=path.onnx pairs (token-id inputs).")
_TASK = flags.DEFINE_string("task", "sst2", "GLUE task whose dev texts are run.")
_EXAMPLES = flags.DEFINE_integer("examples", 64, "Dev examples run.", lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 1, "Examples per call (consecutive, padded to their longest).",
                                   lower_bound=1)
_THREADS = flags.DEFINE_integer("threads", None, "Intra-op threads (default: every CPU).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "GLUE folder (default: ../shared/data/glue).")


def profile(path: str, batches: list[dict[str, np.ndarray]], threads: int | None) -> tuple[dict[str, float], float]:
    """(microseconds per call by op type, mean wall milliseconds per call) of the model at `path`."""
    import onnxruntime

    from ltp_tf.benchmarking.timing import time_in_turns
    from ltp_tf.serving.onnx_export import session_options

    options = session_options(threads)
    onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"]).run(None, batches[0])  # warm-up
    with tempfile.TemporaryDirectory() as folder:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        walls = time_in_turns({"model": lambda batch: session.run(None, batch)}, batches)["model"]
        with open(session.end_profiling()) as f:
            events = json.load(f)
    by_type: collections.Counter = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            by_type[event["args"]["op_name"]] += event["dur"]
    return {name: total / len(batches) for name, total in by_type.items()}, float(np.mean(walls)) * 1e3


def unprofiled_ms(paths: dict[str, str], batches: list[dict[str, np.ndarray]], threads: int | None) -> dict[str, float]:
    """Median wall milliseconds per call of every model, profiler off, the sessions taking turns."""
    import onnxruntime

    from ltp_tf.benchmarking.timing import median_ms, time_after_warm_up
    from ltp_tf.serving.onnx_export import session_options

    sessions = {name: onnxruntime.InferenceSession(path, session_options(threads), providers=["CPUExecutionProvider"])
                for name, path in paths.items()}
    return median_ms(time_after_warm_up({name: (lambda batch, s=session: s.run(None, batch))
                                         for name, session in sessions.items()}, batches))


def markdown(profiles: dict[str, tuple[dict[str, float], float]], unprofiled: dict[str, float]) -> str:
    names = list(profiles)
    totals = {name: sum(profiles[name][0].values()) for name in names}
    kept = sorted({op for name in names for op, us in profiles[name][0].items() if us >= 0.02 * totals[name]},
                  key=lambda op: -max(profiles[name][0].get(op, 0.0) for name in names))
    lines = ["| op type | " + " | ".join(f"{name} µs (share)" for name in names) + " |",
             "|---|" + "---:|" * len(names)]
    for op in kept + ["other"]:
        cells = []
        for name in names:
            times = profiles[name][0]
            us = (sum(v for k, v in times.items() if k not in kept) if op == "other" else times.get(op, 0.0))
            cells.append(f"{us:.0f} ({us / totals[name]:.0%})" if us else "")
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    lines.append("| **all nodes** | " + " | ".join(f"**{totals[name]:.0f}**" for name in names) + " |")
    lines.append("| wall time per call (ms) | " + " | ".join(f"{profiles[name][1]:.2f}" for name in names) + " |")
    lines.append("| **median ms per call, profiler off** | " + " | ".join(f"**{unprofiled[name]:.2f}**" for name in names)
                 + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    del argv
    from ltp_tf.data import get_task, load_preprocessor, read_split, tokenize
    from ltp_tf.models import packaged_minilm_path

    models = dict(pair.split("=", 1) for pair in _MODELS.value)
    task = get_task(_TASK.value)
    examples = read_split(task, task.dev_splits[0], _DATA_DIR.value).take(_EXAMPLES.value)
    features = tokenize(load_preprocessor(packaged_minilm_path(), sequence_length=128), examples.texts).as_dict()
    lengths = features["padding_mask"].sum(1)
    size = _BATCH_SIZE.value
    batches = [{name: features[name][i:i + size, :lengths[i:i + size].max()].astype(np.int32)
                for name in ("token_ids", "segment_ids", "padding_mask")} for i in range(0, len(lengths), size)]
    profiles = {name: profile(path, batches, _THREADS.value) for name, path in models.items()}
    print(f"{task.name} dev, first {len(lengths)} sentences ({lengths.mean():.1f} tokens on average), "
          f"batch {size}\n")
    print(markdown(profiles, unprofiled_ms(models, batches, _THREADS.value)))


if __name__ == "__main__":
    flags.mark_flag_as_required("models")
    app.run(main)
