"""Exports with XLA buckets (`xla_buckets=True`, `ltp_tf.serving.xla_buckets`): both signatures give the hard-masked
model's outputs in every length bucket, at batch 1 and in batches, also when an input keeps more tokens than its
bucket's capacities (the fallback), after a reload in a fresh process; the dense twin gets the same programs.

The tiny model prunes by top-k at fixed rates (layer 1 keeps 70%, layer 2 40% of each sentence), so what each
layer keeps depends only on the input's length and the fallback can be provoked on purpose. Speed is not tested.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from ltp_tf import TokenPruningConfig
from ltp_tf.checkpoints import load_checkpoint
from ltp_tf.data import tokenize
from ltp_tf.serving.exporter import EXPORT_INFO_FILE, EXTRA_DIR, export_checkpoint
from ltp_tf.serving.saved_model import load_export
from ltp_tf.serving.text import checkpoint_preprocessor
from ltp_tf.serving.verify import keras_reference
from ltp_tf.serving.xla_buckets import bucketed_forward, fit_xla_buckets
from tests.tf.serving_helpers import tiny_checkpoint

MAX_SEQ_LENGTH = 24  # buckets 1, 2, 4, 8, 16, 24
TOPK = TokenPruningConfig(prune_mode="topk", token_keep_rates=(1.0, 0.7, 0.4))
# Batches of real lengths: every bucket, at batch 1 and in batches mixing buckets.
LENGTHS = ([1], [2], [3], [7], [12], [16], [20], [24], [3, 12, 7], [24, 17, 2, 9], [5, 5])


def _features(lengths, extra_padding=2, seed=0):
    rng = np.random.default_rng(seed)
    seq_len = max(lengths) + extra_padding
    mask = (np.arange(seq_len)[None, :] < np.asarray(lengths)[:, None]).astype("int32")
    return {"token_ids": (rng.integers(5, 13, size=mask.shape) * mask).astype("int32"),
            "segment_ids": np.zeros_like(mask), "padding_mask": mask}


def _call(signature, features):
    outputs = signature(**{key: tf.constant(value) for key, value in features.items()})
    return {key: value.numpy() for key, value in outputs.items()}


def _assert_equal(outputs, reference):
    np.testing.assert_allclose(outputs["logits"], reference["logits"], atol=1e-5)
    np.testing.assert_array_equal(outputs["kept_tokens"], reference["kept_tokens"])


def _info(path):
    with open(os.path.join(path, EXTRA_DIR, EXPORT_INFO_FILE)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, glue_dir):
    """The pruned model exported with XLA buckets fitted on SST-2 training sentences, verified in a fresh process."""
    root = tmp_path_factory.mktemp("xla")
    checkpoint_path = tiny_checkpoint(str(root / "checkpoint"), max_seq_length=MAX_SEQ_LENGTH, num_layers=3,
                                      pruning=TOPK)
    result = export_checkpoint(checkpoint_path, "sst2", str(root / "saved_models"), xla_buckets=True,
                               xla_fit_examples=200, verify=True, verify_max_examples=32, data_dir=glue_dir)
    checkpoint = load_checkpoint(checkpoint_path)
    return {"result": result, "checkpoint": checkpoint, "loaded": load_export(result.path)}


def test_export_records_buckets_and_holds_xla_programs(exported):
    path = exported["result"].path
    buckets = _info(path)["xla_buckets"]
    assert buckets["length_bucket"] == 8 and buckets["compact_layers"] == [1, 2] and buckets["fit_examples"] == 200
    assert sorted(map(int, buckets["capacities"])) == [1, 2, 4, 8, 16, 24]
    for length, capacities in buckets["capacities"].items():
        assert len(capacities) == 2 and int(length) >= capacities[0] >= capacities[1] >= 1
    assert buckets["capacities"]["24"] != [24, 24]  # fitted: truncated SST-2 sentences fill the last bucket
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        assert b"_XlaMustCompile" in f.read()


def test_verified_against_keras_after_a_reload_in_a_fresh_process(exported):
    report = exported["result"].verification
    assert report["passed"], report
    assert {"saved_model/serving_default", "saved_model/token_ids"} <= set(report["engines"])


def test_token_ids_equal_hard_masking_in_every_bucket(exported):
    model, signature = exported["checkpoint"].model, exported["loaded"].signatures["token_ids"]
    for seed, lengths in enumerate(LENGTHS):
        features = _features(lengths, seed=seed)
        _assert_equal(_call(signature, features), keras_reference(model, features))


def test_text_signature_equals_hard_masking(exported):
    checkpoint = exported["checkpoint"]
    texts = ["a good movie .", "", "the movie is bad . " * 10, "the", "a bad movie is a bad movie"]
    features = tokenize(checkpoint_preprocessor(checkpoint), (texts,)).as_dict()
    outputs = exported["loaded"].signatures["serving_default"](sentence=tf.constant(texts))
    _assert_equal({key: value.numpy() for key, value in outputs.items()}, keras_reference(checkpoint.model, features))
    single = exported["loaded"].signatures["serving_default"](sentence=tf.constant(texts[:1]))
    np.testing.assert_allclose(single["logits"].numpy(), outputs["logits"].numpy()[:1], atol=1e-5)


def test_overflowing_inputs_fall_back_to_the_dynamic_path(tmp_path):
    """Capacities fitted on 9-token sentences only; longer ones of the same bucket keep more (top-k at fixed
    rates), so their program overflows and the batch is recomputed without the cut."""
    checkpoint_path = tiny_checkpoint(str(tmp_path / "checkpoint"), max_seq_length=MAX_SEQ_LENGTH, num_layers=3,
                                      pruning=TOPK)
    result = export_checkpoint(checkpoint_path, "short", str(tmp_path / "saved_models"), text_signature=False,
                               xla_buckets=True, xla_sample=_features([9] * 4, extra_padding=0), xla_long_windows=0)
    capacities = _info(result.path)["xla_buckets"]["capacities"]
    assert capacities["16"] == [8, 4]  # 9 tokens keep 6, then 4: bucketed 8 and 4
    assert capacities["24"] == [24, 24]  # no sample in this bucket and no long windows: nothing is cut
    model = load_checkpoint(checkpoint_path).model
    signature = tf.saved_model.load(result.path).signatures["token_ids"]
    for lengths in ([16], [12], [10], [12, 10, 9], [16, 20]):
        features = _features(lengths, seed=len(lengths))
        reference = keras_reference(model, features)
        if lengths[0] in (16, 12):  # the premise: these keep more than bucket 16's capacities
            assert reference["kept_tokens"][0, 1] > 8 or reference["kept_tokens"][0, 2] > 4
        _assert_equal(_call(signature, features), reference)


def test_programs_report_overflow(tmp_path):
    """The flag the fallback acts on: set exactly when a row keeps more than its bucket's capacities."""
    model = load_checkpoint(tiny_checkpoint(str(tmp_path / "checkpoint"), max_seq_length=MAX_SEQ_LENGTH,
                                            num_layers=3, pruning=TOPK)).model
    buckets = fit_xla_buckets(model, MAX_SEQ_LENGTH, _features([9], extra_padding=0), long_windows=0)
    forward = bucketed_forward(model, buckets)
    for lengths, overflow in (([16], True), ([12], True), ([10], False), ([9, 10], False), ([10, 12], True),
                              ([20], False)):
        features = _features(lengths, extra_padding=0)
        logits, kept, flag = forward(*(tf.constant(features[name]) for name in ("token_ids", "segment_ids",
                                                                                 "padding_mask")),
                                     tf.constant(max(lengths)))
        assert bool(flag) == overflow, lengths
        np.testing.assert_array_equal(kept.numpy(), keras_reference(model, features)["kept_tokens"])


