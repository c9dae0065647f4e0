"""Weight pruning and distillation (`ltp_tf.sparsity`) as stage plugins of the training CLI.

`--do_prune` prunes the stage's model as `WeightPruningConfig` says (the reference's flags), updates the masks
with `UpdateWeightPruning` during `fit`, and strips the masks (zeros baked into the kernels) before the
checkpoint is written. `--distill_loss_weight > 0` trains against a frozen dense copy of the stage's
starting model (the reference's teacher: the dense fine-tuned model, when `--restore` points at it).
"""

from __future__ import annotations

from typing import Sequence

import keras

from ltp_tf.sparsity import WeightPruningConfig, dense_teacher, setup_weight_pruning, strip
from ltp_tf.training.plugins import StageContext, StagePlugins


def weight_pruning_plugins(config: WeightPruningConfig) -> StagePlugins:
    """Plugins for every stage of a run: prune (and distil) in `model_transform`, strip before saving."""
    setups = {}

    def model_transform(model: keras.Model, context: StageContext) -> keras.Model:
        teacher = dense_teacher(model) if config.distill_loss_weight > 0 else None
        epochs = max(1, round(context.total_steps / context.steps_per_epoch))
        setup = setup_weight_pruning(model, config, context.steps_per_epoch, epochs, teacher=teacher)
        setups[context.stage] = setup
        return setup.training_model

    def callbacks(context: StageContext) -> Sequence[keras.callbacks.Callback]:
        return setups[context.stage].callbacks if context.stage in setups else ()

    def save_transform(student: keras.Model, context: StageContext) -> keras.Model:
        if config.do_prune:
            strip(student)
        return student

    if not config.do_prune and config.distill_loss_weight <= 0:
        return StagePlugins()
    return StagePlugins(callbacks=callbacks, model_transform=model_transform, save_transform=save_transform)
