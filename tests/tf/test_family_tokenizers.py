"""Each family's tokenizer: ours equals keras_hub's converter on the Hugging Face files, and survives a rewrite."""

import keras_hub
import numpy as np
import pytest

from ltp_tf.data.tokenization import load_preprocessor, preprocessor_from_files, tokenize, write_tokenizer_files
from ltp_tf.families import get_family
from tests.hf_models import write_hf_model

SENTENCES = (["the movie was good .", "a very boring film , not fun !", "it's the best story"],
             ["this is great", "awful acting", "the worst"])


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta", "xlm-roberta", "albert"])
def test_tokenizer_matches_keras_hub_and_round_trips(tmp_path, family):
    model_dir = write_hf_model(str(tmp_path / "model"), family)
    spec = get_family(family)
    hub = getattr(keras_hub.models, spec.hub_preprocessor)(
        getattr(keras_hub.models, spec.hub_tokenizer).from_preset(model_dir), sequence_length=16)
    ours = load_preprocessor(model_dir, sequence_length=16)
    for texts in (SENTENCES[:1], SENTENCES):  # single sentences and pairs
        expected = tokenize(hub, texts)
        got = tokenize(ours, texts)
        np.testing.assert_array_equal(got.token_ids, expected.token_ids)
        np.testing.assert_array_equal(got.padding_mask, expected.padding_mask)
        np.testing.assert_array_equal(got.segment_ids, expected.segment_ids)
        start = getattr(ours.tokenizer, "start_token_id", getattr(ours.tokenizer, "cls_token_id", None))
        assert start is not None and (got.token_ids[:, 0] == start).all()  # `[CLS]` / `<s>` first
    files = write_tokenizer_files(ours.tokenizer, family, str(tmp_path / "copy"))
    assert [f.rsplit("/", 1)[1] for f in files] == list(spec.tokenizer_files)
    rewritten = preprocessor_from_files(str(tmp_path / "copy"), family, 16, lowercase=True)
    np.testing.assert_array_equal(tokenize(rewritten, SENTENCES).token_ids, tokenize(ours, SENTENCES).token_ids)


def test_missing_tokenizer_files_are_named(tmp_path):
    model_dir = write_hf_model(str(tmp_path / "model"), "roberta")
    (tmp_path / "model" / "merges.txt").unlink()
    with pytest.raises(FileNotFoundError, match="merges.txt"):
        load_preprocessor(model_dir)
