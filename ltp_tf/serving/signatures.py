"""The SavedModel's serving signatures (TensorFlow): raw strings in, predictions and kept tokens out.

Two signatures, both with explicit `tf.TensorSpec`s and a dynamic batch:

- `serving_default`: `sentence` `[None] string` (pair tasks: `sentence1`, `sentence2`), tokenized inside
  the graph with the checkpoint's own tokenizer (WordPiece, BPE or SentencePiece; TensorFlow Text ops),
  truncated to `max_seq_length` tokens.
- `token_ids`: `token_ids`, `segment_ids`, `padding_mask`, each `[None, None] int32` (padding_mask 1 for
  real tokens), for clients that tokenize themselves. Longer than `max_seq_length` is an error.

Outputs (both signatures): `logits` `[None, C] float32`, `kept_tokens` `[None, L] int32` (tokens each
layer passed on), and for classification `probabilities` `[None, C] float32` and `label` `[None] int32`
(class index), for regression (STS-B) `score` `[None] float32`.

Every input is checked inside the graph before it is used, so a request the model cannot serve fails
with an `InvalidArgumentError` saying what was wrong (the server keeps running) instead of crashing the
process or reading out of bounds: an empty batch; pair texts whose batch sizes differ (keras_hub's packer
feeds both to TensorFlow Text's `RoundRobinTrim`, which assumes equal row counts: it reads past the end
of the smaller batch, giving garbage token ids or aborting the process with `std::length_error`); token-id
inputs of different shapes, token ids outside `[0, vocabulary_size)` (negative ids would silently wrap
around in the embedding lookup), segment ids outside `[0, num_segments)`, a `padding_mask` other than 0/1
or whose position 0 (`[CLS]`) is padding, and inputs longer than `max_seq_length`. Dtypes are checked by
the `TensorSpec`s, ranks by `tf.ensure_shape` (a loaded signature does not check them against its specs).

Pruned tokens are physically removed inside the graph (`drop_tokens=True`: each pruning layer moves the kept
tokens to the front of each row and pads only to the longest kept row; its feed-forward network runs on the
kept tokens of all rows packed into one sequence), so later layers really run on fewer tokens. Shapes are
dynamic, so the graph runs without XLA (XLA needs static shapes; see `ltp_tf.inference.token_dropping` for that).
The length gate (`compact_min_length` > 0): a batch whose longest input has fewer positions runs the
mask-only schedule of the same model (pruned tokens masked, not removed: no gather ops) through a
`tf.cond`; outputs are the same either way.
With XLA buckets (`xla_buckets`, `ltp_tf.serving.xla_buckets`), the encoder runs as an XLA program per
length bucket at static per-layer capacities instead, falling back to the dynamic path above when a row
keeps more tokens than a capacity; signature names, inputs and outputs are the same.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import keras
import tensorflow as tf

from ltp_tf.data.glue import GlueTask
from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.serving.xla_buckets import XlaBuckets, bucketed_forward

TOKEN_ID_SIGNATURE = "token_ids"
TEXT_SIGNATURE = "serving_default"
TOKEN_ID_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def text_input_names(task: GlueTask) -> tuple[str, ...]:
    """Input names of the text signature: `("sentence",)`, or `("sentence1", "sentence2")` for pairs."""
    return ("sentence1", "sentence2") if task.is_pair else ("sentence",)


def output_names(task: GlueTask) -> tuple[str, ...]:
    """Output names of both signatures for `task`."""
    if task.is_regression:
        return ("logits", "score", "kept_tokens")
    return ("logits", "probabilities", "label", "kept_tokens")


def input_limits(model: TokenPruningClassifier, max_seq_length: int) -> dict[str, int]:
    """The bounds the token-id inputs are checked against: vocabulary size, segments, max_seq_length."""
    backbone = model.backbone
    return {"vocabulary_size": backbone.vocabulary_size, "num_segments": backbone.num_segments,
            "max_seq_length": max_seq_length}


def build_export_archive(model: TokenPruningClassifier, task: GlueTask, max_seq_length: int,
                         preprocessor=None, compact_min_length: int = 0,
                         xla_buckets: XlaBuckets | None = None) -> keras.export.ExportArchive:
    """An `ExportArchive` with the token-id signature, plus the text signature when `preprocessor` is given.

    `compact_min_length`: the length gate (module docstring); 0 = always remove pruned tokens.
    `xla_buckets`: run the encoder as bucketed XLA programs (`ltp_tf.serving.xla_buckets.fit_xla_buckets`);
    None: the dynamic graph only.

    The model's variables are captured by the endpoints (not tracked separately, which would store
    them twice). Write it with `archive.write_out(path)` inside `token_dropping(model, True)`.
    """
    _check_model(model, task, max_seq_length)
    predict = _predict_function(model, task, max_seq_length, compact_min_length, xla_buckets)
    archive = keras.export.ExportArchive()
    if preprocessor is not None:
        preprocessor(x=_example_strings(task))  # builds it (the archive refuses unbuilt layers)
        archive.track(preprocessor)
        archive.add_endpoint(TEXT_SIGNATURE, _text_function(preprocessor, predict, task),
                             input_signature=[tf.TensorSpec([None], tf.string, name=name)
                                              for name in text_input_names(task)])
    archive.add_endpoint(TOKEN_ID_SIGNATURE, predict,
                         input_signature=[tf.TensorSpec([None, None], tf.int32, name=name) for name in TOKEN_ID_INPUTS])
    return archive


@contextlib.contextmanager
def token_dropping(model: TokenPruningClassifier, enabled: bool) -> Iterator[None]:
    """Sets the model's physical token removal to `enabled` for a block, then back to what it was."""
    previous = model.backbone.drop_tokens
    model.backbone.set_drop_tokens(enabled)
    try:
        yield
    finally:
        model.backbone.set_drop_tokens(previous)


