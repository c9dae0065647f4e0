"""ltp_tf: learned token pruning (LTP) and structured weight pruning for BERT-style encoders in Keras 3."""

from ltp_tf.callbacks import KeptTokenLogger, SoftToHardSwitch, set_masking_mode
from ltp_tf.flops import FlopsReport, count_flops
from ltp_tf.layers import TokenPruningEncoderBlock
from ltp_tf.models import (
    TokenPruningBackbone,
    TokenPruningClassifier,
    backbone_from_keras_hub,
    load_backbone,
    packaged_minilm_path,
)
from ltp_tf.token_pruning_config import TokenPruningConfig

__version__ = "0.1.0"

__all__ = [
    "FlopsReport",
    "KeptTokenLogger",
    "SoftToHardSwitch",
    "TokenPruningBackbone",
    "TokenPruningClassifier",
    "TokenPruningConfig",
    "TokenPruningEncoderBlock",
    "backbone_from_keras_hub",
    "count_flops",
    "load_backbone",
    "packaged_minilm_path",
    "set_masking_mode",
]
