"""The pair-task text signature, and every signature refusing inputs it cannot serve without crashing.

One export (a tiny random STS-B pair model) is shared by the module. The bad requests run in a child
process (`_PROBE`) that loads the export with `load_export` only, so a crash (before the fix, mismatched
pair batches aborted TensorFlow with `std::length_error`) fails the tests instead of killing pytest, and
the load proves `load_export` registers the TensorFlow Text ops by itself. (The ONNX predictor's checks
are tested on the ONNX export of test_export_saved_model.py.)
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ltp_tf.checkpoints import load_checkpoint
from ltp_tf.data import tokenize
from ltp_tf.serving.exporter import export_checkpoint
from ltp_tf.serving.saved_model import load_export
from ltp_tf.serving.text import checkpoint_preprocessor
from ltp_tf.serving.verify import compare, keras_reference
from tests.tf.serving_helpers import TINY_VOCABULARY, tiny_checkpoint

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCABULARY = len(TINY_VOCABULARY)  # 13 ids; max_seq_length 16, 2 segments

# The child process: loads the export, sends each request, prints {case: "ok" | error type + message}.
# An input given as {"empty": shape} is an empty tensor of that shape; {"latin-1": texts} are the texts'
# Latin-1 bytes (not valid UTF-8).
_PROBE = r"""
import json, sys
import tensorflow as tf

loaded_text_ops = "tensorflow_text" in sys.modules
from ltp_tf.serving.saved_model import load_export

signatures = load_export(sys.argv[1]).signatures
requests = json.loads(sys.argv[2])
results = {"tensorflow_text imported before load_export": loaded_text_ops}


def tensor(value, dtype):
    if isinstance(value, dict) and "empty" in value:
        return tf.zeros(value["empty"], dtype)
    if isinstance(value, dict):
        return tf.constant([text.encode("latin-1") for text in value["latin-1"]])
    return tf.constant(value, dtype)


for case, (signature, inputs) in requests.items():
    dtype = tf.string if signature == "serving_default" else tf.int32
    try:
        outputs = signatures[signature](**{k: tensor(v, dtype) for k, v in inputs.items()})
        results[case] = "ok " + json.dumps(outputs["logits"].numpy().shape)
    except Exception as error:  # the type and message are what the tests check
        results[case] = f"{type(error).__name__}: {getattr(error, 'message', str(error))}"
