"""`UpdateWeightPruning`: the one callback that drives weight pruning during `fit`.

- `on_train_begin`: wraps the model's optimizer in a `PruningOptimizer` (gradient scores, mask re-application;
  for a `LossScaleOptimizer` its inner optimizer, so scores see unscaled gradients) and rebuilds the train
  function so the step is traced with it.
- resuming: when a freshly pruned model starts `fit` at `initial_epoch > 0` (an interrupted run reloaded from
  its checkpoint), the schedules' clock starts at `initial_epoch * steps_per_epoch` and the masks are rebuilt
  from the zeros the checkpoint's kernels hold (masks are not saved; the zeros are).
- after every optimizer step: advances the plan's step counter; at each group's pruning events, recomputes
  that group's masks from its scores for the scheduled sparsity and zeroes the pruned weights.
- `on_epoch_end`: adds `weight_sparsity` (zeros in the pruned kernels' masks) to the logs.
- `on_train_end`: puts the original optimizer back and drops the traced step, so a later `fit` without this
  callback meets `MaskConstraint`'s error instead of silently reusing the pruning step.

Under JAX, `fit` keeps the variables' values outside the `Variable` objects; at a pruning event the callback
writes them back (`model.jax_state_sync()`) before reading scores and weights, and the next step reads the
new masks and weights back in (as `ltp_tf.callbacks.set_masking_mode` does).
"""

from __future__ import annotations

import keras
import numpy as np

from ltp_tf.sparsity.masks import select_blocks
from ltp_tf.sparsity.optimizer import PruningOptimizer, ScoredKernel
from ltp_tf.sparsity.pruning import PruningPlan, find_plan


class UpdateWeightPruning(keras.callbacks.Callback):
    """Updates scores and masks on the pruning schedule (see the module docstring). Takes no arguments: the
    schedules are the pruned model's `WeightPruningGroup`s."""

    def __init__(self):
        super().__init__()
        self._batches_done = 0
        self._first_epoch = True
        self._plan: PruningPlan | None = None
        self._wrapped: tuple[object, str, PruningOptimizer] | None = None

    # ------------------------------------------------------------------ fit hooks
    def on_train_begin(self, logs=None):
        self._plan = find_plan(self.model)
        self._install_optimizer(self._plan)
        self.model.make_train_function(force=True)
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        self._batches_done = 0
        if not self._first_epoch:
            return
        self._first_epoch = False
        plan = self._plan
        if plan.step == 0 and epoch > 0:
            plan.resume(epoch * self.params["steps"])
            plan.optimizer.sync_masks()
        elif plan.step == 0:  # an event before any step: a one-shot magnitude schedule at step 0
            self._update_masks(plan, -1, 0)

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the last batch index of this call: several steps with `steps_per_execution` > 1.
        steps = batch + 1 - self._batches_done
        self._batches_done = batch + 1
        self._plan.step += steps
        self._update_masks(self._plan, self._plan.step - steps, self._plan.step)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["weight_sparsity"] = self._plan.sparsity()

    def on_train_end(self, logs=None):
        if self._wrapped is not None:
            holder, attribute, wrapper = self._wrapped
            setattr(holder, attribute, wrapper.inner)
            self._wrapped = None
        self.model.make_train_function(force=True)

    # ------------------------------------------------------------------ internals
    def _install_optimizer(self, plan: PruningPlan) -> None:
        optimizer = self.model.optimizer
        if optimizer is None:
            raise ValueError("Compile the model before `fit`: UpdateWeightPruning wraps its optimizer.")
        holder, attribute = (optimizer, "inner_optimizer") if isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer) else (self.model, "optimizer")
        inner = getattr(holder, attribute)
        if plan.optimizer is None or plan.optimizer.inner is not inner:
            kernels = [ScoredKernel(k.kernel.variable, k.mask, plan.configs[k.config_index].pruning_type)
                       for k in plan.kernels]
            plan.optimizer = PruningOptimizer(inner, kernels)
        if plan.optimizer.built:
            plan.optimizer.sync_masks()
        else:
            plan.optimizer.build(self.model.trainable_variables)
        setattr(holder, attribute, plan.optimizer)
        self._wrapped = (holder, attribute, plan.optimizer)

    def _update_masks(self, plan: PruningPlan, previous_step: int, step: int) -> None:
        """Runs, per group, the latest pruning event in steps (previous_step, step]."""
        events = {}
        for index, config in enumerate(plan.configs):
            schedule = config.schedule
            hits = [schedule.event_index(s) for s in range(max(previous_step + 1, 0), step + 1)]
            hits = [k for k in hits if k is not None]
            if hits:
                events[index] = schedule.sparsity(max(hits))
        if not events:
            return
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        for index, sparsity in events.items():
            _update_group_masks(plan, index, sparsity)
        plan.optimizer.sync_masks()


def _update_group_masks(plan: PruningPlan, config_index: int, sparsity: float) -> None:
    """Recomputes the masks of group `config_index` for `sparsity` and zeroes its pruned weights."""
    config = plan.configs[config_index]
    group = plan.group(config_index)
    if not group:
        return
    pattern = config.parsed_pattern
    layouts = [pattern.layout(k.kernel.view.to_matrix(_scores(plan, k))) for k in group]
    pruned = select_blocks(layouts, sparsity, config.pruning_scope, config.min_sparsity_ratio_per_op,
                           config.max_sparsity_ratio_per_op)
    for kernel, layout, blocks in zip(group, layouts, pruned):
        mask = kernel.kernel.view.from_matrix(layout.mask(blocks)).astype(kernel.mask.dtype)
        kernel.mask.assign(mask)
        variable = kernel.kernel.variable
        variable.assign(keras.ops.convert_to_numpy(variable) * mask)


def _scores(plan: PruningPlan, kernel) -> np.ndarray:
    criterion = plan.configs[kernel.config_index].pruning_type
    if criterion == "magnitude":
        return np.abs(keras.ops.convert_to_numpy(kernel.kernel.variable))
    score = plan.optimizer.score(kernel.kernel.variable) if plan.optimizer is not None else None
    if score is None:
        raise ValueError(f"Kernel {kernel.path!r} uses the `{criterion}` criterion but has no gradient score: it is "
                         "not trainable, or training has not started. Use pruning_type='magnitude' for it.")
    return keras.ops.convert_to_numpy(score)