def _predict_function(model: TokenPruningClassifier, task: GlueTask, max_seq_length: int,
                      compact_min_length: int = 0, xla_buckets: XlaBuckets | None = None):
    backbone = model.backbone
    limits = input_limits(model, max_seq_length)
    forward = None if xla_buckets is None else bucketed_forward(model, xla_buckets, compact_min_length)

    def encode(inputs, drop_tokens: bool):
        with token_dropping(model, drop_tokens):
            outputs = backbone(inputs, training=False)
        logits = tf.cast(model.head(outputs["pooled_output"], training=False), tf.float32)
        return logits, tf.cast(tf.round(outputs["kept_tokens"]), tf.int32)

    def dynamic(inputs, longest):
        """The encoder in the graph, dynamic shapes (behind the length gate, if any)."""
        if compact_min_length and backbone.drop_tokens:
            return tf.cond(longest >= compact_min_length, lambda: encode(inputs, True), lambda: encode(inputs, False))
        return encode(inputs, backbone.drop_tokens)

    def predict(token_ids, segment_ids, padding_mask):
        # A loaded signature does not check ranks against its TensorSpecs; EnsureShape does, at run time.
        token_ids, segment_ids, padding_mask = (tf.ensure_shape(value, [None, None]) for value in
                                                (token_ids, segment_ids, padding_mask))
        # Nothing reads the inputs before the checks have passed.
        with tf.control_dependencies(_token_input_checks(token_ids, segment_ids, padding_mask, limits)):
            token_ids, segment_ids, padding_mask = (tf.identity(token_ids), tf.identity(segment_ids),
                                                    tf.identity(padding_mask))
        positions = tf.range(1, tf.shape(padding_mask)[1] + 1)
        longest = tf.reduce_max(tf.where(padding_mask == 1, positions[None, :], 0))  # one past the last real token
        token_ids, segment_ids, padding_mask = (value[:, :longest] for value in (token_ids, segment_ids, padding_mask))
        inputs = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": tf.cast(padding_mask, tf.bool)}
        if forward is None:
            logits, kept = dynamic(inputs, longest)
        else:
            logits, kept, overflow = forward(token_ids, segment_ids, padding_mask, longest)
            if xla_buckets.compact_layers:  # a row kept more than a capacity: recompute without the cut
                logits, kept = tf.cond(overflow, lambda: dynamic(inputs, longest), lambda: (logits, kept))
        return _prediction_outputs(logits, kept, task)

    return predict


