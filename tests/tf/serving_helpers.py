"""Checkpoints for the serving and export tests: a 2-layer cut of the real MiniLM, and a tiny random model."""

from __future__ import annotations

import os

import numpy as np

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig, load_backbone, packaged_minilm_path
from ltp_tf.checkpoints import save_checkpoint

PRUNING = TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=0.01)
TINY_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "the", "movie", "good", "bad", "is", "##s", "."]


def minilm_classifier(num_layers: int = 6, num_classes: int = 2, config: TokenPruningConfig = PRUNING,
                      seed: int = 0) -> TokenPruningClassifier:
    """The real MiniLM weights (its first `num_layers` blocks) with a hard threshold and a random head."""
    full = load_backbone(packaged_minilm_path(), config)
    if num_layers == full.num_layers:
        backbone = full
    else:
        backbone = TokenPruningBackbone(
            vocabulary_size=full.vocabulary_size, num_layers=num_layers, num_heads=full.num_heads,
            hidden_dim=full.hidden_dim, intermediate_dim=full.intermediate_dim, dropout=full.dropout,
            max_sequence_length=full.max_sequence_length, activation=full.activation, pruning_config=config,
            name="token_pruning_backbone")
        backbone.build()
        source = {v.path.split("/", 1)[1]: v for v in full.weights}
        for variable in backbone.weights:
            variable.assign(source[variable.path.split("/", 1)[1]].numpy())
    model = TokenPruningClassifier(backbone, num_classes=num_classes)
    model({"token_ids": np.ones((1, 4), "int32")})
    rng = np.random.default_rng(seed)
    model.output_dense.kernel.assign(rng.normal(scale=0.5, size=model.output_dense.kernel.shape).astype("float32"))
    return model


def minilm_checkpoint(path: str, task: str = "sst2", num_layers: int = 2, max_seq_length: int = 128) -> str:
    """A checkpoint folder of `minilm_classifier(num_layers)` for `task`."""
    from ltp_tf.data import get_task

    model = minilm_classifier(num_layers, get_task(task).num_classes)
    vocabulary = os.path.join(packaged_minilm_path(), "vocab.txt")
    return save_checkpoint(path, model, task=task, max_seq_length=max_seq_length, vocabulary_file=vocabulary,
                           metadata={"lowercase": True, "strip_accents": False})


def tiny_checkpoint(path: str, task: str = "sst2", max_seq_length: int = 16, num_layers: int = 2,
                    pruning: TokenPruningConfig | None = None) -> str:
    """A checkpoint folder of a tiny random model with a 13-word vocabulary (fast to export); `pruning`
    defaults to a hard threshold of 0.2."""
    from ltp_tf.data import get_task

    vocabulary = os.path.join(os.path.dirname(os.path.abspath(path)), "tiny_vocab.txt")
    with open(vocabulary, "w", encoding="utf-8") as f:
        f.write("\n".join(TINY_VOCABULARY) + "\n")
    pruning = pruning or PRUNING.replace(score_reference_length=8, final_token_threshold=0.2)
    backbone = TokenPruningBackbone(vocabulary_size=len(TINY_VOCABULARY), num_layers=num_layers, num_heads=2,
                                    hidden_dim=8, intermediate_dim=16, max_sequence_length=32, pruning_config=pruning)
    model = TokenPruningClassifier(backbone, num_classes=get_task(task).num_classes)
    model({"token_ids": np.ones((1, 4), "int32")})
    return save_checkpoint(path, model, task=task, max_seq_length=max_seq_length, vocabulary_file=vocabulary,
                           metadata={"lowercase": True, "strip_accents": False})
