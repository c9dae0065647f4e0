"""The optimizer step of a pruned model: gradient scores before the step, masks re-applied after it.

Why a wrapped optimizer. The snip criteria need `dL/dW`, which Keras hands only to the optimizer; wrapping
the optimizer's `apply` is the one place that sees every gradient on every backend (TensorFlow calls
`apply` inside its compiled train step, JAX calls `stateless_apply`, which runs the same `apply` in a
`StatelessScope`), without a custom `train_step` per backend. `PruningOptimizer`:

1. updates each pruned kernel's score from `W` and its gradient (`ltp_tf.sparsity.criteria`);
2. runs the wrapped optimizer, whose step ends with Keras' variable constraints: `prune` puts a
   `MaskConstraint` on every pruned kernel, so `W <- W * mask` right after every update;
3. keeps its own copy of every mask as an optimizer variable, which the constraints read during the step: under
   JAX, variables live outside the `Variable` objects during `fit` and only the optimizer's state reaches
   `stateless_apply` (the model's mask weights cannot simply be shared: JAX donates each state buffer once).
   The callback keeps the copies equal to the model's masks (`sync_masks`).

The callback (`ltp_tf.sparsity.callback`) installs the wrapper for the length of `fit`. `MaskConstraint` raises
when a pruned kernel is updated outside the wrapper, so training without the callback fails loudly.
"""

from __future__ import annotations

import dataclasses
import threading

import keras
from keras import ops

from ltp_tf.sparsity.criteria import needs_gradients, update_score

MISSING_CALLBACK = (
    "A kernel prepared by `ltp_tf.sparsity.prune` was updated outside a pruning step. Training a pruned "
    "model needs the `ltp_tf.sparsity.UpdateWeightPruning()` callback: "
    "`model.fit(..., callbacks=[UpdateWeightPruning(), ...])`. Without it masks are never updated or "
    "re-applied. Keras leaves a model whose first training step failed unusable (TensorFlow: the optimizer's "
    "variables stay uninitialized; JAX: the model's variables stay detached), so rebuild the model and compile "
    "it again before retrying. To train the dense model instead, call `ltp_tf.sparsity.strip(model)` first.")

_step_state = threading.local()


def in_pruning_step() -> bool:
    """Whether a `PruningOptimizer` is applying an update on this thread (true while it is traced)."""
    return getattr(_step_state, "depth", 0) > 0


class MaskConstraint(keras.constraints.Constraint):
    """`W <- previous(W) * mask`, applied by the optimizer after every update of a pruned kernel.

    Args:
        mask: the kernel's 0/1 mask variable (same shape as the kernel).
        previous: the kernel's constraint before pruning, applied first; None if it had none.
    """

    def __init__(self, mask: keras.Variable, previous=None):
        self.mask = mask
        self.previous = previous

    def __call__(self, w):
        mask = getattr(_step_state, "masks", {}).get(id(self.mask)) if in_pruning_step() else None
        if mask is None:
            raise RuntimeError(MISSING_CALLBACK)
        if self.previous is not None:
            w = self.previous(w)
        return ops.multiply(w, ops.cast(mask, w.dtype))


@dataclasses.dataclass(frozen=True)
class ScoredKernel:
    """A pruned kernel, its mask, and the criterion of its group."""

    variable: keras.Variable
    mask: keras.Variable
    criterion: str


class PruningOptimizer(keras.optimizers.Optimizer):
    """Wraps `inner` (see the module docstring). Learning rate, iterations and loss scaling are `inner`'s.

    Args:
        inner: the optimizer the model was compiled with.
        kernels: the pruned kernels.
    """

    def __init__(self, inner: keras.optimizers.Optimizer, kernels: list[ScoredKernel], name: str | None = None):
        super().__init__(learning_rate=0.0, name=name or f"pruning_{inner.name}")
        self.inner = inner
        self._kernels = list(kernels)
        self._scores: dict[int, keras.Variable] = {}
        self._mask_copies: dict[int, keras.Variable] = {}

    def build(self, var_list):
        if self.built:  # a wrapping LossScaleOptimizer builds its inner optimizer again
            return
        if not self.inner.built:
            self.inner.build(var_list)
        known = {id(v) for v in var_list}
        for kernel in self._kernels:
            name = kernel.variable.path.replace("/", "_")
            self._mask_copies[id(kernel.mask)] = self.add_variable(
                shape=kernel.mask.shape, initializer="ones", dtype=kernel.mask.dtype, name=name + "_mask")
            if needs_gradients(kernel.criterion) and id(kernel.variable) in known:
                self._scores[id(kernel.variable)] = self.add_variable(
                    shape=kernel.variable.shape, initializer="zeros", dtype="float32", name=name + "_score")
        super().build(var_list)
        self.sync_masks()

    @property
    def variables(self):
        return self._variables + self.inner.variables

    def sync_masks(self) -> None:
        """Copies the model's mask weights into the optimizer's copies (call after changing masks).

        Through the host: JAX would otherwise let both variables hold one buffer, which its train step refuses.
        """
        for kernel in self._kernels:
            self._mask_copies[id(kernel.mask)].assign(ops.convert_to_numpy(kernel.mask))

    def score(self, variable: keras.Variable) -> keras.Variable | None:
        """The score variable of a pruned kernel (None for `"magnitude"` or a frozen kernel)."""
        return self._scores.get(id(variable))

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            self.build(trainable_variables)
        variables = self._trainable_variables if trainable_variables is None else trainable_variables
        criteria = {id(k.variable): k.criterion for k in self._kernels}
        for gradient, variable in zip(grads, variables):
            score = self._scores.get(id(variable))
            if score is not None and gradient is not None:
                score.assign(update_score(criteria[id(variable)], score, variable, gradient))
        _step_state.depth = getattr(_step_state, "depth", 0) + 1
        _step_state.masks = self._mask_copies
        try:
            self.inner.apply(grads, trainable_variables)
        finally:
            _step_state.depth -= 1

    @property
    def learning_rate(self):
        return self.inner.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner.iterations

    def scale_loss(self, loss):
        return self.inner.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner.finalize_variable_values(var_list)

    def save_own_variables(self, store):
        # Checkpoints written during `fit` hold the user's optimizer state only.
        self.inner.save_own_variables(store)

    def load_own_variables(self, store):
        self.inner.load_own_variables(store)

    def get_config(self):
        return self.inner.get_config()
