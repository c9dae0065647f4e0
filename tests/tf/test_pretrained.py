"""Real MiniLM weights: equivalence with keras_hub (exact GELU), activation kept through save/load."""

import os

import keras
import keras_hub
import numpy as np
import pytest

from ltp_tf import TokenPruningConfig, backbone_from_keras_hub, load_backbone, packaged_minilm_path
from ltp_tf.layers.activations import gelu_exact


@pytest.fixture(scope="module")
def hub_backbone():
    return keras_hub.models.BertBackbone.from_preset(packaged_minilm_path())


def _inputs():
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 30000, size=(3, 24)).astype("int32")
    mask = np.ones((3, 24), bool)
    mask[1, 15:] = False
    mask[2, 7:] = False
    segments = np.zeros_like(ids)
    segments[0, 12:] = 1
    return {"token_ids": np.where(mask, ids, 0), "segment_ids": segments, "padding_mask": mask}


def test_unpruned_output_equals_keras_hub_with_exact_gelu(hub_backbone):
    ours = load_backbone(packaged_minilm_path())
    assert ours.activation == "gelu_exact"  # from config.json's hidden_act
    inputs = _inputs()
    ours_out = ours(inputs)
    approximate = hub_backbone(inputs)  # keras_hub as shipped: tanh GELU
    for layer in hub_backbone.transformer_layers:
        layer._feedforward_intermediate_dense.activation = gelu_exact
    exact = hub_backbone(inputs)
    mask = inputs["padding_mask"]
    ours_seq = np.asarray(ours_out["sequence_output"])
    assert np.abs(ours_seq - np.asarray(exact["sequence_output"]))[mask].max() < 1e-5
    assert np.abs(np.asarray(ours_out["pooled_output"]) - np.asarray(exact["pooled_output"])).max() < 1e-5
    assert np.abs(ours_seq - np.asarray(approximate["sequence_output"]))[mask].max() > 1e-4


def test_activation_and_pruning_config_survive_keras_save(tmp_path, hub_backbone):
    config = TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=0.02)
    backbone = backbone_from_keras_hub(hub_backbone, config, activation="gelu_exact")
    path = os.path.join(tmp_path, "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert restored.activation == "gelu_exact" and restored.pruning_config == config
    inputs = _inputs()
    np.testing.assert_allclose(np.asarray(restored(inputs)["pooled_output"]),
                               np.asarray(backbone(inputs)["pooled_output"]), atol=1e-6)


def test_pruned_real_model_prunes_and_keeps_cls():
    backbone = load_backbone(packaged_minilm_path(), TokenPruningConfig(prune_mode="absolute_threshold",
                                                                        final_token_threshold=0.01),
                             drop_tokens=True)
    out = backbone(_inputs())
    kept = np.asarray(out["kept_tokens"])
    assert np.all(kept[:, -1] < kept[:, 0]) and np.all(kept >= 1)
    np.testing.assert_array_equal(np.asarray(out["kept_positions"])[:, 0], 0)


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="Model folder not found"):
        load_backbone(os.path.join(tmp_path, "nope", "model"))
    with pytest.raises(ValueError, match="`hidden_act` must be one of"):
        (tmp_path / "config.json").write_text('{"hidden_act": "mish", "model_type": "bert"}')
        load_backbone(str(tmp_path))
