"""Every encoder family from a tiny Hugging Face folder: equal to keras_hub's backbone, dropping equals masking.

ALBERT also: its blocks share one set of weights but keep a threshold each, through a `.keras` round trip,
the token-dropping runner and weight pruning's kernel list.
"""

import json
import os

import keras
import keras_hub
import numpy as np
import pytest
from safetensors.numpy import load_file

from ltp_tf import TokenPruningClassifier, TokenPruningConfig, load_backbone
from ltp_tf.inference import TokenDroppingRunner
from ltp_tf.layers.activations import get_activation
from ltp_tf.sparsity.kernels import prunable_kernels
from tests.hf_models import ALBERT_LAYERS, write_hf_model

FAMILIES = ["bert", "roberta", "xlm-roberta", "distilbert", "albert"]
SEQ = 12
# Released ALBERTs use tanh GELU (`gelu_new`), which keras_hub's AlbertBackbone hard-codes; the others exact GELU.
ACTIVATIONS = {"albert": ("gelu_new", "gelu_approximate")}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return {family: write_hf_model(str(tmp_path_factory.mktemp(family)), family,
                                   activation=ACTIVATIONS.get(family, ("gelu",))[0]) for family in FAMILIES}


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
    assert ours.family == family and ours.activation == ACTIVATIONS.get(family, (None, "gelu_exact"))[1]
    hub = keras_hub.models.Backbone.from_preset(folder)
    if family != "albert":
        for layer in hub.transformer_layers:  # keras_hub's BERT ships tanh GELU; the checkpoint says exact
            layer._feedforward_intermediate_dense.activation = get_activation("gelu_exact")
    tensors = _tensors(folder)
    if family == "roberta":  # keras_hub's RoBERTa converter drops the token-type row; we fold it in
        positions = hub.embeddings.position_embedding.position_embeddings
        positions.assign(_np(positions) + tensors["roberta.embeddings.token_type_embeddings.weight"][0])
    inputs = _inputs()
    hub_inputs = inputs if family in ("bert", "albert") else {k: inputs[k] for k in ("token_ids", "padding_mask")}
    expected = hub(hub_inputs)
    out = ours(inputs)  # segment_ids are ignored by families without segment embeddings
    mask = inputs["padding_mask"]
    sequence = _np(out["sequence_output"])
    hub_sequence = _np(expected["sequence_output"] if isinstance(expected, dict) else expected)
    assert np.abs(sequence - hub_sequence)[mask].max() <= 1e-5
    # Pooling: BERT's and ALBERT's pooler (through keras_hub), RoBERTa's classifier.dense + tanh, DistilBERT's
    # pre_classifier + ReLU.
    if family in ("bert", "albert"):
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


@pytest.mark.parametrize("family", ["roberta", "distilbert", "xlm-roberta", "albert"])
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


@pytest.mark.parametrize("model_type", ["gpt2", "deberta-v2"])
def test_unsupported_family_is_a_clear_error(tmp_path, model_type):
    with open(os.path.join(tmp_path, "config.json"), "w", encoding="utf-8") as f:
        json.dump({"model_type": model_type}, f)
    with pytest.raises(ValueError, match=rf"model_type='{model_type}'.*'albert'.*'bert'.*'distilbert'.*'roberta'"):
        load_backbone(str(tmp_path))


def test_albert_shares_weights_keeps_thresholds_per_layer_through_save_and_runner(folders, tmp_path):
    config = TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="hard", final_token_threshold=0.2)
    backbone = load_backbone(folders["albert"], config)
    blocks = backbone.token_pruning_blocks
    assert len(blocks) == ALBERT_LAYERS and backbone.embedding_dim == 8
    checkpoint_tensors = len(_tensors(folders["albert"])) - 2  # all but the classifier's kernel and bias
    assert len(backbone.weights) == checkpoint_tensors + 2 * ALBERT_LAYERS  # shared layer once, 2 thresholds a layer
    kernels = [kernel.path for kernel in prunable_kernels(backbone)]
    assert len(kernels) == len(set(kernels)) == 8  # projection, q/k/v/output, 2 feed-forward, pooler: once each
    assert not any("transformer_layer_1" in path or "transformer_layer_2" in path for path in kernels)
    thresholds = np.float32([0.0, 0.0065, 0.0095])  # attention scores here are ~0.005-0.011
    for block, value in zip(blocks, thresholds):
        block.frozen_threshold.assign(value)
    model = TokenPruningClassifier(backbone, num_classes=2)
    inputs = _inputs(seed=1)
    expected = model(inputs)
    kept = _np(backbone(inputs)["kept_tokens"])
    assert (kept[:, 1] < kept[:, 0]).any() and (kept[:, 2] < kept[:, 1]).any()  # each layer's own threshold

    path = os.path.join(tmp_path, "albert.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    first, *others = restored.backbone.token_pruning_blocks
    assert all(block.self_attention_layer is first.self_attention_layer
               and block.feedforward_output_dense is first.feedforward_output_dense for block in others)
    assert len(restored.weights) == len(model.weights)
    np.testing.assert_array_equal([_np(block.frozen_threshold) for block in restored.backbone.token_pruning_blocks],
                                  thresholds)
    np.testing.assert_allclose(_np(restored(inputs)), _np(expected), atol=1e-6)

    runner = TokenDroppingRunner(restored, jit_compile=keras.backend.backend() == "jax")
    result = runner(inputs)
    np.testing.assert_allclose(result["logits"], _np(expected), atol=2e-5)
    np.testing.assert_array_equal(result["kept_tokens"], np.rint(kept).astype("int32"))


def test_albert_layer_groups_other_than_one_shared_layer_are_refused(tmp_path):
    folder = write_hf_model(str(tmp_path), "albert", activation="gelu_new")
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        json.dump({**config, "num_hidden_groups": 3}, f)
    with pytest.raises(ValueError, match="num_hidden_groups=1, inner_group_num=1.*num_hidden_groups=3"):
        load_backbone(folder)
