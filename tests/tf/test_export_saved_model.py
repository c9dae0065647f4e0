"""Export of the real MiniLM (its first 2 layers) for SST-2: verification in a fresh process, signatures,
ONNX parity, edge inputs. One export (with ONNX and verification) is shared by the module."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from ltp_tf.checkpoints import load_checkpoint
from ltp_tf.data import get_task, read_split, tokenize
from ltp_tf.serving.exporter import EXPORT_INFO_FILE, EXTRA_DIR, ONNX_FILE, VERIFICATION_FILE, export_checkpoint
from ltp_tf.serving.onnx_export import OnnxPredictor
from ltp_tf.serving.saved_model import load_export
from ltp_tf.serving.text import checkpoint_preprocessor
from ltp_tf.serving.verify import compare, keras_reference
from tests.tf.serving_helpers import minilm_checkpoint

SAMPLE = 64


@pytest.fixture(scope="module")
def exported(tmp_path_factory, glue_dir):
    root = tmp_path_factory.mktemp("export")
    checkpoint_path = minilm_checkpoint(str(root / "checkpoint"), task="sst2", num_layers=2)
    result = export_checkpoint(checkpoint_path, "sst2", str(root / "saved_models"), onnx=True, verify=True,
                               verify_max_examples=SAMPLE, data_dir=glue_dir)
    checkpoint = load_checkpoint(checkpoint_path)
    return {"result": result, "checkpoint": checkpoint, "loaded": load_export(result.path),
            "preprocessor": checkpoint_preprocessor(checkpoint)}


def _reference(exported, texts):
    """The Keras model on the strings, tokenized eagerly by keras_hub with the checkpoint's settings."""
    features = tokenize(exported["preprocessor"], (list(texts),)).as_dict()
    return keras_reference(exported["checkpoint"].model, features), features


def _serve(exported, texts):
    outputs = exported["loaded"].signatures["serving_default"](sentence=tf.constant(list(texts)))
    return {key: value.numpy() for key, value in outputs.items()}


def test_verified_in_a_fresh_process(exported):
    report = exported["result"].verification
    assert report["passed"] and report["examples"] == SAMPLE
    assert set(report["engines"]) == {"saved_model/serving_default", "saved_model/token_ids", "onnxruntime"}
    for result in report["engines"].values():
        assert result["max_abs_logit_diff"] <= 1e-5 and result["label_mismatches"] == 0 and result["kept_tokens_equal"]
    assert report["saved_model_cli"]["signatures_listed"] == {"serving_default": True, "token_ids": True}
    with open(os.path.join(exported["result"].path, EXTRA_DIR, VERIFICATION_FILE)) as f:
        assert json.load(f)["passed"]


def test_version_folder_and_models_config(exported):
    result = exported["result"]
    model_dir = os.path.dirname(result.path)
    assert result.version == 1 and os.listdir(model_dir) == ["1"]  # no staging folder left
    assert sorted(os.listdir(os.path.join(result.path, EXTRA_DIR))) == sorted(
        [EXPORT_INFO_FILE, ONNX_FILE, VERIFICATION_FILE])
    with open(os.path.join(result.path, EXTRA_DIR, EXPORT_INFO_FILE)) as f:
        info = json.load(f)
    assert info["task"] == "sst2" and info["max_seq_length"] == 128 and info["labels"] == ["0", "1"]
    with open(result.models_config) as f:
        assert f.read() == ('model_config_list {\n  config {\n    name: "sst2"\n    base_path: "/models/sst2"\n'
                            '    model_platform: "tensorflow"\n  }\n}\n')


def test_signatures_shapes_and_dtypes(exported):
    signatures = exported["loaded"].signatures
    assert set(signatures) == {"serving_default", "token_ids"}
    text_inputs = signatures["serving_default"].structured_input_signature[1]
    assert text_inputs == {"sentence": tf.TensorSpec([None], tf.string, name="sentence")}
    id_inputs = signatures["token_ids"].structured_input_signature[1]
    assert id_inputs == {name: tf.TensorSpec([None, None], tf.int32, name=name)
                         for name in ("token_ids", "segment_ids", "padding_mask")}
    expected = {"logits": ([None, 2], tf.float32), "probabilities": ([None, 2], tf.float32),
                "label": ([None], tf.int32), "kept_tokens": ([None, 2], tf.int32)}
    for name in ("serving_default", "token_ids"):
        outputs = signatures[name].structured_outputs
        assert {key: (spec.shape.as_list(), spec.dtype) for key, spec in outputs.items()} == expected


