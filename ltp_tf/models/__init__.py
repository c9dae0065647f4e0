"""Backbone, task model and pretrained-weight loading."""

from ltp_tf.models.backbone import TokenPruningBackbone
from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.models.pretrained import backbone_from_keras_hub, load_backbone, packaged_minilm_path

__all__ = ["TokenPruningBackbone", "TokenPruningClassifier", "backbone_from_keras_hub", "load_backbone",
           "packaged_minilm_path"]