print("RESULTS " + json.dumps(results))
"""


def _ids(rows):
    """`token_ids`, `segment_ids`, `padding_mask` for rows of ids (padded with 0 to the longest)."""
    width = max(len(row) for row in rows)
    ids = [list(row) + [0] * (width - len(row)) for row in rows]
    return {"token_ids": ids, "segment_ids": [[0] * width for _ in rows],
            "padding_mask": [[1] * len(row) + [0] * (width - len(row)) for row in rows]}


GOOD = _ids([[2, 5, 7, 3], [2, 6, 3]])
REQUESTS = {
    # serving_default (pair task): mismatched batches, several times (the crash was intermittent).
    **{f"pair 2 vs 1 #{i}": ("serving_default", {"sentence1": ["the movie", "a movie"], "sentence2": ["good"]})
       for i in range(4)},
    "pair 1 vs 3": ("serving_default", {"sentence1": ["the movie"], "sentence2": ["good", "bad", "a"]}),
    "pair 0 vs 2": ("serving_default", {"sentence1": [], "sentence2": ["good", "bad"]}),
    "pair empty batch": ("serving_default", {"sentence1": [], "sentence2": []}),
    "pair good": ("serving_default", {"sentence1": ["the movie", "a movie"], "sentence2": ["good", "bad ."]}),
    "pair not utf-8": ("serving_default", {"sentence1": {"latin-1": ["caf\u00e9 \u00ff\u00fe"]},
                                           "sentence2": {"latin-1": ["\u00c3"]}}),
    # token_ids
    "ids good": ("token_ids", GOOD),
    "ids negative": ("token_ids", {**GOOD, "token_ids": [[2, -1, 7, 3], [2, 6, 3, 0]]}),
    "ids out of vocabulary": ("token_ids", {**GOOD, "token_ids": [[2, 5, VOCABULARY, 3], [2, 6, 3, 0]]}),
    "ids segment 2": ("token_ids", {**GOOD, "segment_ids": [[0, 0, 2, 0], [0, 0, 0, 0]]}),
    "ids negative segment": ("token_ids", {**GOOD, "segment_ids": [[0, 0, -1, 0], [0, 0, 0, 0]]}),
    "ids mask 2": ("token_ids", {**GOOD, "padding_mask": [[1, 1, 2, 1], [1, 1, 1, 0]]}),
    "ids left padding": ("token_ids", {**GOOD, "padding_mask": [[1, 1, 1, 1], [0, 1, 1, 1]]}),
    "ids mask batch 1 vs 2": ("token_ids", {**GOOD, "padding_mask": [[1, 1, 1, 1]]}),
    "ids segments batch 1 vs 2": ("token_ids", {**GOOD, "segment_ids": [[0, 0, 0, 0]]}),
    "ids mask shorter": ("token_ids", {**GOOD, "padding_mask": [[1, 1, 1], [1, 1, 1]]}),
    "ids empty batch": ("token_ids", {name: {"empty": [0, 4]} for name in GOOD}),
    "ids too long": ("token_ids", _ids([[2] + [5] * 16 + [3]])),
    # Ranks: the loaded signature does not check them against its TensorSpecs.
    "pair rank 2": ("serving_default", {"sentence1": [["the movie"]], "sentence2": [["good"]]}),
    "pair rank 0": ("serving_default", {"sentence1": "the movie", "sentence2": "good"}),
    "ids rank 1": ("token_ids", {name: value[0] for name, value in GOOD.items()}),
    "ids rank 3": ("token_ids", {name: [value] for name, value in GOOD.items()}),
}


@pytest.fixture(scope="module")
def checkpoint_path(tmp_path_factory):
    return tiny_checkpoint(str(tmp_path_factory.mktemp("validation") / "stsb"), task="stsb")


@pytest.fixture(scope="module")
def export(checkpoint_path):
    return export_checkpoint(checkpoint_path, "stsb", os.path.join(os.path.dirname(checkpoint_path), "saved_models"))


@pytest.fixture(scope="module")
def served(export):
    """Each request of `REQUESTS` sent to the export in one child process: `{case: result}`."""
    result = subprocess.run([sys.executable, "-c", _PROBE, export.path, json.dumps(REQUESTS)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO_ROOT})
    assert result.returncode == 0, f"the serving process died (exit {result.returncode}):\n{result.stderr[-3000:]}"
    line = [line for line in result.stdout.splitlines() if line.startswith("RESULTS ")][-1]
    return json.loads(line[len("RESULTS "):])


def test_process_survives_and_load_export_registers_text_ops(served):
    assert not served["tensorflow_text imported before load_export"]
    assert served["pair good"] == "ok [2, 1]" and served["ids good"] == "ok [2, 1]"
    assert served["pair not utf-8"] == "ok [1, 1]"  # served like any other text


@pytest.mark.parametrize("case, message", [
    *((f"pair 2 vs 1 #{i}", "`sentence1` and `sentence2` must have the same batch size. "
                            "Received: 2 sentence1 and 1 sentence2") for i in range(4)),
    ("pair 1 vs 3", "Received: 1 sentence1 and 3 sentence2"),
    ("pair 0 vs 2", "A request needs at least one example. Received: batch size 0"),
    ("pair empty batch", "A request needs at least one example"),
    ("ids negative", f"`token_ids` must be in [0, {VOCABULARY}). Received: values from -1 to 7"),
    ("ids out of vocabulary", f"`token_ids` must be in [0, {VOCABULARY}). Received: values from 0 to {VOCABULARY}"),
    ("ids segment 2", "`segment_ids` must be in [0, 2). Received: values from 0 to 2"),
    ("ids negative segment", "`segment_ids` must be in [0, 2). Received: values from -1 to 0"),
    ("ids mask 2", "`padding_mask` must be 0 (padding) or 1 (real token). Received: values from 0 to 2"),
    ("ids left padding", "`padding_mask` must be 1 at position 0 ([CLS]) of every row"),
    ("ids mask batch 1 vs 2", "`padding_mask` must have the shape of `token_ids` [2 4]. Received: shape=[1 4]"),
    ("ids segments batch 1 vs 2", "`segment_ids` must have the shape of `token_ids` [2 4]. Received: shape=[1 4]"),
    ("ids mask shorter", "`padding_mask` must have the shape of `token_ids` [2 4]. Received: shape=[2 3]"),
    ("ids empty batch", "A request needs at least one example"),
    ("ids too long", "Inputs are longer than max_seq_length=16 tokens: truncate them. Received: 18 tokens"),
    # The message names whichever input is checked first.
    ("pair rank 2", " [1,1] is not compatible with expected shape [?]"),
    ("pair rank 0", " [] is not compatible with expected shape [?]"),
    ("ids rank 1", " [4] is not compatible with expected shape [?,?]"),
    ("ids rank 3", " [1,2,4] is not compatible with expected shape [?,?]"),
])
def test_signature_refuses_with_a_clear_error(served, case, message):
    assert served[case].startswith("InvalidArgumentError: "), served[case]
    assert message in served[case], served[case]


def test_pair_regression_signature(export, checkpoint_path):
    function = load_export(export.path).signatures["serving_default"]
    assert set(function.structured_input_signature[1]) == {"sentence1", "sentence2"}
    assert set(function.structured_outputs) == {"logits", "score", "kept_tokens"}
    first = ["the movie is good .", "", "a bad movie"]
    second = ["the movie is bad", "good", "movies " * 40]
    outputs = {k: v.numpy() for k, v in function(sentence1=tf.constant(first), sentence2=tf.constant(second)).items()}
    checkpoint = load_checkpoint(checkpoint_path)
    features = tokenize(checkpoint_preprocessor(checkpoint), (first, second)).as_dict()
    np.testing.assert_array_equal(features["segment_ids"][0, :8], [0, 0, 0, 0, 0, 0, 0, 1])
    reference = keras_reference(checkpoint.model, features)
    assert compare(reference, outputs, regression=True)["passed"]
    np.testing.assert_array_equal(outputs["score"], outputs["logits"][:, 0])
    assert outputs["kept_tokens"][2, 0] == 16  # truncated to max_seq_length


def test_load_export_names_a_missing_savedmodel(tmp_path):
    with pytest.raises(FileNotFoundError, match="No SavedModel in .*expected .*saved_model.pb"):
        load_export(str(tmp_path))
