"""The training CLI's view of weight pruning: `WeightPruningConfig` (the reference's flags) and
`setup_weight_pruning`, which turns it into what a trainer needs.

The flags mirror INC's GLUE example (`run_glue_no_trainer.py`): `--do_prune --target_sparsity
--pruning_pattern --pruning_frequency --sparsity_warm_epochs --cooldown_epochs --pruning_type --pruning_scope
--sparsity_decay_type --max_sparsity_ratio_per_op --distill_loss_weight`, plus `--min_sparsity_ratio_per_op`,
`--distill_mode`, `--distill_temperature` and `--pruning_config_file` (mixed per-layer configs, JSON or YAML).
As in the example, pruning starts after `sparsity_warm_epochs` epochs, ends `cooldown_epochs` before the end,
and every Dense kernel except the pooler's is pruned (the classifier too, where the pattern fits).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import keras

from ltp_tf.sparsity.callback import UpdateWeightPruning
from ltp_tf.sparsity.distillation import DISTILL_MODES, Distiller, dense_teacher
from ltp_tf.sparsity.pruning import prune
from ltp_tf.sparsity.pruning_groups import (
    WeightPruningGroup,
    load_pruning_configs,
    settings_from_mapping,
    settings_to_dict,
)
from ltp_tf.validation import check_int_at_least, check_number, check_one_of

# The reference excludes only the pooler ("excluded_op_names": ["pooler"]); keras_hub names it `pooled_dense`.
DEFAULT_OP_NAMES = (".*",)
DEFAULT_EXCLUDED_OP_NAMES = ("pooled_dense",)


@dataclasses.dataclass(frozen=True)
class WeightPruningConfig:
    """Weight pruning and distillation settings of a training run (field names are the flag names).

    Attributes:
        do_prune: prune weights in this run.
        target_sparsity, pruning_pattern, pruning_type, pruning_scope, sparsity_decay_type,
        max_sparsity_ratio_per_op, min_sparsity_ratio_per_op: as `WeightPruningGroup`'s `target_sparsity`, `pattern`,
            ... (defaults: the reference's, 0.9, 4x1, snip_momentum, global, exp, 0.98, 0).
        pruning_frequency: optimizer steps between mask updates, >= 1.
        sparsity_warm_epochs: epochs of training before the first mask update, >= 0 (may be fractional).
        cooldown_epochs: epochs of training after the last mask update, >= 0 (may be fractional).
        op_names, excluded_op_names: which kernels are pruned (regular expressions over variable paths).
        pruning_config_file: a JSON/YAML file of mixed per-layer configs (`ltp_tf.sparsity.pruning_groups`); its
            settings override these flags.
        distill_loss_weight: > 0 turns on distillation from the dense teacher with this weight.
        distill_mode: `"hidden_mse"` (the reference: replaces the task loss) or `"logits_kl"` (added to it).
        distill_temperature: softmax temperature of `"logits_kl"`.
    """

    do_prune: bool = False
    target_sparsity: float = 0.9
    pruning_pattern: str = "4x1"
    pruning_frequency: int = 50
    sparsity_warm_epochs: float = 1.0
    cooldown_epochs: float = 0.0
    pruning_type: str = "snip_momentum"
    pruning_scope: str = "global"
    sparsity_decay_type: str = "exp"
    max_sparsity_ratio_per_op: float = 0.98
    min_sparsity_ratio_per_op: float = 0.0
    op_names: tuple[str, ...] = DEFAULT_OP_NAMES
    excluded_op_names: tuple[str, ...] = DEFAULT_EXCLUDED_OP_NAMES
    pruning_config_file: str | None = None
    distill_loss_weight: float = 0.0
    distill_mode: str = "hidden_mse"
    distill_temperature: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.do_prune, bool):
            raise ValueError(f"`do_prune` must be a bool. Received: do_prune={self.do_prune!r}")
        for name in ("sparsity_warm_epochs", "cooldown_epochs", "distill_loss_weight"):
            check_number(name, getattr(self, name), "a number >= 0", lambda v: not v < 0)
        check_one_of("distill_mode", self.distill_mode, DISTILL_MODES)
        if not isinstance(self.distill_temperature, (int, float)) or not self.distill_temperature > 0:
            raise ValueError(f"`distill_temperature` must be a number > 0. "
                             f"Received: distill_temperature={self.distill_temperature!r}")
        self._base_config(start_step=1, end_step=1)  # validates the pruning fields and their combinations

    def _base_config(self, start_step: int, end_step: int) -> WeightPruningGroup:
        return WeightPruningGroup(
            op_names=tuple(self.op_names), excluded_op_names=tuple(self.excluded_op_names),
            target_sparsity=self.target_sparsity, pattern=self.pruning_pattern, pruning_type=self.pruning_type,
            pruning_scope=self.pruning_scope, sparsity_decay_type=self.sparsity_decay_type, start_step=start_step,
            end_step=end_step, pruning_frequency=self.pruning_frequency,
            max_sparsity_ratio_per_op=self.max_sparsity_ratio_per_op,
            min_sparsity_ratio_per_op=self.min_sparsity_ratio_per_op)

    def pruning_configs(self, steps_per_epoch: int, epochs: int) -> list[WeightPruningGroup]:
        """The pruning groups of a run of `epochs` epochs of `steps_per_epoch` optimizer steps.

        Pruning starts at `int(sparsity_warm_epochs * steps_per_epoch)` and ends at
        `int((epochs - cooldown_epochs) * steps_per_epoch)` (the reference's arithmetic).
        """
        check_int_at_least("steps_per_epoch", steps_per_epoch, 1)
        check_int_at_least("epochs", epochs, 1)
        start = int(self.sparsity_warm_epochs * steps_per_epoch)
        end = int((epochs - self.cooldown_epochs) * steps_per_epoch)
        if end < max(start, 1):
            raise ValueError(f"`sparsity_warm_epochs` + `cooldown_epochs` must leave training steps to prune in: "
                             f"pruning would start at step {start} and end at step {end} of "
                             f"{epochs * steps_per_epoch}. "
                             f"Received: sparsity_warm_epochs={self.sparsity_warm_epochs}, "
                             f"cooldown_epochs={self.cooldown_epochs}, epochs={epochs}")
        base = self._base_config(start, end)
        if self.pruning_config_file is None:
            return [base]
        return load_pruning_configs(self.pruning_config_file, defaults=base.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return settings_to_dict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "WeightPruningConfig":
        return cls(**settings_from_mapping(cls, values, "weight pruning setting", wrap_strings=True))


@dataclasses.dataclass(frozen=True)
class WeightPruningSetup:
    """What a trainer needs: the (pruned) model, the callbacks, and the distillation wrapper if any.

    Compile and `fit` `training_model` (the distiller when distilling, else the model); evaluate, save and
    export `model` (after `ltp_tf.sparsity.strip`).
    """

    model: keras.Model
    callbacks: tuple[keras.callbacks.Callback, ...]
    distiller: Distiller | None

    @property
    def training_model(self) -> keras.Model:
        return self.distiller if self.distiller is not None else self.model


def setup_weight_pruning(model: keras.Model, config: WeightPruningConfig, steps_per_epoch: int, epochs: int,
                         teacher: keras.Model | None = None) -> WeightPruningSetup:
    """Prunes `model` (built; compiled or not) as `config` says and returns what to train.

    Args:
        model: the dense fine-tuned model to prune (a `TokenPruningClassifier` for `hidden_mse` distillation).
        config: the run's `WeightPruningConfig`.
        steps_per_epoch, epochs: the training length the schedule is laid out on.
        teacher: the dense teacher; default: a frozen copy of `model` as it is now, with token pruning off (pass
            the dense checkpoint explicitly when `model` is a partly pruned model reloaded to resume a run).

    Resuming an interrupted run needs nothing more: `fit(initial_epoch=...)` on the reloaded model makes the
    callback continue the schedule and rebuild the masks from the checkpoint's zeros.
    """
    teacher_model = None
    if config.distill_loss_weight > 0:
        teacher_model = teacher if teacher is not None else dense_teacher(model)
    callbacks: tuple[keras.callbacks.Callback, ...] = ()
    if config.do_prune:
        prune(model, config.pruning_configs(steps_per_epoch, epochs))
        callbacks = (UpdateWeightPruning(),)
    distiller = None
    if teacher_model is not None:
        distiller = Distiller(model, teacher_model, loss_weight=config.distill_loss_weight,
                              mode=config.distill_mode, temperature=config.distill_temperature)
    return WeightPruningSetup(model=model, callbacks=callbacks, distiller=distiller)
