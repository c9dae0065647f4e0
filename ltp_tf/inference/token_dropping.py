"""`TokenDroppingRunner`: fast inference that physically removes pruned tokens, with compiled per-shape programs.

The model's own `drop_tokens=True` path removes tokens inside one traced graph, where every length is
data-dependent; XLA cannot compile that. The runner splits the encoder at its compaction layers (by
default every pruning layer) instead:

    segment 0:  embeddings -> blocks up to compaction layer c0 -> attention + scores + keep mask of c0
                -> kept tokens moved to the front of each row (order preserved)
    host:       reads the kept counts; new length = longest kept row, rounded up to its bucket
    segment k:  feed-forward of c(k-1) on the new length -> following blocks -> attention of c(k) -> ...
    last:       feed-forward of the last compaction layer -> remaining blocks -> pooler (and head)

Pruning layers that are not compaction layers only mask their pruned tokens (no host round trip).
With a length gate (`compact_min_length`), a chunk shorter than the gate (its length bucket) runs the
mask-only schedule instead: every block in one program, pruned tokens masked, not removed — the same
outputs without any round trip, for inputs too short for compaction to pay.
With capacities learned from sample inputs (`fit_capacities`), a call runs all segments as one program
instead, cutting each compaction layer's output to a static length; a batch that keeps more tokens than
that is detected in the program and recomputed segment by segment, so outputs never change.
Each segment is compiled once per input shape (`tf.function(jit_compile=True)` on TensorFlow, `jax.jit`
on JAX), so the number of programs is bounded by the number of buckets (`ltp_tf.inference.shape_buckets`). A
token pruned at layer p still goes through p's attention (it was needed to score it) but not through
p's feed-forward network, exactly as the hard-masked model counts it. Padded slots are dead tokens
(masked keys, no score, never kept), so outputs equal the hard-masked model's (`drop_tokens=False`)
for every bucket size and every choice of compaction layers.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from keras import ops

from ltp_tf.inference.compilation import compile_function
from ltp_tf.inference.shape_buckets import round_up_batch, round_up_length
from ltp_tf.layers import token_scoring
from ltp_tf.layers.encoder_block import TokenPruningEncoderBlock
from ltp_tf.models.backbone import TokenPruningBackbone
from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.validation import check_number


class TokenDroppingRunner:
    """Runs a `TokenPruningClassifier` (or a bare `TokenPruningBackbone`) with token dropping.

    Args:
        model: a `TokenPruningClassifier` or `TokenPruningBackbone`. Its weights are read at call time
            (the runner holds no copy).
        length_bucket: sequence lengths (the input's and every layer's kept length) are rounded up to a
            power of two below this and to a multiple of it above (`ltp_tf.inference.shape_buckets`), so compiled
            programs are reused. 1 = exact lengths (the most programs).
        pad_batch: pad each batch up to a power of two with dead rows (bounded programs per batch size).
        max_batch_size: larger inputs are split into chunks of at most this many rows.
        sort_by_length: when splitting into chunks, group rows of similar length (results keep the input
            order).
        jit_compile: XLA-compile each segment (TensorFlow: else a graph `tf.function`; JAX: else eager).
        compact_layers: the pruning layers after which pruned tokens are physically removed (each costs
            one host round trip); at the other pruning layers they are only masked. Default: every
            pruning layer. Outputs are the same for any choice; only the speed differs.
        compact_min_length: the length gate: chunks whose length bucket is shorter run the mask-only
            schedule (one program, nothing removed; same outputs). 0: off.

    Calling the runner with `{"token_ids", "segment_ids"?, "padding_mask"?}` (arrays `(batch, seq)`, any
    padding) returns NumPy arrays: `logits` `(batch, num_classes)` (classifiers only), `pooled_output`
    `(batch, hidden)`, `kept_tokens` `(batch, num_layers)` int32 tokens each layer passed on, and
    `sequence_lengths` `(batch,)` int32.
    """

    def __init__(self, model: TokenPruningClassifier | TokenPruningBackbone, length_bucket: int = 8,
                 pad_batch: bool = True, max_batch_size: int = 128, sort_by_length: bool = True,
                 jit_compile: bool = True, compact_layers: Sequence[int] | None = None, compact_min_length: int = 0):
        if isinstance(model, TokenPruningClassifier):
            self.backbone, self.head = model.backbone, model.head
        elif isinstance(model, TokenPruningBackbone):
            self.backbone, self.head = model, None
        else:
            raise ValueError("`model` must be a TokenPruningClassifier or TokenPruningBackbone. "
                             f"Received: model of type {type(model).__name__}")
        if not model.built:
            raise ValueError("`model` must be built (call it once or load it) before creating a runner.")
        round_up_length(1, length_bucket, 1)  # validates length_bucket
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ValueError(f"`max_batch_size` must be an integer >= 1. Received: max_batch_size={max_batch_size!r}")
        if isinstance(compact_min_length, bool) or not isinstance(compact_min_length, int) or compact_min_length < 0:
            raise ValueError("`compact_min_length` must be an integer >= 0. "
                             f"Received: compact_min_length={compact_min_length!r}")
        self.compact_min_length = compact_min_length
        self.length_bucket = length_bucket
        self.pad_batch = bool(pad_batch)
        self.max_batch_size = max_batch_size
        self.sort_by_length = bool(sort_by_length)
        self.jit_compile = bool(jit_compile)
        self.blocks: list[TokenPruningEncoderBlock] = list(self.backbone.transformer_layers)
        self.pruning_layers = [i for i, block in enumerate(self.blocks) if block.prunes]
        if compact_layers is None:
            compact_layers = self.pruning_layers
        if not set(compact_layers) <= set(self.pruning_layers):
            raise ValueError(f"`compact_layers` must be pruning layers of the model ({self.pruning_layers}). "
                             f"Received: compact_layers={list(compact_layers)}")
        self.compact_layers = sorted(set(compact_layers))
        self._variables = list(model.variables)
        self._segment_functions = [self._segment_function(k) for k in range(len(self.compact_layers) + 1)]
        self._segments = [compile_function(fn, self._variables, self.jit_compile) for fn in self._segment_functions]
        self._one_program = compile_function(self._one_program_function, self._variables, self.jit_compile)
        self._masked_function = self._segment_function(0, ())
        self._masked = compile_function(self._masked_function, self._variables, self.jit_compile)
        # (padded batch, input length bucket) -> static output length of each compaction layer.
        self.capacities: dict[tuple[int, int], tuple[int, ...]] = {}
        # (segment, batch, length) of every program run so far (-1: the one-program path, -2: mask-only).
        self.shapes_seen: set[tuple[int, int, int]] = set()
        self.fallbacks = 0  # one-program runs that kept more tokens than their capacities

    # ------------------------------------------------------------------ public
    def __call__(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return self._in_chunks(*self._validate(inputs), self._run_chunk)

    def fit_capacities(self, inputs: Mapping[str, Any], batch_size: int = 1,
                       margin: float = 0.0) -> dict[tuple[int, int], tuple[int, ...]]:
        """Learns static per-layer lengths from sample inputs, so later calls run as one program.

        The sample (e.g. training sentences) is run segment by segment (in chunks of `max_batch_size`),
        then grouped in consecutive batches of `batch_size` — the batch size that will be served — and
        for each (batch, input length) bucket the longest kept row of every compaction layer (bucketed)
        is recorded. A later call of a recorded bucket runs the whole
        encoder as one compiled program, cutting each compaction layer's output to that length: no host
        round trip in between. If a batch keeps more tokens than recorded, the program reports it and
        the call is recomputed by the segmented path, so outputs never depend on the capacities. Worth
        it where round trips cost more than the padding (batch 1); calls of other batch sizes keep the
        segmented path. `margin` in [0, 1] raises each longest kept row by that fraction before it is
        bucketed (for samples smaller or other than what will be served). Calling it again widens the
        capacities. Returns them.
        """
        check_number("margin", margin, "a number in [0, 1]", lambda value: 0 <= value <= 1)
        token_ids, segment_ids, padding_mask = self._validate(inputs)
        # Kept tokens do not depend on how rows are batched: run the sample in large chunks, then group it.
        kept = self._in_chunks(token_ids, segment_ids, padding_mask,
                               lambda *chunk: self._run_segmented(*self._prepare(*chunk)))["kept_tokens"]
        for start in range(0, len(token_ids), batch_size):
            rows = slice(start, start + batch_size)
            rows_kept = kept[rows]  # (batch, num_layers)
            length = round_up_length(_longest_live(padding_mask[rows]), self.length_bucket,
                                     self.backbone.max_sequence_length)
            capacities, previous = [], length
            for layer in self.compact_layers:
                longest_kept = math.ceil(round(int(rows_kept[:, layer].max()) * (1 + margin), 6))
                previous = round_up_length(min(longest_kept, previous), self.length_bucket, previous)
                capacities.append(previous)
            key = (round_up_batch(len(rows_kept)) if self.pad_batch else len(rows_kept), length)
            seen = self.capacities.get(key, capacities)
            self.capacities[key] = tuple(max(a, b) for a, b in zip(seen, capacities))
        # Programs compiled for the old capacities are stale: start a fresh cache.
        self._one_program = compile_function(self._one_program_function, self._variables, self.jit_compile)
        return dict(self.capacities)

    # ------------------------------------------------------------------- host
    def _validate(self, inputs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not isinstance(inputs, Mapping) or "token_ids" not in inputs:
            raise ValueError("Runner inputs must be a dict with `token_ids` (and optionally `segment_ids`, "
                             f"`padding_mask`). Received: {type(inputs).__name__}"
                             + (f" with keys {sorted(inputs)}" if isinstance(inputs, Mapping) else ""))
        token_ids = np.asarray(ops.convert_to_numpy(inputs["token_ids"])).astype(np.int32)
        if token_ids.ndim != 2 or token_ids.shape[0] == 0:
            raise ValueError("`token_ids` must have shape (batch >= 1, sequence). "
                             f"Received: shape={token_ids.shape}")
        arrays = {}
        for name, default in (("segment_ids", np.zeros_like(token_ids)), ("padding_mask", np.ones_like(token_ids))):
            value = inputs.get(name)
            value = default if value is None else np.asarray(ops.convert_to_numpy(value))
            if value.shape != token_ids.shape:
                raise ValueError(f"`{name}` must have the shape of `token_ids` {token_ids.shape}. "
                                 f"Received: shape={value.shape}")
            arrays[name] = value
        padding_mask = arrays["padding_mask"].astype(bool)
        longest = _longest_live(padding_mask)
        if longest > self.backbone.max_sequence_length:
            raise ValueError(f"Inputs have {longest} positions, more than max_sequence_length="
                             f"{self.backbone.max_sequence_length}. Truncate them (the tokenizers do).")
        return token_ids, arrays["segment_ids"].astype(np.int32), padding_mask

    def _in_chunks(self, token_ids: np.ndarray, segment_ids: np.ndarray, padding_mask: np.ndarray,
                   run_chunk: Callable[..., dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """`run_chunk` on chunks of at most `max_batch_size` rows (grouped by length if `sort_by_length`),
        its outputs in the input order."""
        batch_size = token_ids.shape[0]
        lengths = padding_mask.sum(axis=1)
        order = np.argsort(lengths, kind="stable") if self.sort_by_length else np.arange(batch_size)
        pieces = []
        for start in range(0, batch_size, self.max_batch_size):
            rows = order[start:start + self.max_batch_size]
            pieces.append(run_chunk(token_ids[rows], segment_ids[rows], padding_mask[rows]))
        inverse = np.empty_like(order)
        inverse[order] = np.arange(batch_size)
        return {key: np.concatenate([piece[key] for piece in pieces])[inverse] for key in pieces[0]}

    def _run_chunk(self, token_ids: np.ndarray, segment_ids: np.ndarray,
                   padding_mask: np.ndarray) -> dict[str, np.ndarray]:
        prepared = self._prepare(token_ids, segment_ids, padding_mask)
        if prepared[2] < self.compact_min_length:
            return self._run_masked(*prepared)
        if (int(prepared[0][0].shape[0]), prepared[2]) in self.capacities:
            result = self._run_one_program(*prepared)
            if result is not None:
                return result
            self.fallbacks += 1
        return self._run_segmented(*prepared)

    def _prepare(self, token_ids: np.ndarray, segment_ids: np.ndarray, padding_mask: np.ndarray):
        """Pads a chunk to its buckets: `(tensors, batch_size, length, lengths)`."""
        batch_size = token_ids.shape[0]
        padded_batch = round_up_batch(batch_size) if self.pad_batch else batch_size
        length = round_up_length(_longest_live(padding_mask), self.length_bucket, self.backbone.max_sequence_length)
        arrays = [_pad(a, padded_batch, length) for a in (token_ids, segment_ids, padding_mask)]
        lengths = arrays[2].sum(axis=1).astype(np.int32)
        tensors = tuple(ops.convert_to_tensor(a) for a in arrays) + (ops.convert_to_tensor(lengths),)
        return tensors, batch_size, length, lengths

    def _run_one_program(self, tensors: tuple, batch_size: int, length: int,
                         lengths: np.ndarray) -> dict[str, np.ndarray] | None:
        """The whole encoder as one program cut to its bucket's capacities; None if a row kept more."""
        self.shapes_seen.add((-1, int(tensors[0].shape[0]), length))
        outputs = self._one_program(*tensors)
        if bool(ops.convert_to_numpy(outputs["overflow"])):
            return None
        result = {key: np.asarray(ops.convert_to_numpy(value))[:batch_size]
                  for key, value in outputs.items() if key != "overflow"}
        result["kept_tokens"] = result["kept_tokens"].astype(np.int32)
        result["sequence_lengths"] = lengths[:batch_size]
        return result

    def _run_masked(self, tensors: tuple, batch_size: int, length: int,
                    lengths: np.ndarray) -> dict[str, np.ndarray]:
        """The mask-only schedule: every block in one program, pruned tokens masked (the length gate)."""
        self.shapes_seen.add((-2, int(tensors[0].shape[0]), length))
        outputs = self._masked(*tensors)
        result = {key: np.asarray(ops.convert_to_numpy(value))[:batch_size] for key, value in outputs.items()}
        result["kept_tokens"] = result["kept_tokens"].astype(np.int32)
        result["sequence_lengths"] = lengths[:batch_size]
        return result

    def _run_segmented(self, tensors: tuple, batch_size: int, length: int,
                       lengths: np.ndarray) -> dict[str, np.ndarray]:
        """Segment by segment; after each compaction layer, the host cuts to the longest kept row."""
        args, lengths_tensor, kept = tensors, tensors[-1], []
        for k, segment in enumerate(self._segments):
            self.shapes_seen.add((k, int(tensors[0].shape[0]), length))
            outputs = segment(*args)
            if k == len(self.compact_layers):
                break
            state, counts = outputs
            kept.append(np.asarray(ops.convert_to_numpy(counts)))
            length = round_up_length(int(kept[-1][:, -1].max()), self.length_bucket, length)
            args = (_cut(state, length), lengths_tensor)

        result = {key: np.asarray(ops.convert_to_numpy(value))[:batch_size] for key, value in outputs.items()}
        kept = [counts[:batch_size] for counts in kept] + [result.pop("kept_tokens")]
        result["kept_tokens"] = np.concatenate(kept, axis=1).astype(np.int32)
        result["sequence_lengths"] = lengths[:batch_size]
        return result

    # ---------------------------------------------------------------- compiled
    def _segment_function(self, k: int, compact_layers: Sequence[int] | None = None):
        """The pure function of segment `k` (see the module docstring) of `compact_layers` (default: the
        runner's; `()` gives the mask-only schedule: one segment of every block).

        It returns the kept-token count of every layer it covers, `(batch, layers)`, last.
        """
        compact_layers = self.compact_layers if compact_layers is None else list(compact_layers)
        start = compact_layers[k - 1] + 1 if k else 0
        end = compact_layers[k] if k < len(compact_layers) else None

        def segment(*args):
            if k == 0:
                token_ids, segment_ids, token_mask, lengths = args
                hidden = self.backbone.embed(token_ids, segment_ids)
            else:
                state, lengths = args
                residual, attention, token_mask = _unpack_state(state, self.backbone.hidden_dim)
                hidden = self.blocks[start - 1].feed_forward(residual, attention, False)
            token_mask = ops.cast(token_mask, "bool")
            counts = []
            for block in self.blocks[start:end]:
                attention, token_mask = self._attend(block, hidden, token_mask, lengths)
                counts.append(ops.sum(ops.cast(token_mask, "int32"), axis=1))
                hidden = block.feed_forward(hidden, attention, False)
            if end is None:
                kept = (ops.stack(counts, axis=1) if counts  # empty when the last layer is a compaction layer
                        else ops.zeros((ops.shape(hidden)[0], 0), "int32"))
                return {**self._head(hidden), "kept_tokens": kept}
            attention, keep = self._attend(self.blocks[end], hidden, token_mask, lengths)
            counts.append(ops.sum(ops.cast(keep, "int32"), axis=1))
            order = token_scoring.compact_order(keep)  # kept tokens first, in their order
            state = _pack_state(hidden, attention, keep)
            return ops.take_along_axis(state, order[:, :, None], axis=1), ops.stack(counts, axis=1)

        return segment

    def capped_forward(self, capacities: Sequence[int], token_ids, segment_ids, padding_mask,
                       lengths) -> dict[str, Any]:
        """Every segment in one pure Keras function, each compaction layer's output cut to a static capacity.

        The one-program path (`fit_capacities`); also what the SavedModel's bucketed XLA programs run
        (`ltp_tf.serving.xla_buckets`). Compile it yourself (`compilation.compile_function`, `tf.function`).

        Args:
            capacities: the static output length of each compaction layer (`compact_layers`), in order,
                each at most the one before it (the first at most the input length).
            token_ids, segment_ids: `(batch, seq)` int32; padding_mask: `(batch, seq)` bool;
            lengths: `(batch,)` int32 live tokens per row.

        Returns:
            The segmented path's outputs (`pooled_output`, `logits` for classifiers, `kept_tokens`
            `(batch, num_layers)` int32) plus `overflow`, a scalar bool: whether any row kept more tokens
            than a capacity (then the cut lost live tokens and the result must not be used).
        """
        if len(capacities) != len(self.compact_layers):
            raise ValueError(f"`capacities` must have one length per compaction layer {self.compact_layers}. "
                             f"Received: capacities={list(capacities)}")
        outputs = self._segment_functions[0](token_ids, segment_ids, padding_mask, lengths)
        kept, overflow = [], ops.zeros((), "bool")
        for k, capacity in enumerate(capacities):
            state, counts = outputs
            kept.append(counts)
            overflow = ops.logical_or(overflow, ops.any(counts[:, -1] > capacity))
            outputs = self._segment_functions[k + 1](state[:, :capacity], lengths)
        kept.append(outputs["kept_tokens"])
        return {**outputs, "kept_tokens": ops.concatenate(kept, axis=1), "overflow": overflow}

    def masked_forward(self, token_ids, segment_ids, padding_mask, lengths) -> dict[str, Any]:
        """The mask-only schedule as one pure Keras function (the length gate's): every block, pruned tokens
        masked, not removed. Arguments and outputs as `capped_forward`'s, without `overflow`."""
        return self._masked_function(token_ids, segment_ids, padding_mask, lengths)

    def _one_program_function(self, token_ids, segment_ids, padding_mask, lengths):
        """`capped_forward` at the capacities fitted for the inputs' (batch, length) bucket."""
        capacities = self.capacities[(token_ids.shape[0], token_ids.shape[1])]
        return self.capped_forward(capacities, token_ids, segment_ids, padding_mask, lengths)

    @staticmethod
    def _attend(block: TokenPruningEncoderBlock, hidden, token_mask, lengths):
        """`block`'s attention output and its hard keep mask (the live tokens it passes on)."""
        attention, probs = block.attend(hidden, token_mask, False)
        if not block.prunes:
            return attention, token_mask
        return attention, block.hard_keep_mask(block.score_tokens(probs, token_mask), token_mask, lengths)

    def _head(self, hidden) -> dict[str, Any]:
        pooled = self.backbone.pool(hidden)
        outputs = {"pooled_output": pooled}
        if self.head is not None:
            outputs["logits"] = self.head(pooled, training=False)
        return outputs