def test_buckets_longer_than_the_sample_are_fitted_on_windows_of_its_text(tmp_path):
    """9-token sentences only: buckets 16 and 24 are fitted on windows of 16 and 24 tokens of their text
    (top-k keeps 70% then 40% of a sentence: 16 -> 11, 6; 24 -> 17, 10; bucketed), so long inputs are cut
    too and still give the hard-masked outputs; a window's tokens are the sample's."""
    checkpoint_path = tiny_checkpoint(str(tmp_path / "checkpoint"), max_seq_length=MAX_SEQ_LENGTH, num_layers=3,
                                      pruning=TOPK)
    sample = _features([9] * 3, extra_padding=0)
    result = export_checkpoint(checkpoint_path, "windows", str(tmp_path / "saved_models"), text_signature=False,
                               xla_buckets=True, xla_sample=sample, xla_long_windows=2, xla_long_margin=0)
    buckets = _info(result.path)["xla_buckets"]
    assert buckets["long_windows"] == 2 and buckets["fit_examples"] == 3 and buckets["long_margin"] == 0
    assert buckets["capacities"]["8"] == [8, 8] and buckets["capacities"]["16"] == [16, 8]
    assert buckets["capacities"]["24"] == [24, 16]
    model = load_checkpoint(checkpoint_path).model
    signature = tf.saved_model.load(result.path).signatures["token_ids"]
    for seed, lengths in enumerate(([24], [20, 24, 3], [16], [13, 9])):
        features = _features(lengths, seed=seed)
        _assert_equal(_call(signature, features), keras_reference(model, features))


