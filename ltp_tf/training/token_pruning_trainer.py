"""Training objectives beyond LTP's lambda: a FLOPs target and distillation from cached teacher outputs.

    trainer = TokenPruningTrainer(classifier, target_flops_reduction=2.0, kd_weight=1.0)
    trainer.compile(optimizer=..., loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    trainer.fit(batches)     # inputs carry `teacher_logits` (and `teacher_hidden`) per example when distilling
    classifier.save(...)     # the trainer only wraps it

**FlopsTarget.** In soft training the backbone's `kept_tokens` are expected survivor counts, so
`ltp_tf.flops.expected_flops_ratio` (pruned / dense FLOPs, LTP's count) is differentiable in the
thresholds. Instead of a fixed `lambda * mean(mask)`, the loss gets `u * ratio` with the multiplier `u`
from a PI controller on the gap `ratio - 1 / target`, all inside the compiled step:

    u_t = m_t + proportional_gain * gap_t        (used, as a constant, in this step's loss)
    m_{t+1} = m_t + multiplier_lr * gap_t        (the Lagrange multiplier: gradient ascent on the gap)

Above the FLOPs budget `u` grows and pushes thresholds up; below it `u` goes negative and lets tokens
back in. `m` is a non-trainable variable, saved with the trainer's weights (so a resumed run continues it).
The blocks' own `mask_loss_weight` must be 0: the target replaces lambda.

**Distillation.** With `kd_weight > 0` the loss adds `kd_weight * T^2 * KL(teacher || student)` on
logits (`kd_weight * MSE` of the prediction for regression); with `kd_hidden_weight > 0` also the MSE
between the student's and the teacher's last-layer `[CLS]` states. Teacher outputs are not computed here:
they come with each batch (`TEACHER_LOGITS`, `TEACHER_HIDDEN` input keys), computed once per training
example (`ltp_tf.training.teacher_cache`).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from ltp_tf.flops import expected_flops_ratio
from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.sparsity.distillation import classifier_forward, logits_kd_loss, mean_squared_error
from ltp_tf.validation import check_number

TEACHER_LOGITS = "teacher_logits"
TEACHER_HIDDEN = "teacher_hidden"
TEACHER_KEYS = (TEACHER_LOGITS, TEACHER_HIDDEN)
# Controller gains chosen by measurement on MRPC (docs/training.md, "FLOPs target").
DEFAULT_MULTIPLIER_LR = 0.1
DEFAULT_PROPORTIONAL_GAIN = 5.0


@keras.saving.register_keras_serializable(package="ltp_tf")
class FlopsTarget(keras.layers.Layer):
    """Adds the Lagrangian FLOPs term of the module docstring and updates its multiplier (training only).

    Args:
        target_reduction: dense / pruned FLOPs to reach, > 1 (2.0 = half the work).
        hidden_dim, intermediate_dim: the encoder's sizes (for the FLOPs polynomial).
        multiplier_lr: step of the multiplier per training step per unit of gap, >= 0.
        proportional_gain: weight of the current gap in the multiplier used, >= 0.

    Call arguments: `sequence_lengths` `(batch,)`, `kept_tokens` `(batch, layers)` (the backbone's outputs),
    `training`. Returns the batch's expected FLOPs ratio (pruned / dense), a float32 scalar.
    """

    def __init__(self, target_reduction: float, hidden_dim: int, intermediate_dim: int,
                 multiplier_lr: float = DEFAULT_MULTIPLIER_LR, proportional_gain: float = DEFAULT_PROPORTIONAL_GAIN,
                 **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        check_number("target_flops_reduction", target_reduction, "a number > 1", lambda v: v > 1.0)
        check_number("multiplier_lr", multiplier_lr, "a number >= 0", lambda v: v >= 0.0)
        check_number("proportional_gain", proportional_gain, "a number >= 0", lambda v: v >= 0.0)
        self.target_reduction = float(target_reduction)
        self.hidden_dim = int(hidden_dim)
        self.intermediate_dim = int(intermediate_dim)
        self.multiplier_lr = float(multiplier_lr)
        self.proportional_gain = float(proportional_gain)

    def build(self, *args, **kwargs):
        self.multiplier = self.add_weight(name="multiplier", shape=(), initializer="zeros", dtype="float32",
                                          trainable=False)
        self.built = True

    def call(self, sequence_lengths, kept_tokens, training=None):
        ratio = expected_flops_ratio(self.hidden_dim, self.intermediate_dim, sequence_lengths, kept_tokens)
        if training:
            gap = ops.stop_gradient(ratio) - 1.0 / self.target_reduction
            used = ops.stop_gradient(self.multiplier + self.proportional_gain * gap)
            self.multiplier.assign(self.multiplier + self.multiplier_lr * gap)
            self.add_loss(used * ratio)
        return ratio

    def compute_output_spec(self, sequence_lengths, kept_tokens, training=None):
        return keras.KerasTensor((), dtype="float32")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"target_reduction": self.target_reduction, "hidden_dim": self.hidden_dim,
                       "intermediate_dim": self.intermediate_dim, "multiplier_lr": self.multiplier_lr,
                       "proportional_gain": self.proportional_gain})
        return config


class TokenPruningTrainer(keras.Model):
    """Trains `student` with a FLOPs target and/or distillation (see the module docstring).

    Its outputs are the student's logits, so it compiles and evaluates like the student; save `trainer.student`.

    Args:
        student: a `TokenPruningClassifier`.
        target_flops_reduction: None (no target), or the FLOPs reduction to reach, > 1. Needs a student in
            soft threshold search with `mask_loss_weight=0`.
        multiplier_lr, proportional_gain: the controller's gains (`FlopsTarget`).
        kd_weight: weight of the logits distillation loss, >= 0 (0: off).
        kd_temperature: its softmax temperature, > 0.
        kd_hidden_weight: weight of the `[CLS]` hidden-state MSE, >= 0 (0: off).
    """

    def __init__(self, student: TokenPruningClassifier, target_flops_reduction: float | None = None,
                 multiplier_lr: float = DEFAULT_MULTIPLIER_LR, proportional_gain: float = DEFAULT_PROPORTIONAL_GAIN,
                 kd_weight: float = 0.0, kd_temperature: float = 1.0, kd_hidden_weight: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(student, TokenPruningClassifier):
            raise ValueError(f"`student` must be a TokenPruningClassifier. Received: {type(student).__name__}")
        check_number("kd_weight", kd_weight, "a number >= 0", lambda v: v >= 0.0)
        check_number("kd_temperature", kd_temperature, "a number > 0", lambda v: v > 0.0)
        check_number("kd_hidden_weight", kd_hidden_weight, "a number >= 0", lambda v: v >= 0.0)
        self.student = student
        self.flops_target = None
        if target_flops_reduction is not None:
            pruning = student.backbone.pruning_config
            if not pruning.learned:
                raise ValueError("`target_flops_reduction` steers learned thresholds: the student must be in soft "
                                 f"threshold search. Received: prune_mode={pruning.prune_mode!r}, "
                                 f"masking_mode={pruning.masking_mode!r}")
            if pruning.mask_loss_weight != 0:
                raise ValueError("With `target_flops_reduction` the FLOPs target replaces lambda: build the student "
                                 f"with mask_loss_weight=0. Received: mask_loss_weight={pruning.mask_loss_weight}")
            self.flops_target = FlopsTarget(target_flops_reduction, student.backbone.hidden_dim,
                                            student.backbone.intermediate_dim, multiplier_lr, proportional_gain,
                                            name="flops_target")
        self.kd_weight = float(kd_weight)
        self.kd_temperature = float(kd_temperature)
        self.kd_hidden_weight = float(kd_hidden_weight)

    @property
    def multiplier(self) -> float | None:
        """The FLOPs target's Lagrange multiplier now (None without a target)."""
        if self.flops_target is None:
            return None
        return float(ops.convert_to_numpy(self.flops_target.multiplier))

    def build(self, input_shape=None):
        if not self.student.built:
            self.student.build(input_shape)
        if self.flops_target is not None and not self.flops_target.built:
            self.flops_target.build()
        self.built = True

    def call(self, inputs, training=None):
        student_inputs = {key: value for key, value in inputs.items() if key not in TEACHER_KEYS}
        logits, outputs = classifier_forward(self.student, student_inputs, training)
        if not training:
            return logits
        if self.flops_target is not None:
            self.flops_target(outputs["sequence_lengths"], outputs["kept_tokens"], training=True)
        if self.kd_weight > 0:
            teacher_logits = _teacher_input(inputs, TEACHER_LOGITS)
            if self.student.num_classes == 1:
                self.add_loss(self.kd_weight * mean_squared_error(logits, teacher_logits))
            else:
                self.add_loss(self.kd_weight * logits_kd_loss(logits, teacher_logits, self.kd_temperature))
        if self.kd_hidden_weight > 0:
            cls_states = outputs["sequence_output"][:, 0, :]  # (batch, hidden); [CLS] is never pruned
            self.add_loss(self.kd_hidden_weight * mean_squared_error(cls_states, _teacher_input(inputs, TEACHER_HIDDEN)))
        return logits

    def compute_output_spec(self, inputs, training=None):
        student_inputs = {key: value for key, value in inputs.items() if key not in TEACHER_KEYS}
        return self.student.compute_output_spec(student_inputs, training=training)


def _teacher_input(inputs, key: str):
    if key not in inputs:
        raise ValueError(f"Distillation needs the teacher's outputs in every training batch under {key!r} "
                         f"(see ltp_tf.training.teacher_cache). Received input keys: {sorted(inputs)}")
    return ops.stop_gradient(inputs[key])
