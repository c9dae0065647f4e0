"""A tiny ALBERT (SentencePiece `spiece.model`, 3 layers sharing one set of weights) as a SavedModel.

A checkpoint with a different threshold per layer exports with the text signature; the reloaded checkpoint
still shares its weights, the export's in-graph tokenizer gives keras_hub's `AlbertTokenizer` ids (read by
keras_hub's own converter from the Hugging Face files), and both signatures equal the Keras model, pruned
tokens included.
"""

import os

import keras_hub
import numpy as np
import tensorflow as tf

from ltp_tf import TokenPruningClassifier, TokenPruningConfig, load_backbone
from ltp_tf.checkpoints import load_checkpoint, save_checkpoint
from ltp_tf.data import tokenize
from ltp_tf.serving.exporter import export_checkpoint
from tests.hf_models import write_hf_model

SENTENCES = ["the movie was good , not boring", "a very bad film !", "it 's the best story of the year and fun",
             "awful", "this acting is great and the story is not"]
MAX_SEQ_LENGTH = 16


def test_albert_exports_with_its_tokenizer_shared_weights_and_per_layer_thresholds(tmp_path):
    model_dir = write_hf_model(str(tmp_path / "albert"), "albert", activation="gelu_new")
    config = TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="hard", final_token_threshold=0.2)
    model = TokenPruningClassifier(load_backbone(model_dir, config), num_classes=2)
    model({"token_ids": np.zeros((1, 4), "int32")})
    for block, value in zip(model.backbone.token_pruning_blocks, (0.0, 0.006, 0.01)):
        block.frozen_threshold.assign(value)
    checkpoint_path = save_checkpoint(str(tmp_path / "checkpoint"), model, task="sst2", max_seq_length=MAX_SEQ_LENGTH,
                                      vocabulary_file=(os.path.join(model_dir, "spiece.model"),))
    export = export_checkpoint(checkpoint_path, "albert", str(tmp_path / "exports"))

    hub_preprocessor = keras_hub.models.AlbertTextClassifierPreprocessor(
        keras_hub.models.AlbertTokenizer.from_preset(model_dir), sequence_length=MAX_SEQ_LENGTH)
    features = tokenize(hub_preprocessor, (SENTENCES,))
    assert (features.token_ids[:, 0] == 2).all()  # `[CLS]`
    loaded = tf.saved_model.load(export.path)
    by_text = loaded.signatures["serving_default"](sentence=tf.constant(SENTENCES))
    by_ids = loaded.signatures["token_ids"](**{k: tf.constant(v.astype(np.int32))
                                               for k, v in features.as_dict().items()})
    keras_model = load_checkpoint(checkpoint_path).model
    first, *others = keras_model.backbone.token_pruning_blocks
    assert all(block.self_attention_layer is first.self_attention_layer for block in others)
    keras_out = keras_model.backbone(features.as_dict())
    keras_logits = np.asarray(keras_model(features.as_dict()))
    np.testing.assert_array_equal(by_text["kept_tokens"].numpy(), by_ids["kept_tokens"].numpy())
    np.testing.assert_allclose(by_text["logits"].numpy(), keras_logits, atol=1e-5)
    np.testing.assert_allclose(by_ids["logits"].numpy(), keras_logits, atol=1e-5)
    kept = by_ids["kept_tokens"].numpy()
    np.testing.assert_array_equal(kept, np.rint(np.asarray(keras_out["kept_tokens"])).astype(np.int32))
    assert (kept[:, 2] < kept[:, 1]).any() and (kept[:, 1] < features.lengths).any()  # each layer prunes by its own
