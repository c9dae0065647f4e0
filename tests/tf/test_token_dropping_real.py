"""The token-dropping runner on the real MiniLM (all 6 layers) and real SST-2 dev sentences."""

import numpy as np
import pytest

from ltp_tf import packaged_minilm_path
from ltp_tf.data import get_task, load_preprocessor, read_split, tokenize, trim_to_longest
from ltp_tf.inference import TokenDroppingRunner
from ltp_tf.serving.verify import keras_reference
from tests.tf.serving_helpers import minilm_classifier


@pytest.fixture(scope="module")
def model():
    return minilm_classifier(num_layers=6)


@pytest.fixture(scope="module")
def features(glue_dir):
    examples = read_split(get_task("sst2"), "dev", glue_dir).take(64)
    return tokenize(load_preprocessor(packaged_minilm_path(), 128), examples.texts).as_dict()


def test_dropping_equals_masking_on_real_sentences(model, features):
    reference = keras_reference(model, features, batch_size=64)
    runner = TokenDroppingRunner(model, length_bucket=8, max_batch_size=64)
    result = runner(features)
    np.testing.assert_array_equal(result["kept_tokens"], reference["kept_tokens"])
    assert np.abs(result["logits"] - reference["logits"]).max() <= 1e-5
    np.testing.assert_array_equal(result["logits"].argmax(-1), reference["logits"].argmax(-1))
    # The untrained threshold really removes tokens, and later layers ran on shorter sequences.
    assert (result["kept_tokens"][:, -1] < result["kept_tokens"][:, 0]).all()
    lengths = sorted({length for _, _, length in runner.shapes_seen})
    assert lengths[0] < lengths[-1]


def test_one_real_sentence_at_a_time(model, features):
    runner = TokenDroppingRunner(model, length_bucket=8, jit_compile=False)
    for index in (0, 5):
        one = trim_to_longest({key: value[index:index + 1] for key, value in features.items()})
        reference = keras_reference(model, one)
        result = runner(one)
        np.testing.assert_array_equal(result["kept_tokens"], reference["kept_tokens"])
        assert np.abs(result["logits"] - reference["logits"]).max() <= 1e-5
