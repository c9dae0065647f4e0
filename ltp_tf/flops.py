"""Analytic FLOPs of a pruned BERT encoder, LTP's way.

Per layer and sentence, with `n_in` tokens entering the layer and `n_out` leaving it (surviving its pruning):

    MACs = 2 * d * n_in**2          (attention scores and context)
         + 4 * d**2 * n_in          (query, key, value and output projections)
         + 2 * d * d_ff * n_out     (feed-forward; 8 * d**2 * n_out when d_ff = 4d, LTP's formula)
    FLOPs = 2 * MACs

Embeddings, LayerNorms, softmax and the classifier head are left out, as in LTP. The dense baseline runs
every layer on the sentence's unpadded length.

Weight sparsity (`weight_density` < 1, the fraction of nonzero encoder kernel weights) scales the projection
and feed-forward MACs, counting a zero weight as a skipped multiply-add; the attention MACs (activations
times activations) do not change. This is the count a sparse kernel would do, not what dense TF/XLA/JAX
kernels run: zeros buy no speed there.

`expected_flops_ratio` is the same count in `keras.ops`, differentiable in the kept-token counts: fed the
backbone's soft-training `kept_tokens` (expected survivors per layer), it is what a FLOPs target constrains
(`ltp_tf.training.token_pruning_trainer.FlopsTarget`); fed 0/1 masks it equals `count_flops`.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class FlopsReport:
    """FLOPs of a batch: per layer (summed over sentences), total, dense total and their ratio."""

    per_layer: tuple[float, ...]
    total: float
    dense_total: float

    @property
    def reduction(self) -> float:
        """Dense FLOPs divided by pruned FLOPs (2.0 = half the work)."""
        return self.dense_total / self.total if self.total else float("inf")

    def to_dict(self) -> dict:
        return {"per_layer": list(self.per_layer), "total": self.total, "dense_total": self.dense_total,
                "reduction": self.reduction}


def layer_flops(hidden_dim: int, intermediate_dim: int, tokens_in, tokens_out,
                weight_density: float = 1.0) -> np.ndarray:
    """FLOPs of one layer for arrays of per-sentence token counts."""
    return _layer_flops(hidden_dim, intermediate_dim, np.asarray(tokens_in, dtype=np.float64),
                        np.asarray(tokens_out, dtype=np.float64), weight_density)


def _layer_flops(hidden_dim, intermediate_dim, n_in, n_out, weight_density=1.0):
    """The module's per-layer polynomial; arithmetic only, so it serves NumPy arrays and backend tensors."""
    attention = 2 * hidden_dim * n_in**2
    weights = 4 * hidden_dim**2 * n_in + 2 * hidden_dim * intermediate_dim * n_out
    return 2 * (attention + weight_density * weights)


def expected_flops_ratio(hidden_dim: int, intermediate_dim: int, sequence_lengths, kept_tokens):
    """Pruned / dense FLOPs of a batch as a float32 scalar tensor, differentiable in `kept_tokens`.

    Args:
        sequence_lengths: `(batch,)` unpadded lengths.
        kept_tokens: `(batch, num_layers)` tokens each layer passes on, real-valued (expected counts).

    Each layer's input is the previous layer's kept count (the first layer's, the sentence length), as in
    `count_flops`; with integer counts the two agree.
    """
    from keras import ops

    lengths = ops.cast(sequence_lengths, "float32")[:, None]  # (batch, 1)
    kept = ops.cast(kept_tokens, "float32")  # (batch, layers)
    tokens_in = ops.concatenate([lengths, kept[:, :-1]], axis=1)  # (batch, layers)
    # Scaled by the model width so float32 sums stay well inside range for long batches.
    scale = 1.0 / float(hidden_dim * intermediate_dim)
    pruned = ops.sum(_layer_flops(hidden_dim, intermediate_dim, tokens_in, kept)) * scale
    dense = ops.sum(_layer_flops(hidden_dim, intermediate_dim, lengths, lengths)) * scale * kept.shape[1]
    return pruned / ops.maximum(dense, 1e-12)


def count_flops(hidden_dim: int, intermediate_dim: int, sequence_lengths, kept_tokens,
                weight_density: float = 1.0) -> FlopsReport:
    """FLOPs of a batch given what each layer kept.

    Args:
        hidden_dim, intermediate_dim: model sizes.
        sequence_lengths: `(batch,)` unpadded sentence lengths.
        kept_tokens: `(batch, num_layers)` tokens each layer passes on (the backbone's `kept_tokens`).
        weight_density: fraction of nonzero encoder kernel weights, in (0, 1] (1: dense weights). The dense
            baseline always has density 1.
    """
    if isinstance(weight_density, bool) or not 0.0 < float(weight_density) <= 1.0:
        raise ValueError(f"`weight_density` must be a number in (0, 1]. Received: weight_density={weight_density!r}")
    lengths = np.asarray(sequence_lengths, dtype=np.float64)
    kept = np.asarray(kept_tokens, dtype=np.float64)
    if lengths.ndim != 1 or kept.ndim != 2 or kept.shape[0] != lengths.shape[0]:
        raise ValueError("`sequence_lengths` must be (batch,) and `kept_tokens` (batch, num_layers). "
                         f"Received: shapes {lengths.shape} and {kept.shape}")
    if lengths.shape[0] == 0:
        raise ValueError("Cannot count FLOPs of an empty batch. Received: sequence_lengths of shape (0,)")
    tokens_in = np.concatenate([lengths[:, None], kept[:, :-1]], axis=1)
    per_layer = [float(layer_flops(hidden_dim, intermediate_dim, tokens_in[:, i], kept[:, i], weight_density).sum())
                 for i in range(kept.shape[1])]
    dense = float(layer_flops(hidden_dim, intermediate_dim, lengths, lengths).sum()) * kept.shape[1]
    return FlopsReport(per_layer=tuple(per_layer), total=float(sum(per_layer)), dense_total=dense)
