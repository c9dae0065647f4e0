"""Bucketed XLA programs inside the SavedModel (`--xla_buckets`): static shapes for TF Serving's graph.

The plain signatures remove pruned tokens inside one graph with dynamic shapes: many small unfused ops,
so at batch 1 graph-mode dispatch costs more than the FLOPs pruning saves. With XLA buckets the
token-id signature (and the text signature, which calls it) runs instead:

    inputs cut to the longest real row, then padded up to its length bucket L (a fixed list: the
        runner's rounding, `ltp_tf.inference.shape_buckets` with `length_bucket` 8: 1, 2, 4, 8, 16, 24,
        ..., up to the bucket of `max_seq_length`)
    -> `tf.switch_case` on the bucket's index
    -> the bucket's program: a `tf.function(jit_compile=True)` traced for `(None, L)` inputs (the batch
        stays dynamic: XLA compiles it per batch size at its first call), the encoder with token
        dropping at static per-layer capacities for L (`TokenDroppingRunner.capped_forward`), the
        head, and an overflow flag
    -> `tf.cond` on the flag: if any row kept more tokens than a capacity, the batch is recomputed by
        the dynamic path (`drop_tokens=True`), so outputs never depend on the capacities.

Capacities are fitted at export time on sample inputs (training sentences) at batch 1 with
`TokenDroppingRunner.fit_capacities`: per bucket, the longest kept row of each compaction layer, rounded
up to its bucket. Buckets longer than every sample row are fitted on `long_windows` inputs per bucket made
of the sample's own text (`ltp_tf.data.concatenated_windows`: its tokens concatenated into windows of the
bucket's length), so long inputs are cut too. A few windows under-estimate what other long text keeps (the
longest of 8 windows is shorter than the longest of a batch of 32), and one overflowing row makes the whole
batch pay the program and the fallback, so those buckets' longest kept windows are raised by `long_margin`
(a fraction of each) before they are rounded up to their bucket (`benchmarks/README.md` has the counts). A
batch's bucket is set by its longest row and its shorter rows can keep more tokens than any sample of that
bucket did, so each bucket's capacities are raised to those of every shorter fitted bucket (capacities never
shrink as buckets grow), which keeps batches from overflowing. A bucket nothing was fitted for keeps its
whole length at every compaction layer (nothing is cut, so it never overflows). A dense model (no pruning
layer) gets the same programs without capacities and without the `tf.cond`; buckets shorter than the length
gate (`compact_min_length`) run the mask-only schedule (`TokenDroppingRunner.masked_forward`), as the runner
does.

Stored in `assets.extra/ltp_tf_export.json` under `xla_buckets` (`XlaBuckets.to_json()`):

    {"length_bucket": 8, "compact_layers": [1, 3], "fit_examples": 1000, "long_windows": 8, "long_margin": 0.25,
     "capacities": {"1": [1, 1], "2": [2, 2], ..., "24": [16, 8], ...}}   # bucket -> per compaction layer

TF Serving runs `jit_compile` functions on CPU only when started with `--xla_cpu_compilation_enabled=true`
(an experimental flag of `tensorflow_model_server`); `tf.saved_model.load` in Python needs nothing.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping

import numpy as np
import tensorflow as tf

from ltp_tf.data import concatenated_windows
from ltp_tf.inference import TokenDroppingRunner, length_buckets, round_up_length
from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.validation import check_int_at_least, check_number

SERVER_FLAG = "--xla_cpu_compilation_enabled=true"


@dataclasses.dataclass(frozen=True)
class XlaBuckets:
    """The length buckets of an XLA export and each bucket's capacities.

    Attributes:
        length_bucket: the runner's rounding (`ltp_tf.inference.shape_buckets`).
        compact_layers: the layers whose output is cut to a capacity (the model's pruning layers).
        capacities: bucket length -> the static output length of each compaction layer.
        fit_examples: how many sample inputs the capacities were fitted on (0: none, nothing is cut).
        long_windows: how many windows of sample text fitted each bucket longer than every sample row.
        long_margin: the fraction by which those buckets' fitted capacities were raised.
    """

    length_bucket: int
    compact_layers: tuple[int, ...]
    capacities: Mapping[int, tuple[int, ...]]
    fit_examples: int
    long_windows: int = 0
    long_margin: float = 0.0

    @property
    def lengths(self) -> list[int]:
        """The bucket lengths, ascending."""
        return sorted(self.capacities)

    def to_json(self) -> dict[str, Any]:
        return {"length_bucket": self.length_bucket, "compact_layers": list(self.compact_layers),
                "fit_examples": self.fit_examples, "long_windows": self.long_windows, "long_margin": self.long_margin,
                "capacities": {str(length): list(self.capacities[length]) for length in self.lengths}}


def fit_xla_buckets(model: TokenPruningClassifier, max_seq_length: int,
                    sample: Mapping[str, np.ndarray] | None = None, length_bucket: int = 8,
                    long_windows: int = 8, long_margin: float = 0.25) -> XlaBuckets:
    """The buckets of inputs up to `max_seq_length`, with capacities fitted on `sample` at batch 1.

    Args:
        model: the model to export.
        max_seq_length: the longest input the export serves.
        sample: `{"token_ids", "segment_ids", "padding_mask"}` `(examples, seq)` arrays (training
            sentences, not the data to be measured), or None: no capacities (nothing is cut).
        length_bucket: the runner's rounding of lengths.
        long_windows: windows of sample text fitted per bucket longer than every sample row, >= 0 (0: such
            buckets are not cut).
        long_margin: raise the longest kept window of each bucket fitted on windows by this fraction before it
            is bucketed, in [0, 1] (`TokenDroppingRunner.fit_capacities`' `margin`; 0: the windows' maxima).
    """
    round_up_length(1, length_bucket, 1)  # validates length_bucket
    check_int_at_least("long_windows", long_windows, 0)
    check_number("long_margin", long_margin, "a number in [0, 1]", lambda value: 0 <= value <= 1)
    runner = TokenDroppingRunner(model, length_bucket=length_bucket, jit_compile=False)
    lengths = length_buckets(length_bucket, max_seq_length, model.backbone.max_sequence_length)
    fitted, windows = {}, 0
    if sample is not None and runner.compact_layers:
        runner.fit_capacities(sample, batch_size=1)
        longest_row = int(np.asarray(sample["padding_mask"]).sum(axis=1).max())
        longest_input = min(max_seq_length, model.backbone.max_sequence_length)
        window_lengths = sorted({min(length, longest_input) for length in lengths if length > longest_row})
        if long_windows and window_lengths:
            runner.fit_capacities(_long_windows(sample, window_lengths, long_windows), batch_size=1,
                                  margin=long_margin)
            windows = long_windows
        fitted = {length: capacities for (_, length), capacities in runner.capacities.items()}  # batch 1
    capacities = _never_shrinking({length: fitted.get(length) for length in lengths}, len(runner.compact_layers))
    fit_examples = 0 if sample is None else len(sample["token_ids"])
    return XlaBuckets(length_bucket, tuple(runner.compact_layers), capacities, fit_examples, windows,
                      float(long_margin) if windows else 0.0)


def _long_windows(sample: Mapping[str, np.ndarray], window_lengths: list[int], count: int) -> dict[str, np.ndarray]:
    """`count` windows of `sample`'s text of each of `window_lengths`, padded to one width."""
    parts = [concatenated_windows(sample, length, count) for length in window_lengths]
    width = max(part["token_ids"].shape[1] for part in parts)
    return {key: np.concatenate([np.pad(part[key], [(0, 0), (0, width - part[key].shape[1])]) for part in parts])
            for key in ("token_ids", "segment_ids", "padding_mask")}


def _never_shrinking(fitted: Mapping[int, tuple[int, ...] | None], layers: int) -> dict[int, tuple[int, ...]]:
    """Each fitted bucket's capacities raised to those of every shorter fitted bucket (a batch in a bucket
    also holds shorter rows); a bucket with none fitted keeps its whole length."""
    capacities, running = {}, None
    for length in sorted(fitted):
        if fitted[length] is None:
            capacities[length] = (length,) * layers
            continue
        running = fitted[length] if running is None else tuple(max(a, b) for a, b in zip(running, fitted[length]))
        capacities[length] = running
    return capacities


def bucketed_forward(model: TokenPruningClassifier, buckets: XlaBuckets,
                     compact_min_length: int = 0) -> Callable[..., tuple[tf.Tensor, tf.Tensor, tf.Tensor]]:
    """`forward(token_ids, segment_ids, padding_mask, longest) -> (logits, kept_tokens, overflow)`.

    The inputs are `(batch, longest)` int32 (padding_mask 0/1), cut to `longest`, the scalar int32
    position one past the last real token (at most the last bucket); `logits` `(batch, C)` float32,
    `kept_tokens` `(batch, num_layers)` int32, `overflow` a scalar bool (see the module docstring). The
    programs are created once here, so signatures that share `forward` share them.
    """
    runner = TokenDroppingRunner(model, length_bucket=buckets.length_bucket, jit_compile=False)
    if tuple(runner.compact_layers) != tuple(buckets.compact_layers):
        raise ValueError(f"`buckets` must be fitted for this model's compaction layers {runner.compact_layers}. "
                         f"Received: compact_layers={list(buckets.compact_layers)}")
    lengths = buckets.lengths
    programs = [_program(runner, length, buckets.capacities[length], length < compact_min_length)
                for length in lengths]
    bucket_ends = tf.constant(lengths, tf.int32)

    def forward(token_ids, segment_ids, padding_mask, longest):
        inputs = (token_ids, segment_ids, padding_mask)
        index = tf.searchsorted(bucket_ends, tf.reshape(longest, [1]), side="left")[0]  # first bucket >= longest
        branches = [functools.partial(_run_padded, program, length, inputs)
                    for program, length in zip(programs, lengths)]
        return tf.switch_case(index, branches)

    return forward


def _program(runner: TokenDroppingRunner, length: int, capacities: tuple[int, ...], masked: bool):
    """The XLA program of one bucket: `(batch, length)` inputs -> `(logits, kept_tokens, overflow)`."""
    specs = [tf.TensorSpec([None, length], tf.int32, name=name)
             for name in ("token_ids", "segment_ids", "padding_mask")]

    @tf.function(jit_compile=True, autograph=False, input_signature=specs)
    def program(token_ids, segment_ids, padding_mask):
        mask = tf.cast(padding_mask, tf.bool)
        lengths = tf.reduce_sum(padding_mask, axis=1)  # (batch,)
        if masked:
            outputs = runner.masked_forward(token_ids, segment_ids, mask, lengths)
            overflow = tf.constant(False)
        else:
            outputs = runner.capped_forward(capacities, token_ids, segment_ids, mask, lengths)
            overflow = outputs["overflow"]
        return (tf.cast(outputs["logits"], tf.float32), tf.cast(outputs["kept_tokens"], tf.int32), overflow)

    return program


def _run_padded(program, length: int, inputs: tuple[tf.Tensor, ...]):
    """`program` on `inputs` `(batch, <= length)` padded with zeros (dead tokens) to `(batch, length)`."""
    padding = [[0, 0], [0, length - tf.shape(inputs[0])[1]]]
    return program(*(tf.ensure_shape(tf.pad(value, padding), [None, length]) for value in inputs))
