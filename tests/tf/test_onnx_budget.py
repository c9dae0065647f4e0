"""The ONNX token budget (`OnnxPredictor(max_batch_tokens=...)`, `export_checkpoint(onnx_max_batch_tokens=...)`):
sub-batches under the budget, padding cut, rows back in the caller's order, outputs those of the hard-masked
model under every budget; the export stores the budget and the predictor uses it by default."""

import json
import os

import numpy as np
import pytest

from ltp_tf.checkpoints import load_checkpoint
from ltp_tf.serving.exporter import EXPORT_INFO_FILE, EXTRA_DIR, export_checkpoint
from ltp_tf.serving.onnx_export import OnnxPredictor, row_lengths, sub_batches
from ltp_tf.serving.verify import keras_reference
from tests.tf.serving_helpers import tiny_checkpoint


@pytest.mark.parametrize("budget", [0, 1, 7, 16, 40, 10**6])
def test_sub_batches_cover_every_row_once_within_the_budget(budget):
    lengths = np.random.default_rng(budget).integers(1, 17, size=23)
    chunks = sub_batches(lengths, budget)
    np.testing.assert_array_equal(np.sort(np.concatenate(chunks)), np.arange(len(lengths)))
    if budget == 0 or len(lengths) * lengths.max() <= budget:
        assert len(chunks) == 1 and list(chunks[0]) == list(range(len(lengths)))  # whole batch, caller's order
        return
    for rows in chunks:  # over the budget only as a single row
        assert len(rows) == 1 or len(rows) * lengths[rows].max() <= budget
    assert all(lengths[a].max() <= lengths[b].min() for a, b in zip(chunks, chunks[1:]))  # sorted by length
    for rows, following in zip(chunks, chunks[1:]):  # greedy: the next row would not have fit
        assert (len(rows) + 1) * lengths[following[0]] > budget


def test_row_lengths_end_at_the_last_real_token():
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    np.testing.assert_array_equal(row_lengths(mask), [2, 4, 1])


def test_budget_keeps_outputs_and_row_order(tmp_path):
    checkpoint_path = tiny_checkpoint(str(tmp_path / "sst2"), task="sst2")
    result = export_checkpoint(checkpoint_path, "budget", str(tmp_path / "saved_models"), onnx=True,
                               text_signature=False, onnx_max_batch_tokens=24)
    with open(os.path.join(result.path, EXTRA_DIR, EXPORT_INFO_FILE)) as f:
        assert json.load(f)["onnx_max_batch_tokens"] == 24
    assert OnnxPredictor(result.onnx_path, threads=1).max_batch_tokens == 24  # the export's budget by default
    lengths = np.array([3, 16, 7, 12, 5, 16, 2, 9])
    mask = (np.arange(20)[None, :] < lengths[:, None]).astype("int32")  # 4 padding columns past the longest row
    rng = np.random.default_rng(0)
    features = {"token_ids": rng.integers(5, 13, size=mask.shape).astype("int32") * mask,
                "segment_ids": np.zeros_like(mask), "padding_mask": mask}
    reference = keras_reference(load_checkpoint(checkpoint_path).model,
                                {name: value[:, :16] for name, value in features.items()})
    for budget in (None, 0, 16, 40, 10**6):
        outputs = OnnxPredictor(result.onnx_path, threads=1, max_batch_tokens=budget)(features)
        np.testing.assert_allclose(outputs["logits"], reference["logits"], atol=1e-5)
        np.testing.assert_array_equal(outputs["kept_tokens"], reference["kept_tokens"])


def test_bad_budget_is_refused_before_anything_is_written(tmp_path):
    checkpoint_path = tiny_checkpoint(str(tmp_path / "sst2"), task="sst2")
    with pytest.raises(ValueError, match="onnx_max_batch_tokens` must be an integer >= 0. Received: "):
        export_checkpoint(checkpoint_path, "budget", str(tmp_path / "saved_models"), onnx=True,
                          text_signature=False, onnx_max_batch_tokens=-1)
    assert not os.path.exists(tmp_path / "saved_models")