def _longest_live(padding_mask: np.ndarray) -> int:
    """One past the last live position of any row (0 if none is live)."""
    positions = np.arange(1, padding_mask.shape[1] + 1)
    return int((padding_mask * positions).max(initial=0))


def _pad(values: np.ndarray, batch_size: int, length: int) -> np.ndarray:
    """`values` cut or zero-padded to `(batch_size, length)`."""
    values = values[:, :length]
    return np.pad(values, ((0, batch_size - values.shape[0]), (0, length - values.shape[1])))


def _pack_state(residual, attention, token_mask):
    """One `(batch, seq, 2 * hidden + 1)` tensor: a segment's hand-over, cut to the new length in one op."""
    mask = ops.cast(token_mask, residual.dtype)[:, :, None]
    return ops.concatenate([residual, ops.cast(attention, residual.dtype), mask], axis=-1)


def _unpack_state(state, hidden_dim: int):
    """`(residual, attention, token_mask)` from `_pack_state`."""
    return state[..., :hidden_dim], state[..., hidden_dim:2 * hidden_dim], state[..., 2 * hidden_dim] > 0.5


def _cut(values, length: int):
    """The first `length` positions of `(batch, seq, ...)` values."""
    shape = list(values.shape)
    shape[1] = length
    return ops.slice(values, [0] * len(shape), shape)
