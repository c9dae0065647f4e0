"""Token importance scores and the keep rules built on them (`keras.ops` only, every backend).

Importance of key token k in sentence b at one layer (LTP's `scoring_mode="mean"`):

    score[b, k] = sum_{h, q live} A[b, h, q, k] / (H * R)

where `A` are the post-softmax attention probabilities `(batch, heads, query, key)`, the sum runs over
all heads and over the query rows of live tokens (real, not yet pruned), H is the number of heads and R
is `score_reference_length` (128: the length LTP pads every input to, so its published thresholds keep
their meaning). Because R is a constant and padded/pruned queries are excluded, a sentence's scores do
not depend on how much padding its batch has. With `scoring_mode="length_normalized"`, R is instead the
sentence's number of live queries, so each sentence's scores sum to one.
"""

from __future__ import annotations

import math

from keras import ops

from ltp_tf.validation import check_one_of

# Scores are compared against `max(threshold, MIN_THRESHOLD)` in hard mode, as in LTP.
MIN_THRESHOLD = 1e-5
# Top-k keep rates never fall below this fraction (LTP's floor).
MIN_KEEP_RATE = 0.01


def token_importance(attention_probs, token_mask, scoring_mode: str = "mean", reference_length: int = 128):
    """Attention each key token receives, averaged over heads and live queries.

    Args:
        attention_probs: `(batch, heads, query, key)` post-softmax attention probabilities.
        token_mask: `(batch, seq)` boolean, True for live tokens (real and not pruned).
        scoring_mode: `"mean"` (divide by heads * `reference_length`) or `"length_normalized"`
            (divide by heads * live queries).
        reference_length: R in the module formula, for `"mean"`.

    Returns:
        `(batch, key)` float32 scores.
    """
    check_one_of("scoring_mode", scoring_mode, ("mean", "length_normalized"))
    probs = ops.cast(attention_probs, "float32")
    live = ops.cast(token_mask, "float32")  # (batch, seq)
    received = ops.einsum("bhqk,bq->bk", probs, live)  # (batch, key)
    num_heads = ops.cast(ops.shape(probs)[1], "float32")
    if scoring_mode == "mean":
        return received / (num_heads * float(reference_length))
    live_queries = ops.maximum(ops.sum(live, axis=1, keepdims=True), 1.0)  # (batch, 1)
    return received / (num_heads * live_queries)


def topk_first_pruning_layer(num_layers: int) -> int:
    """Index of the first layer that prunes in top-k mode: `max(3, ceil(0.15 * L))` layers keep all."""
    return max(3, math.ceil(0.15 * num_layers))


def topk_keep_rates(num_layers: int, token_keep_rate: float) -> list[float]:
    """Per-layer keep rates of LTP's top-k baseline, relative to each sentence's unpadded length.

    The first `max(3, ceil(0.15 L))` layers keep every token; from there the rate falls linearly and
    reaches `token_keep_rate` at the last layer, floored at 0.01. With L = 12 this is LTP's
    `1 + (r - 1)(i - 2)/(L - 3)`.
    """
    start = topk_first_pruning_layer(num_layers)
    rates = []
    for i in range(num_layers):
        if i < start:
            rates.append(1.0)
        else:
            fraction = (i - start + 1) / (num_layers - start)
            rates.append(max(MIN_KEEP_RATE, 1.0 + (token_keep_rate - 1.0) * fraction))
    return rates


def initial_threshold(layer_index: int, num_layers: int, final_token_threshold: float) -> float:
    """LTP's threshold initialisation: `final_token_threshold * i / L` for 0-based layer i."""
    return final_token_threshold * layer_index / num_layers


def protect_cls(mask, token_mask):
    """Sets position 0 ([CLS]) of `mask` to its liveness in `token_mask`: [CLS] is never pruned."""
    seq_len = ops.shape(mask)[1]
    is_cls = ops.arange(seq_len)[None, :] == 0  # (1, seq)
    if mask.dtype == "bool":
        return ops.where(is_cls, token_mask, mask)
    return ops.where(is_cls, ops.cast(token_mask, mask.dtype), mask)


