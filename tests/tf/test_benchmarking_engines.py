"""`ltp_tf.benchmarking.engines`: the mask-only schedules the length gate is calibrated against give the
hard-masked model's outputs (the ONNX one is a valid `OnnxPredictor` model: input limits in its metadata), and
so does the `saved_model_xla` engine (exports with XLA buckets through the CLI)."""

import numpy as np

from ltp_tf.benchmarking.engines import EngineSettings, masked_predictor, predictors, prepare_exports
from ltp_tf.checkpoints import load_checkpoint
from ltp_tf.data import get_task
from ltp_tf.models.surgery import without_token_pruning
from ltp_tf.serving.verify import keras_reference
from tests.tf.serving_helpers import tiny_checkpoint


def test_masked_schedules_equal_hard_masking(tmp_path):
    checkpoint = tiny_checkpoint(str(tmp_path / "sst2"), task="sst2")
    model = load_checkpoint(checkpoint).model
    settings = EngineSettings(length_bucket=4, threads=1)
    rng = np.random.default_rng(0)
    for engine in ("keras_xla", "onnxruntime"):
        predict = masked_predictor(engine, model, get_task("sst2"), settings, str(tmp_path), checkpoint)
        for length in (3, 9, 16):
            ids = rng.integers(5, 13, size=(1, length)).astype("int32")
            features = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
            outputs, reference = predict(features), keras_reference(model, features)
            np.testing.assert_allclose(outputs["logits"], reference["logits"], atol=1e-5)
            np.testing.assert_array_equal(outputs["kept_tokens"], reference["kept_tokens"])
    assert masked_predictor("keras", model, get_task("sst2"), settings, str(tmp_path), checkpoint) is None


def test_saved_model_xla_engine_equals_hard_masking(tmp_path, glue_dir):
    """Both models exported through the CLI with XLA buckets (pruned: fitted on 50 training examples)."""
    checkpoint = load_checkpoint(tiny_checkpoint(str(tmp_path / "sst2"), task="sst2"))
    models = {"dense": without_token_pruning(checkpoint.model), "pruned": checkpoint.model}
    settings = EngineSettings(length_bucket=4)
    _, exports = prepare_exports(["saved_model_xla"], checkpoint, models, str(tmp_path), checkpoint.max_seq_length,
                                 settings, fit_examples=50, data_dir=glue_dir)
    assert set(exports) == {"dense_xla", "pruned_xla"}
    predictors_ = predictors("saved_model_xla", models, exports, settings, None, str(tmp_path))
    rng = np.random.default_rng(1)
    for lengths in ([3], [9], [16], [16, 2, 7]):
        mask = (np.arange(max(lengths))[None, :] < np.asarray(lengths)[:, None]).astype("int32")
        features = {"token_ids": (rng.integers(5, 13, size=mask.shape) * mask).astype("int32"),
                    "segment_ids": np.zeros_like(mask), "padding_mask": mask}
        for name, model in models.items():
            outputs, reference = predictors_[name](features), keras_reference(model, features)
            np.testing.assert_allclose(outputs["logits"], reference["logits"], atol=1e-5)
            np.testing.assert_array_equal(outputs["kept_tokens"], reference["kept_tokens"])
