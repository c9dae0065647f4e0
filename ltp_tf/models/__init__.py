"""Backbone, task model, pretrained-weight loading and model surgery."""

from ltp_tf.models.backbone import TokenPruningBackbone
from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.models.pretrained import backbone_from_keras_hub, load_backbone, packaged_minilm_path
from ltp_tf.models.surgery import copy_weights_by_path, with_settings, without_token_pruning

__all__ = ["TokenPruningBackbone", "TokenPruningClassifier", "backbone_from_keras_hub", "copy_weights_by_path",
           "load_backbone", "packaged_minilm_path", "with_settings", "without_token_pruning"]