def _token_input_checks(token_ids, segment_ids, padding_mask, limits: dict[str, int]) -> list[tf.Operation]:
    """Assertions that the token-id inputs are servable (see the module docstring)."""
    max_seq_length = limits["max_seq_length"]
    shape = tf.shape(token_ids)  # (batch, seq)
    checks = [_check(shape[0] > 0, "A request needs at least one example. Received: batch size 0")]
    for name, value in (("segment_ids", segment_ids), ("padding_mask", padding_mask)):
        checks.append(_check(tf.reduce_all(tf.equal(tf.shape(value), shape)),
                             f"`{name}` must have the shape of `token_ids` {{}}. Received: shape={{}}",
                             shape, tf.shape(value)))
    with tf.control_dependencies(checks):  # the checks below read all three with one shape
        for name, value, limit in (("token_ids", token_ids, limits["vocabulary_size"]),
                                   ("segment_ids", segment_ids, limits["num_segments"])):
            low, high = tf.reduce_min(value), tf.reduce_max(value)
            checks.append(_check((low >= 0) & (high < limit), f"`{name}` must be in [0, {limit}). "
                                 "Received: values from {} to {}", low, high))
        checks.append(_check(tf.reduce_all((padding_mask == 0) | (padding_mask == 1)),
                             "`padding_mask` must be 0 (padding) or 1 (real token). Received: values from {} to {}",
                             tf.reduce_min(padding_mask), tf.reduce_max(padding_mask)))
        checks.append(_check(tf.reduce_all(padding_mask[:, :1] == 1),
                             "`padding_mask` must be 1 at position 0 ([CLS]) of every row: pad on the right. "
                             "Received: a row starting with padding"))
        positions = tf.range(1, shape[1] + 1)
        longest = tf.reduce_max(tf.where(padding_mask == 1, positions[None, :], 0))  # one past the last real token
        checks.append(_check(longest <= max_seq_length, f"Inputs are longer than max_seq_length={max_seq_length} "
                             "tokens: truncate them. Received: {} tokens", longest))
    return checks


def _check(condition, template: str, *values) -> tf.Operation:
    """`tf.debugging.Assert` whose message is `template` with `values` formatted in (at run time)."""
    message = tf.strings.format(template, values) if values else template
    return tf.debugging.Assert(condition, [message])


def _text_function(preprocessor, predict, task: GlueTask):
    def features(texts):
        texts = [tf.ensure_shape(text, [None]) for text in texts]  # rank 1 (see `predict`)
        sizes = [tf.shape(text)[0] for text in texts]
        checks = [_check(sizes[0] > 0, "A request needs at least one example. Received: batch size 0")]
        if len(texts) == 2:
            # TensorFlow Text's RoundRobinTrim (in the packer) aborts the process on mismatched pairs.
            with tf.control_dependencies(checks):
                checks.append(_check(tf.equal(sizes[0], sizes[1]), "`sentence1` and `sentence2` must have the "
                                     "same batch size. Received: {} sentence1 and {} sentence2", *sizes))
        with tf.control_dependencies(checks):
            texts = tuple(tf.identity(text) for text in texts)
        packed = preprocessor(x=texts[0] if len(texts) == 1 else tuple(texts))
        segment_ids = packed.get("segment_ids", tf.zeros_like(packed["token_ids"]))  # RoBERTa-style: none
        return predict(packed["token_ids"], segment_ids, tf.cast(packed["padding_mask"], tf.int32))

    if task.is_pair:
        def serve_pair(sentence1, sentence2):
            return features((sentence1, sentence2))

        return serve_pair

    def serve(sentence):
        return features((sentence,))

    return serve


def _prediction_outputs(logits, kept_tokens, task: GlueTask) -> dict[str, tf.Tensor]:
    if task.is_regression:
        return {"logits": logits, "score": logits[:, 0], "kept_tokens": kept_tokens}
    return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1),
            "label": tf.argmax(logits, axis=-1, output_type=tf.int32), "kept_tokens": kept_tokens}


def _example_strings(task: GlueTask):
    example = tf.constant(["an example"])
    return (example, example) if task.is_pair else example


def _check_model(model, task: GlueTask, max_seq_length: int) -> None:
    if not isinstance(model, TokenPruningClassifier):
        raise ValueError("Only TokenPruningClassifier models can be exported. "
                         f"Received: model of type {type(model).__name__}")
    if model.num_classes != task.num_classes:
        raise ValueError(f"The model has {model.num_classes} outputs but task {task.name!r} needs "
                         f"{task.num_classes}.")
    if not 1 <= max_seq_length <= model.backbone.max_sequence_length:
        raise ValueError(f"`max_seq_length` must be in [1, {model.backbone.max_sequence_length}] (the model's "
                         f"position embeddings). Received: max_seq_length={max_seq_length}")
