"""Which pruning config owns each kernel.

Every config selects kernels by `op_names` / `excluded_op_names`. A config that selects no prunable kernel
at all is an error (a typo in a regular expression should not silently prune nothing). When several configs
select the same kernel, the most specific one wins: the one that selects the fewest kernels of the model, so
a catch-all group (`".*"`) plus a narrower group (`".*query"`) gives the query kernels to the narrow one
whatever their order (INC: local settings take priority over global ones). Two equally specific configs
claiming one kernel are ambiguous and an error. Kernels whose shape does not fit their config's pattern
are left dense and listed with the reason.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras

from ltp_tf.sparsity.kernels import PrunableKernel, prunable_kernels
from ltp_tf.sparsity.pruning_groups import WeightPruningGroup


@dataclasses.dataclass(frozen=True)
class Assignment:
    """A kernel and the index of the config that prunes it."""

    kernel: PrunableKernel
    config_index: int


@dataclasses.dataclass(frozen=True)
class SkippedKernel:
    """A selected kernel left dense, and why."""

    path: str
    shape: tuple[int, ...]
    config_index: int
    reason: str


def assign_kernels(model: keras.Model, configs: Sequence[WeightPruningGroup]
                   ) -> tuple[list[Assignment], list[SkippedKernel]]:
    """Resolves `configs` against `model`'s Dense / EinsumDense kernels (see the module docstring)."""
    kernels = prunable_kernels(model)
    selected = [[k for k in kernels if config.selects(k.path)] for config in configs]
    for i, (config, chosen) in enumerate(zip(configs, selected)):
        if not chosen:
            examples = ", ".join(k.path for k in kernels[:4]) or "none"
            raise ValueError(f"`op_names` of pruning config {i} must select at least one Dense or EinsumDense kernel "
                             f"of model {model.name!r}. Received: op_names={list(config.op_names)}, "
                             f"excluded_op_names={list(config.excluded_op_names)} (kernels look like: {examples})")
    assignments, skipped = [], []
    for kernel in kernels:
        claims = [i for i, chosen in enumerate(selected) if any(k.variable is kernel.variable for k in chosen)]
        if not claims:
            continue
        narrowest = min(len(selected[i]) for i in claims)
        owners = [i for i in claims if len(selected[i]) == narrowest]
        if len(owners) > 1:
            raise ValueError(f"Pruning configs {owners} both select kernel {kernel.path!r} and are equally specific "
                             f"(each selects {narrowest} kernels). Make their `op_names` disjoint.")
        owner = owners[0]
        reason = configs[owner].parsed_pattern.check((kernel.view.in_dim, kernel.view.out_dim))
        if reason is None:
            assignments.append(Assignment(kernel, owner))
        else:
            skipped.append(SkippedKernel(kernel.path, kernel.view.shape, owner,
                                         f"pattern {configs[owner].pattern!r} does not fit: {reason}"))
    return assignments, skipped