def test_long_margin_raises_only_the_buckets_fitted_on_windows(tmp_path):
    """Windows of 16 tokens keep 11, then 6 (bucketed 16, 8); with a margin of 0.5 they count as 17 (at most
    16) and 9 -> 16; windows of 24 keep 17 and 10: 26 (at most 24) and 15 -> 16. Buckets fitted on the 9-token
    sample rows keep their maxima."""
    model = load_checkpoint(tiny_checkpoint(str(tmp_path / "checkpoint"), max_seq_length=MAX_SEQ_LENGTH,
                                            num_layers=3, pruning=TOPK)).model
    sample = _features([9] * 3, extra_padding=0)
    plain = fit_xla_buckets(model, MAX_SEQ_LENGTH, sample, long_windows=2, long_margin=0)
    raised = fit_xla_buckets(model, MAX_SEQ_LENGTH, sample, long_windows=2, long_margin=0.5)
    assert plain.capacities[16] == (16, 8) and plain.capacities[24] == (24, 16)
    assert raised.capacities[16] == (16, 16) and raised.capacities[24] == (24, 16)
    assert raised.long_margin == 0.5 and raised.to_json()["long_margin"] == 0.5
    for length in (1, 2, 4, 8):  # not fitted on windows
        assert raised.capacities[length] == plain.capacities[length]
    without_windows = fit_xla_buckets(model, MAX_SEQ_LENGTH, sample, long_windows=0, long_margin=0.5)
    assert without_windows.long_margin == 0 and without_windows.capacities[24] == (24, 24)


def test_capacities_never_shrink_as_buckets_grow():
    """A batch of bucket L also holds shorter rows, which may keep more than bucket L's samples did."""
    from ltp_tf.serving.xla_buckets import _never_shrinking

    fitted = {4: None, 8: (8, 4), 16: (8, 2), 24: None, 32: (16, 2)}
    assert _never_shrinking(fitted, 2) == {4: (4, 4), 8: (8, 4), 16: (8, 4), 24: (24, 24), 32: (16, 4)}


def test_dense_twin_gets_the_same_programs(tmp_path):
    checkpoint_path = tiny_checkpoint(str(tmp_path / "checkpoint"), max_seq_length=MAX_SEQ_LENGTH, num_layers=3,
                                      pruning=TokenPruningConfig())
    result = export_checkpoint(checkpoint_path, "dense", str(tmp_path / "saved_models"), text_signature=False,
                               xla_buckets=True)  # nothing to fit: no training data is read
    buckets = _info(result.path)["xla_buckets"]
    assert buckets["compact_layers"] == [] and buckets["fit_examples"] == 0
    assert set(map(tuple, buckets["capacities"].values())) == {()}
    model = load_checkpoint(checkpoint_path).model
    signature = tf.saved_model.load(result.path).signatures["token_ids"]
    for seed, lengths in enumerate(([1], [7], [24], [3, 12, 7])):
        features = _features(lengths, seed=seed)
        reference = keras_reference(model, features)
        np.testing.assert_array_equal(reference["kept_tokens"], np.repeat(np.asarray(lengths)[:, None], 3, axis=1))
        _assert_equal(_call(signature, features), reference)


def test_length_gate_with_xla_buckets(tmp_path):
    """Buckets shorter than the gate run the mask-only program; outputs are the same on both sides."""
    checkpoint_path = tiny_checkpoint(str(tmp_path / "checkpoint"), max_seq_length=MAX_SEQ_LENGTH, num_layers=3,
                                      pruning=TOPK)
    result = export_checkpoint(checkpoint_path, "gated", str(tmp_path / "saved_models"), text_signature=False,
                               compact_min_length=8, xla_buckets=True, xla_sample=_features([5, 12, 20]))
    assert _info(result.path)["compact_min_length"] == 8
    model = load_checkpoint(checkpoint_path).model
    signature = tf.saved_model.load(result.path).signatures["token_ids"]
    for seed, lengths in enumerate(([3], [4, 2], [7], [12, 3], [24])):
        features = _features(lengths, seed=seed)
        _assert_equal(_call(signature, features), keras_reference(model, features))


def test_xla_fit_examples_and_long_windows_must_be_non_negative(tmp_path):
    checkpoint_path = tiny_checkpoint(str(tmp_path / "checkpoint"))
    for name in ("xla_fit_examples", "xla_long_windows", "xla_long_margin"):
        with pytest.raises(ValueError, match=f"`{name}` must be"):
            export_checkpoint(checkpoint_path, "bad", str(tmp_path / "saved_models"), xla_buckets=True,
                              **{name: -1})
    assert not os.path.exists(tmp_path / "saved_models")
