"""Pruning criteria: how much each weight matters (low scores are pruned first).

Definitions (INC's `criteria.py`):
- `"magnitude"`: `|W|`, read from the weights when masks are updated.
- `"snip"`: `|W * dL/dW|` of the latest optimizer step (SNIP, Lee et al. 2019).
- `"snip_momentum"`: after every optimizer step, `score <- 0.9 * score + 1.0 * |W * dL/dW|`, starting from 0.

`W` is the weight *before* the step, the one the gradient was taken at. Gradient criteria are accumulated
inside the optimizer step (`ltp_tf.sparsity.optimizer`), with `keras.ops`, on every backend.
"""

from __future__ import annotations

from keras import ops

CRITERIA = ("magnitude", "snip", "snip_momentum")
GRADIENT_CRITERIA = ("snip", "snip_momentum")
SNIP_MOMENTUM_DECAY = 0.9
SNIP_MOMENTUM_GAIN = 1.0


def needs_gradients(criterion: str) -> bool:
    """Whether `criterion` is accumulated from gradients during training."""
    return criterion in GRADIENT_CRITERIA


def update_score(criterion: str, score, weight, gradient):
    """The score after one optimizer step (`keras.ops`; any backend, inside compiled steps)."""
    saliency = ops.abs(ops.multiply(weight, ops.cast(gradient, weight.dtype)))
    if criterion == "snip":
        return saliency
    if criterion == "snip_momentum":
        return SNIP_MOMENTUM_DECAY * score + SNIP_MOMENTUM_GAIN * saliency
    raise ValueError(f"`criterion` must be one of {list(GRADIENT_CRITERIA)} to be updated from gradients. "
                     f"Received: criterion={criterion!r}")
