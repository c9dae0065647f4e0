"""The optimizer of a stage: AdamW with Hugging Face's linear schedule, as LTP's trainer uses.

- Learning rate: linear warm-up over `warmup_ratio` of the steps, then linear decay to 0 at the end.
- Weight decay on weights only: biases, LayerNorm scales/offsets and the thresholds get none.
- Thresholds train at their own learning rate: the block's threshold is `base + scale * threshold_delta`,
  and Adam's update is invariant to the gradient's scale, so `scale = threshold_lr / lr` makes the
  threshold move exactly as with its own AdamW at `threshold_lr` (LTP's separate threshold optimizer).
- Gradients are clipped to a global norm of `max_grad_norm` (0: off), as Hugging Face's trainer does.
"""

from __future__ import annotations

import keras

# Variables (by name) that get no weight decay.
NO_DECAY = ["bias", "gamma", "beta", "threshold_delta"]


@keras.saving.register_keras_serializable(package="ltp_tf")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr * step / warmup` for `step < warmup`, then linear decay to 0 at `total_steps` (or, with
    `decay=False`, the constant `lr`: the reference's `--lr_scheduler_type=constant`)."""

    def __init__(self, lr: float, total_steps: int, warmup_steps: int = 0, decay: bool = True):
        self.lr = float(lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = bool(decay)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = keras.ops.cast(max(self.warmup_steps, 1), "float32")
        decay = keras.ops.cast(max(self.total_steps - self.warmup_steps, 1), "float32")
        warming = self.lr * step / warmup
        decaying = self.lr * keras.ops.maximum(0.0, 1.0 - (step - self.warmup_steps) / decay)
        if not self.decay:
            decaying = keras.ops.full_like(decaying, self.lr)
        return keras.ops.where(step < self.warmup_steps, warming, decaying)

    def get_config(self) -> dict:
        return {"lr": self.lr, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "decay": self.decay}


def make_optimizer(lr: float, total_steps: int, warmup_ratio: float, weight_decay: float,
                   max_grad_norm: float, lr_scheduler_type: str = "linear") -> keras.optimizers.AdamW:
    """AdamW (HF's betas and epsilon) with the linear (or constant) schedule; thresholds, biases and
    LayerNorms not decayed."""
    schedule = LinearWarmupDecay(lr, total_steps, round(warmup_ratio * total_steps),
                                 decay=lr_scheduler_type == "linear")
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay, beta_1=0.9, beta_2=0.999,
                                       epsilon=1e-8, global_clipnorm=max_grad_norm or None)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer
