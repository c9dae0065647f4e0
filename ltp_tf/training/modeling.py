"""The model each stage trains: built from pretrained weights or the previous stage's checkpoint.

Moving between stages copies the classifier with the stage's token-pruning settings (and dtype policy)
and every weight (`ltp_tf.models.surgery.with_settings`). A stage that starts a new pruning search (`soft`,
`topk`, `threshold`) starts its thresholds at LTP's initial values; `hard` freezes the thresholds the
soft stage learned.
"""

from __future__ import annotations

import keras

from ltp_tf.callbacks import find_pruning_blocks
from ltp_tf.layers.encoder_block import TokenPruningEncoderBlock
from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.models.surgery import with_settings
from ltp_tf.token_pruning_config import TokenPruningConfig

# Stages whose thresholds restart from `final_token_threshold * i / L`.
FRESH_THRESHOLD_STAGES = ("soft", "topk", "threshold")


def pretrained_classifier(model: str | None, num_classes: int, dtype: str) -> TokenPruningClassifier:
    """A dense classifier on pretrained weights (`model`: HF folder or keras_hub preset; None: packaged MiniLM)."""
    from ltp_tf.models.pretrained import load_backbone

    backbone = load_backbone(model, TokenPruningConfig(), dtype=dtype)
    classifier = TokenPruningClassifier(backbone, num_classes=num_classes, dtype=dtype)
    classifier.build()
    return classifier


def stage_model(source: TokenPruningClassifier, stage: str, pruning_config: TokenPruningConfig,
                threshold_lr_scale: float, dtype: str) -> TokenPruningClassifier:
    """The model `stage` trains, from the `source` checkpoint's model."""
    if stage == "hard":
        source_pruning = source.backbone.pruning_config
        if source_pruning.prune_mode != "absolute_threshold":
            raise ValueError("The hard stage fine-tunes with the thresholds a soft stage learned; the checkpoint it "
                             f"starts from has prune_mode={source_pruning.prune_mode!r}. Restore a soft-stage "
                             "checkpoint, or run the `threshold` stage for manual thresholds.")
        learned = thresholds(source)
        model = with_settings(source, pruning_config=pruning_config, threshold_lr_scale=threshold_lr_scale, dtype=dtype)
        for block, value in zip(pruning_blocks(model), learned):
            block.frozen_threshold.assign(value)
        return model
    model = with_settings(source, pruning_config=pruning_config, threshold_lr_scale=threshold_lr_scale, dtype=dtype)
    if stage in FRESH_THRESHOLD_STAGES:
        for block in pruning_blocks(model):
            block.threshold_delta.assign(0.0)
            block.frozen_threshold.assign(block.base_threshold)
    return model


def pruning_blocks(model: keras.Model) -> list[TokenPruningEncoderBlock]:
    """The model's pruning blocks, first layer first."""
    return sorted(find_pruning_blocks(model), key=lambda block: block.layer_index)


def thresholds(model: keras.Model) -> list[float]:
    """The threshold each block uses now (learned in soft mode, frozen otherwise), first layer first.

    Empty unless the model prunes by threshold (`absolute_threshold`).
    """
    return [float(keras.ops.convert_to_numpy(block.threshold)) for block in pruning_blocks(model)
            if block.pruning_config.prune_mode == "absolute_threshold"]


def float32_copy(model: TokenPruningClassifier) -> TokenPruningClassifier:
    """An uncompiled float32 copy: what checkpoints store, whatever precision training used."""
    return with_settings(model, dtype="float32")
