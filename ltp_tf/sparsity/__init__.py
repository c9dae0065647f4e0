"""Structured weight pruning for Keras 3 models (N:M, NxM, per-channel; magnitude, snip, snip-momentum).

    model = prune(model, WeightPruningGroup(pattern="2:4", target_sparsity=0.5, start_step=100, end_step=900,
                                            pruning_frequency=50))
    model.compile(...)
    model.fit(..., callbacks=[UpdateWeightPruning()])
    print(sparsity_report(model).format_table())
    strip(model)  # plain model, zeros in the kernels

See `docs/weight_pruning.md`.
"""

from ltp_tf.sparsity.callback import UpdateWeightPruning
from ltp_tf.sparsity.distillation import Distiller, dense_teacher
from ltp_tf.sparsity.patterns import parse_pattern
from ltp_tf.sparsity.pruning import PruningPlan, find_plan, prune, strip
from ltp_tf.sparsity.pruning_groups import WeightPruningGroup, load_pruning_configs
from ltp_tf.sparsity.recipe import WeightPruningConfig, WeightPruningSetup, setup_weight_pruning
from ltp_tf.sparsity.report import SparsityReport, sparsity_report
from ltp_tf.sparsity.schedules import (
    CosSchedule,
    CubeSchedule,
    ExpSchedule,
    LinearSchedule,
    SparsitySchedule,
    get_schedule,
)

# The former name of `WeightPruningGroup` (renamed so it cannot be mistaken for `ltp_tf.TokenPruningConfig`),
# kept so that code written against it keeps working.
PruningConfig = WeightPruningGroup

__all__ = [
    "CosSchedule",
    "CubeSchedule",
    "Distiller",
    "ExpSchedule",
    "LinearSchedule",
    "PruningConfig",
    "PruningPlan",
    "SparsityReport",
    "SparsitySchedule",
    "UpdateWeightPruning",
    "WeightPruningConfig",
    "WeightPruningGroup",
    "WeightPruningSetup",
    "dense_teacher",
    "find_plan",
    "get_schedule",
    "load_pruning_configs",
    "parse_pattern",
    "prune",
    "setup_weight_pruning",
    "sparsity_report",
    "strip",
]
