"""`prune` and `strip`: the tfmot-shaped entry points, and the `PruningPlan` a pruned model carries.

`prune(model, configs)` works in place on a built Keras 3 model and returns it:
- it resolves which config owns each Dense / EinsumDense kernel (`ltp_tf.sparsity.selection`);
- it adds a non-trainable 0/1 mask weight `<kernel>_pruning_mask` to each pruned kernel's layer (as Keras'
  own `enable_lora` adds weights to a built layer), all ones at first, so the model's outputs are unchanged;
- it puts a `MaskConstraint` on each pruned kernel, so the optimizer re-applies the mask after every update and
  training without the `UpdateWeightPruning` callback fails loudly;
- it records the plan (configs, kernels, masks, step counter) on the model.

The forward pass is untouched: pruned weights are zero in the kernels themselves, so `model.save` writes the
zeros and any runtime that reads the kernels sees them. Masks are not written by `model.save` (Dense and
EinsumDense save only kernel and bias), so a checkpoint of a model under pruning loads into the plain model;
`PruningPlan.resume` rebuilds the masks from its zeros (the callback does it when `fit` resumes).

`strip(model)` bakes `kernel * mask` into every pruned kernel, removes masks, constraints and plan, and returns
the plain model: `strip(prune(model, configs))` has exactly the weights of `model` before pruning.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import keras

from ltp_tf.sparsity.kernels import PrunableKernel
from ltp_tf.sparsity.optimizer import MaskConstraint, PruningOptimizer
from ltp_tf.sparsity.pruning_groups import WeightPruningGroup
from ltp_tf.sparsity.selection import SkippedKernel, assign_kernels

PLAN_ATTRIBUTE = "_ltp_weight_pruning_plan"
MASK_SUFFIX = "_pruning_mask"


@dataclasses.dataclass
class PrunedKernel:
    """A pruned kernel: its layer, variable and matrix view, its 0/1 mask, and the index of its config."""

    kernel: PrunableKernel
    mask: keras.Variable
    config_index: int
    previous_constraint: Any

    @property
    def path(self) -> str:
        return self.kernel.path


@dataclasses.dataclass
class PruningPlan:
    """What `prune` did to a model, and the state the callback advances.

    Attributes:
        configs: the pruning configs, in the order given.
        kernels: the pruned kernels.
        skipped: selected kernels left dense (pattern does not fit).
        step: optimizer steps taken under pruning so far (the schedules' clock).
        optimizer: the `PruningOptimizer` of the last `fit` (kept so snip-momentum scores persist across fits).
    """

    configs: tuple[WeightPruningGroup, ...]
    kernels: list[PrunedKernel]
    skipped: list[SkippedKernel]
    step: int = 0
    optimizer: PruningOptimizer | None = None

    def group(self, config_index: int) -> list[PrunedKernel]:
        return [k for k in self.kernels if k.config_index == config_index]

    def resume(self, step: int) -> None:
        """Continues a run interrupted after `step` steps: sets the clock and keeps only non-zero weights unmasked."""
        self.step = step
        for kernel in self.kernels:
            values = keras.ops.convert_to_numpy(kernel.kernel.variable)
            kernel.mask.assign((keras.ops.convert_to_numpy(kernel.mask) * (values != 0)).astype(values.dtype))

    def sparsity(self) -> float:
        """Fraction of zeros in the masks of all pruned kernels."""
        masks = [keras.ops.convert_to_numpy(k.mask) for k in self.kernels]
        return float(sum((m == 0).sum() for m in masks) / sum(m.size for m in masks))


def prune(model: keras.Model,
          configs: WeightPruningGroup | Mapping[str, Any] | Sequence[WeightPruningGroup | Mapping[str, Any]]
          ) -> keras.Model:
    """Prepares `model` (built, in place) for weight pruning and returns it. See the module docstring.

    Args:
        model: a built Keras 3 model.
        configs: one `WeightPruningGroup` (or its dict), or several; overlapping selections go to the most specific.
    """
    configs = _as_configs(configs)
    if find_plan(model, required=False) is not None:
        raise ValueError(f"Model {model.name!r} is already pruned: call `strip(model)` before pruning it again.")
    assignments, skipped = assign_kernels(model, configs)
    if not assignments:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:4])
        raise ValueError(f"No selected kernel of model {model.name!r} fits its pattern, so nothing can be pruned. "
                         f"Received: patterns {[c.pattern for c in configs]} ({reasons})")
    kernels = []
    for assignment in assignments:
        variable = assignment.kernel.variable
        mask = _add_mask(assignment.kernel.layer, variable)
        previous = variable.constraint
        variable.constraint = MaskConstraint(mask, previous)
        kernels.append(PrunedKernel(assignment.kernel, mask, assignment.config_index, previous))
    setattr(model, PLAN_ATTRIBUTE, PruningPlan(configs=tuple(configs), kernels=kernels, skipped=skipped))
    return model


def strip(model: keras.Model) -> keras.Model:
    """Bakes the masks into the kernels and removes every pruning weight; returns the plain model (in place)."""
    owner, plan = _find_owner(model)
    if plan is None:
        raise ValueError(f"Model {model.name!r} has no weight pruning to strip: it was not passed to `prune`.")
    for pruned in plan.kernels:
        variable = pruned.kernel.variable
        variable.assign(keras.ops.multiply(variable, keras.ops.cast(pruned.mask, variable.dtype)))
        variable.constraint = pruned.previous_constraint
        delattr(pruned.kernel.layer, _mask_attribute(variable))  # Keras untracks the variable
    delattr(owner, PLAN_ATTRIBUTE)
    return model


def find_plan(model: keras.Model, required: bool = True) -> PruningPlan | None:
    """The `PruningPlan` of `model` or of one of its sub-models (e.g. the student inside a `Distiller`)."""
    plan = _find_owner(model)[1]
    if plan is None and required:
        raise ValueError(f"Model {model.name!r} has no weights prepared for pruning: call "
                         "`ltp_tf.sparsity.prune(model, configs)` before training it with `UpdateWeightPruning`.")
    return plan


def _find_owner(model: keras.Model) -> tuple[keras.layers.Layer | None, PruningPlan | None]:
    found = [(layer, layer.__dict__[PLAN_ATTRIBUTE]) for layer in model._flatten_layers(include_self=True)
             if PLAN_ATTRIBUTE in layer.__dict__]
    if len(found) > 1:
        raise ValueError(f"Model {model.name!r} contains {len(found)} pruned models "
                         f"({[layer.name for layer, _ in found]}); train one pruned model at a time.")
    return found[0] if found else (None, None)


def _add_mask(layer: keras.layers.Layer, variable: keras.Variable) -> keras.Variable:
    layer._tracker.unlock()
    mask = layer.add_weight(name=variable.name + MASK_SUFFIX, shape=tuple(variable.shape), initializer="ones",
                            dtype=variable.dtype, trainable=False)
    setattr(layer, _mask_attribute(variable), mask)
    layer._tracker.lock()
    return mask


def _mask_attribute(variable: keras.Variable) -> str:
    return variable.name + MASK_SUFFIX


def _as_configs(configs) -> list[WeightPruningGroup]:
    if isinstance(configs, (WeightPruningGroup, Mapping)):
        configs = [configs]
    if not isinstance(configs, Sequence) or not configs:
        raise ValueError("`configs` must be a WeightPruningGroup, a dict of its fields, or a non-empty list of "
                         f"them. Received: configs={configs!r}")
    return [c if isinstance(c, WeightPruningGroup) else WeightPruningGroup.from_dict(c) for c in configs]
