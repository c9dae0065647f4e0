"""Distillation from the dense fine-tuned teacher, for any Keras backend.

`Distiller(student, teacher, ...)` is a `keras.Model` that trains `student` (its outputs are the student's
logits, so it compiles and evaluates like the student). While training, its `call` also runs the frozen
teacher and adds the distillation loss with `add_loss`; `compute_loss` then decides what the objective is:

- `mode="hidden_mse"` (the reference recipe, INC's GLUE example): the loss is
  `weight * MSE(student last hidden states, teacher last hidden states)` and *replaces* the task loss while
  training (layer losses such as LTP's mask regulariser are kept). Evaluation reports the compiled task loss.
  Unlike the reference, which averages over every padded position, the mean runs over the tokens the
  student's last layer still holds (`token_mask`), so padding and dynamic batch widths do not change it; with
  `drop_tokens` the teacher's states are gathered at the student's `kept_positions`.
- `mode="logits_kl"`: `weight * T^2 * KL(softmax(teacher / T) || softmax(student / T))` (Hinton et al.), added
  to the compiled task loss.

`logits_kd_loss` and `mean_squared_error` are the losses; `ltp_tf.training.token_pruning_trainer` uses them with
teacher outputs computed once and cached (`ltp_tf.training.teacher_cache`) instead of a teacher forward pass per step.

`hidden_mse` needs `TokenPruningClassifier`s (their backbones expose the last hidden states);
`logits_kl` works with any classifier. Save `distiller.student`, not the distiller.
"""

from __future__ import annotations

import keras
from keras import ops

from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.models.surgery import without_token_pruning
from ltp_tf.validation import check_number, check_one_of

DISTILL_MODES = ("hidden_mse", "logits_kl")


class Distiller(keras.Model):
    """Trains `student` towards the frozen `teacher` (see the module docstring).

    Args:
        student: the model being trained (pruned or not).
        teacher: the dense fine-tuned model; frozen here.
        loss_weight: the reference's `distill_loss_weight`, > 0.
        mode: `"hidden_mse"` or `"logits_kl"`.
        temperature: softmax temperature of `"logits_kl"`, > 0.
    """

    def __init__(self, student: keras.Model, teacher: keras.Model, loss_weight: float = 1.0,
                 mode: str = "hidden_mse", temperature: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        check_one_of("distill_mode", mode, DISTILL_MODES)
        check_number("distill_loss_weight", loss_weight, "a number > 0", lambda v: v > 0)
        check_number("distill_temperature", temperature, "a number > 0", lambda v: v > 0)
        if mode == "hidden_mse":
            for name, model in (("student", student), ("teacher", teacher)):
                if not isinstance(model, TokenPruningClassifier):
                    raise ValueError(f"`distill_mode='hidden_mse'` needs a TokenPruningClassifier {name} (its backbone "
                                     f"gives the last hidden states). Received: {name} of type {type(model).__name__}; "
                                     "use distill_mode='logits_kl' for other models.")
        teacher.trainable = False
        self.student = student
        self.teacher = teacher
        self.loss_weight = float(loss_weight)
        self.mode = mode
        self.temperature = float(temperature)

    def build(self, input_shape=None):
        for model in (self.student, self.teacher):
            if not model.built:
                model.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        if self.mode == "logits_kl":
            logits = self.student(inputs, training=training)
            if training:
                teacher_logits = ops.stop_gradient(self.teacher(inputs, training=False))
                self.add_loss(self.loss_weight * self._kl(logits, teacher_logits))
            return logits
        logits, outputs = classifier_forward(self.student, inputs, training)
        if training:
            teacher_states = ops.stop_gradient(self.teacher.backbone(inputs, training=False)["sequence_output"])
            self.add_loss(self.loss_weight * _hidden_mse(outputs, teacher_states))
        return logits

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self.mode == "hidden_mse" and training:
            losses = [ops.cast(loss, "float32") for loss in self.losses]
            return ops.sum(ops.stack(losses))
        return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)

    def _kl(self, student_logits, teacher_logits):
        if student_logits.shape[-1] is not None and student_logits.shape[-1] < 2:
            raise ValueError("`distill_mode='logits_kl'` needs class logits (>= 2 classes). Received: logits of shape "
                             f"{tuple(student_logits.shape)}; use distill_mode='hidden_mse' for regression.")
        return logits_kd_loss(student_logits, teacher_logits, self.temperature)

    def compute_output_spec(self, inputs, training=None):
        return self.student.compute_output_spec(inputs, training=training)


def logits_kd_loss(student_logits, teacher_logits, temperature: float):
    """Hinton et al.'s soft-label loss `T^2 * mean_batch KL(softmax(teacher / T) || softmax(student / T))`."""
    t = float(temperature)
    teacher_log_probs = ops.log_softmax(ops.cast(teacher_logits, "float32") / t, axis=-1)  # (batch, classes)
    student_log_probs = ops.log_softmax(ops.cast(student_logits, "float32") / t, axis=-1)
    kl = ops.sum(ops.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)  # (batch,)
    return t * t * ops.mean(kl)


def mean_squared_error(student_values, teacher_values):
    """Mean over every element of `(student - teacher)^2`: regression predictions, or `[CLS]` hidden states."""
    difference = ops.cast(student_values, "float32") - ops.cast(teacher_values, "float32")
    return ops.mean(ops.square(difference))


def classifier_forward(model: TokenPruningClassifier, inputs, training):
    """`(logits, backbone outputs)` of a `TokenPruningClassifier` in one pass (its `call`, keeping the backbone's
    outputs)."""
    outputs = model.backbone(inputs, training=training)
    return model.head(outputs["pooled_output"], training=training), outputs


def _hidden_mse(student_outputs, teacher_states):
    """Mean squared error over the student's live tokens and the hidden units."""
    student_states = ops.cast(student_outputs["sequence_output"], "float32")
    positions = student_outputs["kept_positions"]
    teacher_states = ops.take_along_axis(ops.cast(teacher_states, "float32"), positions[:, :, None], axis=1)
    weights = ops.cast(student_outputs["token_mask"], "float32")[:, :, None]
    squared = ops.sum(ops.square(student_states - teacher_states) * weights)
    return squared / (ops.maximum(ops.sum(weights), 1.0) * ops.cast(ops.shape(student_states)[-1], "float32"))


def dense_teacher(student: TokenPruningClassifier) -> TokenPruningClassifier:
    """A frozen copy of `student` (same weights) with token pruning off: the dense teacher of the reference recipe.

    Call it before `prune`: the copy has the student's current weights.
    """
    if not isinstance(student, TokenPruningClassifier):
        raise ValueError(f"`dense_teacher` copies a TokenPruningClassifier. Received: {type(student).__name__}; "
                         "pass the teacher model yourself.")
    teacher = without_token_pruning(student, name=f"{student.name}_teacher")
    teacher.trainable = False
    return teacher
