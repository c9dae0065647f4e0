"""How often long inputs overflow an XLA export's capacities (`ltp_tf.serving.xla_buckets`): counted, not timed.

    python -m benchmarks.xla_overflow --checkpoint=<pruned checkpoint> [--margins=0,0.25] [--long_windows=8] \
        [--fit_examples=300] [--lengths=128,256,512] [--windows=64] [--batch_sizes=1,16,32]

Fits the capacities an export with `--xla_buckets` would get (the first `--fit_examples` training examples of
the checkpoint's task, `--long_windows` windows of their text per longer bucket, each margin of
`--margins`), then runs `--windows` windows of the task's *dev* text per length through the token-dropping
runner and prints, per margin, length and batch size, how many consecutive batches keep more tokens than
their bucket's capacities at some compaction layer (an overflowing batch runs the XLA program and then the
dynamic fallback), with the capacities beside the longest kept dev row. No timing: it may share the CPU.
"""

from __future__ import annotations

import time

import numpy as np
from absl import app, flags

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "A pruned checkpoint folder.", required=True)
_MARGINS = flags.DEFINE_list("margins", ["0", "0.25"], "Values of `long_margin` to fit.")
_LONG_WINDOWS = flags.DEFINE_integer("long_windows", 8, "Windows of training text per long bucket.", lower_bound=0)
_FIT_EXAMPLES = flags.DEFINE_integer("fit_examples", 300, "Training examples the capacities are fitted on.",
                                     lower_bound=1)
_LENGTHS = flags.DEFINE_list("lengths", ["128", "256", "512"], "Lengths of the dev windows counted.")
_WINDOWS = flags.DEFINE_integer("windows", 64, "Dev windows per length.", lower_bound=1)
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["1", "16", "32"], "Batch sizes the windows are grouped in.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "GLUE folder (default: ../shared/data/glue).")


def overflowing_batches(kept: np.ndarray, layers: list[int], capacities: tuple[int, ...], batch_size: int) -> int:
    """Consecutive batches of `batch_size` rows of `kept` `(rows, num_layers)` in which some row keeps more than
    a compaction layer's capacity."""
    limits = np.asarray(capacities)
    return sum(bool((kept[start:start + batch_size][:, layers].max(axis=0) > limits).any())
               for start in range(0, len(kept), batch_size))


def _numbers(name: str, values: list[str], kind, allowed: str, predicate) -> list:
    """`values` parsed as `kind`, each checked by `predicate`; a usage error naming the flag otherwise."""
    try:
        parsed = [kind(value) for value in values]
    except ValueError:
        parsed = None
    if not parsed or not all(predicate(value) for value in parsed):
        raise app.UsageError(f"{name} must be {allowed}. Received: {','.join(values)}")
    return parsed


def main(argv: list[str]) -> None:
    del argv
    from ltp_tf.checkpoints import load_checkpoint
    from ltp_tf.data import concatenated_windows, get_task, read_split, tokenize
    from ltp_tf.inference import TokenDroppingRunner, round_up_length
    from ltp_tf.serving.text import checkpoint_preprocessor, training_features
    from ltp_tf.serving.xla_buckets import fit_xla_buckets

    margins = _numbers("--margins", _MARGINS.value, float, "numbers in [0, 1]", lambda value: 0 <= value <= 1)
    lengths = _numbers("--lengths", _LENGTHS.value, int, "integers >= 3", lambda value: value >= 3)
    batch_sizes = _numbers("--batch_sizes", _BATCH_SIZES.value, int, "integers >= 1", lambda value: value >= 1)
    try:
        checkpoint = load_checkpoint(_CHECKPOINT.value)
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(f"--checkpoint: {error}") from error
    model, task = checkpoint.model, get_task(checkpoint.task)
    longest = model.backbone.max_sequence_length
    if max(lengths) > longest:
        raise app.UsageError(f"--lengths must be at most the model's {longest} positions. Received: {max(lengths)}")
    sample = training_features(checkpoint, task, _FIT_EXAMPLES.value, _DATA_DIR.value)
    dev = tokenize(checkpoint_preprocessor(checkpoint), read_split(task, "dev", _DATA_DIR.value).texts).as_dict()
    runner = TokenDroppingRunner(model, length_bucket=8, jit_compile=False)
    kept = {length: runner(concatenated_windows(dev, length, _WINDOWS.value))["kept_tokens"] for length in lengths}
    print("| margin | fit seconds | length | " + " | ".join(f"b{b} overflowing" for b in batch_sizes)
          + " | capacities | longest kept dev row |")
    print("|---" * (4 + len(batch_sizes) + 1) + "|")
    for margin in margins:
        start = time.perf_counter()
        buckets = fit_xla_buckets(model, max(lengths), sample, 8, _LONG_WINDOWS.value, margin)
        seconds = time.perf_counter() - start
        layers = list(buckets.compact_layers)
        for length in lengths:
            capacities = buckets.capacities[round_up_length(length, 8, longest)]
            counts = [f"{overflowing_batches(kept[length], layers, capacities, b)}/{-(-_WINDOWS.value // b)}"
                      for b in batch_sizes]
            print(f"| {margin} | {seconds:.0f} | {length} | " + " | ".join(counts)
                  + f" | {list(capacities)} | {kept[length][:, layers].max(axis=0).tolist()} |", flush=True)


if __name__ == "__main__":
    app.run(main)