def test_onnx_matches_keras_on_real_dev_data(exported, glue_dir):
    texts = read_split(get_task("sst2"), "dev", glue_dir).take(SAMPLE).texts[0]
    reference, features = _reference(exported, texts)
    predictor = OnnxPredictor(exported["result"].onnx_path)
    outputs = predictor({**features, "padding_mask": features["padding_mask"].astype(np.int32)})
    assert compare(reference, outputs, regression=False)["passed"]
    np.testing.assert_allclose(outputs["probabilities"].sum(-1), 1.0, atol=1e-6)


def test_edge_inputs(exported):
    long_text = "a remarkably long review that never ends " * 400
    texts = ["", "   \t\n ", "naïve café — 東京 😀 ünïcödé", long_text, "Great movie!"]
    outputs = _serve(exported, texts)
    reference, features = _reference(exported, texts)
    assert compare(reference, outputs, regression=False)["passed"]
    kept = outputs["kept_tokens"]
    assert kept[0, 0] == kept[1, 0] == 2  # empty and whitespace-only: just [CLS] [SEP]
    assert kept[3, 0] == 128  # truncated to max_seq_length
    assert features["padding_mask"].sum(1)[3] == 128
    np.testing.assert_allclose(outputs["probabilities"].sum(-1), 1.0, atol=1e-6)
    assert outputs["label"].tolist() == outputs["logits"].argmax(-1).tolist()


def test_batch_of_one_and_of_hundreds(exported, glue_dir):
    dev = list(read_split(get_task("sst2"), "dev", glue_dir).texts[0])
    one = _serve(exported, dev[:1])
    assert one["logits"].shape == (1, 2) and one["kept_tokens"].shape == (1, 2)
    batch = (dev * 2)[:300]
    outputs = _serve(exported, batch)
    assert outputs["logits"].shape == (300, 2)
    reference, _ = _reference(exported, batch)
    assert compare(reference, outputs, regression=False)["passed"]
    np.testing.assert_allclose(outputs["logits"][0], one["logits"][0], atol=1e-5)


def test_token_id_signature_refuses_too_long_inputs(exported):
    function = exported["loaded"].signatures["token_ids"]
    ones = tf.ones((1, 130), tf.int32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="longer than max_seq_length=128"):
        function(token_ids=ones, segment_ids=tf.zeros_like(ones), padding_mask=ones)


@pytest.mark.parametrize("change, message", [
    ({"token_ids": [[101, -5, 102]]}, "`token_ids` must be in [0, 30522). Received: values from -5 to 102"),
    ({"token_ids": [[101, 30522, 102]]}, "`token_ids` must be in [0, 30522). Received: values from 101 to 30522"),
    ({"segment_ids": [[0, 0, 3]]}, "`segment_ids` must be in [0, 2). Received: values from 0 to 3"),
    ({"padding_mask": [[0, 1, 1]]}, "`padding_mask` must be 1 at position 0 ([CLS]) of every row"),
    ({"padding_mask": [[1, 1, 1], [1, 1, 0]]}, "`padding_mask` must have the shape of `token_ids` (1, 3). "
                                               "Received: shape=(2, 3)"),
    ({name: np.zeros((0, 3)) for name in ("token_ids", "segment_ids", "padding_mask")},
     "`token_ids` must have shape (batch, sequence) with batch >= 1. Received: shape=(0, 3)"),
])
def test_onnx_predictor_refuses_what_the_signature_refuses(exported, change, message):
    """ONNX has no assertion op: the predictor checks inputs against the limits stored in the file."""
    predictor = OnnxPredictor(exported["result"].onnx_path)
    assert predictor.limits == {"vocabulary_size": 30522, "num_segments": 2, "max_seq_length": 128}
    good = {"token_ids": [[101, 2204, 102]], "segment_ids": [[0, 0, 0]], "padding_mask": [[1, 1, 1]]}
    with pytest.raises(ValueError) as error:
        predictor({**good, **change})
    assert message in str(error.value)
    assert predictor(good)["logits"].shape == (1, 2)
