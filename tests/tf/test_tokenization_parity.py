"""Training and serving tokenize identically: same token ids, segment ids and padding mask.

Training tokenizes with `Tokenizer.from_model` (a model folder) or `Tokenizer.from_checkpoint` (`--restore`) and
writes its tokenizer files and `lowercase` into the checkpoint (as `training/stages.py` does); serving builds
`checkpoint_preprocessor` from that checkpoint. Both are compared on accented, uppercase, CJK and emoji text,
single sentences and pairs, with truncation, and against keras_hub's own converter of the model folder.
"""

import keras_hub
import numpy as np
import pytest

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, load_backbone, packaged_minilm_path
from ltp_tf.checkpoints import load_checkpoint, save_checkpoint
from ltp_tf.data.features import Tokenizer
from ltp_tf.data.tokenization import preprocessor_from_metadata, tokenize, tokenizer_settings
from ltp_tf.families import get_family
from ltp_tf.serving.text import checkpoint_preprocessor
from tests.hf_models import write_hf_model

SEQUENCE_LENGTH = 16
FIRST = ["Café NAÏVE résumé", "THE MOVIE WAS GOOD", "東京は日本の首都です", "I ❤️ this 😀 movie!!",
         "ÀÉÎÕÜ ñ ç ß Ω", "word " * 40, "Hello\tworld\u00a0again", "ｆｕｌｌ-width ＡＢＣ"]
SECOND = ["Straße", "北京 is big", "🙂🙂", "Zoë", "short", "naïve CAFÉ " * 10, "a", "x " * 30]
TEXTS = ((FIRST,), (FIRST, SECOND))  # single sentences and pairs


def _assert_same(got, expected):
    np.testing.assert_array_equal(got.token_ids, expected.token_ids)
    np.testing.assert_array_equal(got.segment_ids, expected.segment_ids)
    np.testing.assert_array_equal(got.padding_mask, expected.padding_mask)


def _trained_checkpoint(tmp_path, model_dir: str, model: TokenPruningClassifier) -> tuple[Tokenizer, str]:
    """Training's tokenizer for `model_dir`, and a checkpoint written with its files and `lowercase` as training does."""
    tokenizer = Tokenizer.from_model(model_dir, SEQUENCE_LENGTH)
    vocabulary_file = tokenizer.write_files(str(tmp_path / "task"))
    path = save_checkpoint(str(tmp_path / "checkpoint"), model, task="mrpc", max_seq_length=SEQUENCE_LENGTH,
                           vocabulary_file=vocabulary_file, metadata={"lowercase": tokenizer.lowercase})
    return tokenizer, path


def _tiny_classifier(vocabulary_size: int) -> TokenPruningClassifier:
    backbone = TokenPruningBackbone(vocabulary_size=vocabulary_size, num_layers=1, num_heads=2, hidden_dim=8,
                                    intermediate_dim=16, max_sequence_length=32)
    model = TokenPruningClassifier(backbone, num_classes=2)
    model({"token_ids": np.ones((1, 4), "int32")})
    return model


def _check_parity(tokenizer: Tokenizer, checkpoint_path: str, hub_preprocessor) -> None:
    checkpoint = load_checkpoint(checkpoint_path)
    serving = checkpoint_preprocessor(checkpoint)
    restored = Tokenizer.from_checkpoint(checkpoint_path, checkpoint.metadata, SEQUENCE_LENGTH)
    assert restored.family == tokenizer.family == checkpoint.family
    for texts in TEXTS:
        trained = tokenizer(texts)
        _assert_same(tokenize(serving, texts), trained)
        _assert_same(restored(texts), trained)
        _assert_same(tokenize(hub_preprocessor, texts), trained)  # what training used before one function built all


def test_minilm_training_and_serving_tokenize_identically(tmp_path):
    model_dir = packaged_minilm_path()
    tokenizer, path = _trained_checkpoint(tmp_path, model_dir, _tiny_classifier(30522))
    hub = keras_hub.models.BertTextClassifierPreprocessor(keras_hub.models.BertTokenizer.from_preset(model_dir),
                                                          sequence_length=SEQUENCE_LENGTH)
    _check_parity(tokenizer, path, hub)

    vocabulary = tokenizer.preprocessor.tokenizer.get_vocabulary()

    def pieces(texts):
        features = tokenizer(texts)
        return [[vocabulary[i] for i in row[mask]] for row, mask in zip(features.token_ids, features.padding_mask)]

    single, pair = pieces((FIRST,)), pieces((FIRST, SECOND))
    assert single[1] == ["[CLS]", "the", "movie", "was", "good", "[SEP]"]  # lowercased
    assert single[0] == ["[CLS]", "[UNK]", "[UNK]", "[UNK]", "[SEP]"]  # accents kept: not in the uncased vocabulary
    assert single[2][1:7] == ["東", "京", "は", "日", "本", "の"]  # CJK characters split one by one
    assert "[UNK]" in single[3] and "movie" in single[3]  # emoji are unknown, the words around them are not
    assert len(single[5]) == SEQUENCE_LENGTH and single[5][-1] == "[SEP]"  # truncated, [SEP] kept
    assert len(pair[5]) == SEQUENCE_LENGTH and pair[5].count("[SEP]") == 2  # pairs truncated round-robin
    features = tokenizer((FIRST, SECOND))
    np.testing.assert_array_equal(features.segment_ids[4][:5], [0, 0, 0, 0, 0])
    assert features.segment_ids[4][features.padding_mask[4]][-1] == 1  # the second sentence is segment 1


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta", "xlm-roberta", "albert"])
def test_every_family_tokenizes_alike_in_training_and_serving(tmp_path, family):
    model_dir = write_hf_model(str(tmp_path / "model"), family)
    model = TokenPruningClassifier(load_backbone(model_dir), num_classes=2)
    model({"token_ids": np.ones((1, 4), "int32")})
    tokenizer, path = _trained_checkpoint(tmp_path, model_dir, model)
    spec = get_family(family)
    hub = getattr(keras_hub.models, spec.hub_preprocessor)(
        getattr(keras_hub.models, spec.hub_tokenizer).from_preset(model_dir), sequence_length=SEQUENCE_LENGTH)
    _check_parity(tokenizer, path, hub)


def test_recorded_settings_are_checked(tmp_path, caplog):
    source = str(tmp_path / "checkpoint.json")
    with caplog.at_level("INFO"):
        assert tokenizer_settings("bert", {}, source) == {"lowercase": True, "strip_accents": False}
    assert "has no 'lowercase'" in caplog.text and "has no 'strip_accents'" in caplog.text
    assert tokenizer_settings("distilbert", {"lowercase": False}, source) == {"lowercase": False,
                                                                             "strip_accents": False}
    assert tokenizer_settings("roberta", {"lowercase": "yes"}, source) == {}  # BPE has no such settings
    with pytest.raises(ValueError, match="`lowercase` in .*checkpoint.json must be true or false. "
                                         "Received: lowercase='yes'"):
        tokenizer_settings("bert", {"lowercase": "yes"}, source)
    with pytest.raises(ValueError, match="`strip_accents` in .*checkpoint.json must be false: .* keeps accents"):
        preprocessor_from_metadata(str(tmp_path), {"lowercase": True, "strip_accents": True}, SEQUENCE_LENGTH)
