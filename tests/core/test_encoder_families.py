"""Every encoder family from a tiny Hugging Face folder: equal to keras_hub's backbone, dropping equals masking."""

import json
import os

import keras
import keras_hub
import numpy as np
import pytest
from safetensors.numpy import load_file

from ltp_tf import TokenPruningConfig, load_backbone
from ltp_tf.layers.activations import get_activation
from tests.hf_models import write_hf_model

FAMILIES = ["bert", "roberta", "xlm-roberta", "distilbert"]
SEQ = 12


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {family: write_hf_model(str(tmp_path_factory.mktemp(family)), family) for family in FAMILIES}


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _inputs(vocab_size=40, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([SEQ, 9, 5])
    mask = np.arange(SEQ)[None, :] < lengths[:, None]
    ids = np.where(mask, rng.integers(4, vocab_size, size=(3, SEQ)), 1).astype("int32")
    ids[:, 0] = 0
    segments = np.zeros_like(ids)
    segments[0, 7:] = 1
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}


def _tensors(folder):
    return load_file(os.path.join(folder, "model.safetensors"))


@pytest.mark.parametrize("family", FAMILIES)
def test_unpruned_output_equals_keras_hub(folders, family):
    folder = folders[family]
    ours = load_backbone(folder)
    assert ours.family == family and ours.activation == "gelu_exact"
    hub = keras_hub.models.Backbone.from_preset(folder)
    for layer in hub.transformer_layers:  # keras_hub's BERT ships tanh GELU; the checkpoint says exact
        layer._feedforward_intermediate_dense.activation = get_activation("gelu_exact")
    tensors = _tensors(folder)
    if family == "roberta":  # keras_hub's RoBERTa converter drops the token-type row; we fold it in
        positions = hub.embeddings.position_embedding.position_embeddings
        positions.assign(_np(positions) + tensors["roberta.embeddings.token_type_embeddings.weight"][0])
    inputs = _inputs()
    hub_inputs = inputs if family == "bert" else {k: inputs[k] for k in ("token_ids", "padding_mask")}
    expected = hub(hub_inputs)
    out = ours(inputs)  # segment_ids are ignored by families without segment embeddings
    mask = inputs["padding_mask"]
    sequence = _np(out["sequence_output"])
    hub_sequence = _np(expected["sequence_output"] if isinstance(expected, dict) else expected)
    assert np.abs(sequence - hub_sequence)[mask].max() <= 1e-5
    # Pooling: BERT's pooler (through keras_hub), RoBERTa's classifier.dense + tanh, DistilBERT's pre_classifier + ReLU.
    if family == "bert":
        reference = _np(expected["pooled_output"])
    else:
        key = "pre_classifier" if family == "distilbert" else "classifier.dense"
        activation = np.tanh if family != "distilbert" else (lambda x: np.maximum(x, 0.0))
        reference = activation(sequence[:, 0] @ tensors[f"{key}.weight"].T + tensors[f"{key}.bias"])
    np.testing.assert_allclose(_np(out["pooled_output"]), reference, atol=1e-5)


def test_activation_and_epsilon_come_from_config(tmp_path):
    folder = write_hf_model(str(tmp_path), "distilbert", activation="relu")
    ours = load_backbone(folder)
    assert ours.activation == "relu" and ours.layer_norm_epsilon == 1e-12
    hub = keras_hub.models.Backbone.from_preset(folder)
    for layer in hub.transformer_layers:
        layer._feedforward_intermediate_dense.activation = keras.activations.relu
    inputs = _inputs()
    mask = inputs["padding_mask"]
    hub_out = _np(hub({k: inputs[k] for k in ("token_ids", "padding_mask")}))
    assert np.abs(_np(ours(inputs)["sequence_output"]) - hub_out)[mask].max() <= 1e-5
    assert load_backbone(write_hf_model(str(tmp_path / "r"), "roberta")).layer_norm_epsilon == 1e-5


@pytest.mark.parametrize("family", ["roberta", "distilbert", "xlm-roberta"])
def test_hard_token_dropping_equals_masking_and_keeps_first_token(folders, family):
    config = TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="hard", final_token_threshold=0.2)
    backbone = load_backbone(folders[family], config)
    inputs = _inputs(seed=1)
    masked = backbone(inputs)
    backbone.set_drop_tokens(True)
    dropped = backbone(inputs)
    np.testing.assert_array_equal(_np(dropped["kept_tokens"]), _np(masked["kept_tokens"]))
    assert _np(masked["kept_tokens"])[:, -1].sum() < inputs["padding_mask"].sum()  # something was pruned
    assert _np(dropped["sequence_output"]).shape[1] < SEQ
    np.testing.assert_allclose(_np(dropped["pooled_output"]), _np(masked["pooled_output"]), atol=1e-5)
    live, positions = _np(dropped["token_mask"]), _np(dropped["kept_positions"])
    assert live[:, 0].all() and (positions[:, 0] == 0).all()  # `<s>` / `[CLS]` survives every layer
    for b in range(len(live)):
        np.testing.assert_allclose(_np(dropped["sequence_output"])[b][live[b]],
                                   _np(masked["sequence_output"])[b][positions[b][live[b]]], atol=1e-5)


def test_family_survives_keras_save(folders, tmp_path):
    backbone = load_backbone(folders["roberta"], TokenPruningConfig(prune_mode="absolute_threshold",
                                                                    final_token_threshold=0.05))
    path = os.path.join(tmp_path, "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert restored.family == "roberta" and restored.segment_embedding is None
    inputs = _inputs()
    np.testing.assert_allclose(_np(restored(inputs)["pooled_output"]), _np(backbone(inputs)["pooled_output"]),
                               atol=1e-6)


@pytest.mark.parametrize("model_type", ["gpt2", "deberta-v2", "albert"])
def test_unsupported_family_is_a_clear_error(tmp_path, model_type):
    with open(os.path.join(tmp_path, "config.json"), "w", encoding="utf-8") as f:
        json.dump({"model_type": model_type}, f)
    with pytest.raises(ValueError, match=rf"model_type='{model_type}'.*'bert'.*'distilbert'.*'roberta'"):
        load_backbone(str(tmp_path))