def threshold_keep_mask(scores, token_mask, threshold):
    """Hard keep mask: live tokens whose score reaches `max(threshold, 1e-5)`, plus [CLS]. `(batch, seq)` bool."""
    threshold = ops.maximum(ops.cast(threshold, "float32"), MIN_THRESHOLD)
    keep = ops.logical_and(token_mask, scores >= threshold)
    return protect_cls(keep, token_mask)


def soft_keep_mask(scores, token_mask, threshold, temperature: float):
    """Soft mask `sigmoid((score - threshold) / T)` on live tokens, 1 for [CLS], 0 for padding. float32."""
    soft = ops.sigmoid((scores - ops.cast(threshold, "float32")) / temperature)
    soft = soft * ops.cast(token_mask, "float32")
    return protect_cls(soft, token_mask)


def topk_keep_counts(sentence_lengths, keep_rate: float):
    """Tokens each sentence keeps at `keep_rate`: `round(length * rate)`, at least 1. `(batch,)` int32.

    Rounding is half to even, as LTP's `torch.round` (a 5-token sentence at rate 0.5 keeps 2), and the
    product is taken in float32 as there. The floor of 1 keeps `[CLS]` alone where the count rounds to 0.
    """
    counts = ops.round(ops.cast(sentence_lengths, "float32") * float(keep_rate))
    return ops.cast(ops.maximum(counts, 1.0), "int32")


def straight_through_keep_mask(scores, token_mask, threshold, temperature: float):
    """The hard keep mask in the forward pass with the soft mask's gradient (a straight-through estimator).

    Forward: exactly `threshold_keep_mask` as 0/1 float32, so training sees the tokens evaluation keeps;
    backward: the gradient of `soft_keep_mask`, so the threshold still learns.
    """
    soft = soft_keep_mask(scores, token_mask, threshold, temperature)
    hard = ops.cast(threshold_keep_mask(scores, token_mask, threshold), "float32")
    return hard + (soft - ops.stop_gradient(soft))  # soft - soft is exactly 0: the forward value is `hard`


def topk_keep_mask(scores, token_mask, keep_counts):
    """Keeps the `keep_counts[b]` highest-scoring live tokens of each sentence, [CLS] always among them.

    Args:
        scores: `(batch, seq)` float32 importance scores.
        token_mask: `(batch, seq)` bool live tokens.
        keep_counts: `(batch,)` int32 number of tokens to keep per sentence.
    """
    seq_len = ops.shape(scores)[1]
    # [CLS] ranks first, dead tokens last; ties broken by position so every backend agrees.
    ranked = ops.where(token_mask, scores, -1.0)
    ranked = ops.where(ops.arange(seq_len)[None, :] == 0, 2.0, ranked)
    order = ops.argsort(-ranked, axis=1)  # (batch, seq): positions, best first
    ranks = ops.argsort(order, axis=1)  # (batch, seq): rank of each position
    keep = ranks < ops.cast(keep_counts, "int32")[:, None]
    return protect_cls(ops.logical_and(keep, token_mask), token_mask)


def masked_mean(values, token_mask):
    """Mean of `values` over live tokens of the whole batch (padding excluded)."""
    live = ops.cast(token_mask, "float32")
    return ops.sum(ops.cast(values, "float32") * live) / ops.maximum(ops.sum(live), 1.0)


def compact_order(keep_mask):
    """Per-row positions with kept tokens first, in their original order: `(batch, seq)` int32.

    The sort key `(not kept) * seq + position` is unique per row, so the result does not depend on
    whether a backend's argsort is stable.
    """
    seq_len = ops.shape(keep_mask)[1]
    positions = ops.arange(seq_len, dtype="int32")[None, :]
    key = (1 - ops.cast(keep_mask, "int32")) * seq_len + positions
    return ops.cast(ops.argsort(key, axis=1), "int32")
