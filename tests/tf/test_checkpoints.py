import os

import numpy as np
import pytest

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier
from ltp_tf import checkpoints


def _model():
    backbone = TokenPruningBackbone(vocabulary_size=20, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
                                    max_sequence_length=16)
    model = TokenPruningClassifier(backbone, num_classes=2)
    model({"token_ids": np.ones((1, 4), "int32")})
    return model


def test_round_trip_and_replace(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n")
    target = os.path.join(tmp_path, "ckpt")
    model = _model()
    checkpoints.save_checkpoint(target, model, task="sst2", max_seq_length=64, vocabulary_file=str(vocab),
                                metadata={"stage": "finetune"})
    loaded = checkpoints.load_checkpoint(target)
    assert loaded.task == "sst2" and loaded.max_seq_length == 64 and loaded.metadata["stage"] == "finetune"
    inputs = {"token_ids": np.arange(1, 7, dtype="int32").reshape(2, 3)}
    np.testing.assert_allclose(np.asarray(loaded.model(inputs)), np.asarray(model(inputs)), atol=1e-6)
    checkpoints.save_checkpoint(target, model, task="sst2", max_seq_length=32, vocabulary_file=str(vocab))
    assert checkpoints.load_checkpoint(target).max_seq_length == 32
    # Copying another checkpoint's metadata keeps the fields given explicitly (the benchmark re-saves a trained
    # checkpoint at a longer max_seq_length for long inputs).
    checkpoints.save_checkpoint(target, model, task="sst2", max_seq_length=16, vocabulary_file=str(vocab),
                                metadata=dict(loaded.metadata))
    assert checkpoints.read_checkpoint_info(target).max_seq_length == 16
    assert sorted(os.listdir(tmp_path)) == ["ckpt", "vocab.txt"]  # no temporary folders left


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n")
    model = _model()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_checkpoint(str(tmp_path / "ckpt"), model, task="sst2", max_seq_length=8,
                                    vocabulary_file=str(vocab))
    assert sorted(os.listdir(tmp_path)) == ["vocab.txt"]


def test_incomplete_folder_is_refused(tmp_path):
    (tmp_path / "model.keras").write_text("")
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        checkpoints.load_checkpoint(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="Checkpoint folder not found"):
        checkpoints.load_checkpoint(str(tmp_path / "absent"))


def _folder_with_metadata(tmp_path, text: str | bytes) -> str:
    path = tmp_path / "checkpoint.json"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return str(tmp_path)


def test_read_checkpoint_info_reads_the_metadata_without_the_model(tmp_path):
    folder = _folder_with_metadata(tmp_path, '{"task": "sst2", "max_seq_length": 64, "stage": "soft", '
                                             '"pruning_config": {"prune_mode": "absolute_threshold"}}')
    info = checkpoints.read_checkpoint_info(folder)
    assert (info.task, info.max_seq_length, info.family, info.stage, info.prune_mode) == (
        "sst2", 64, "bert", "soft", "absolute_threshold")
    assert info.tokenizer_files == (os.path.join(folder, "vocab.txt"),)
    folder = _folder_with_metadata(tmp_path, '{"task": "rte", "max_seq_length": 8, "family": "roberta"}')
    info = checkpoints.read_checkpoint_info(folder)
    assert (info.family, info.stage, info.prune_mode) == ("roberta", None, None)
    assert info.tokenizer_files == (os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"))


def test_read_checkpoint_info_refuses_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"is not a checkpoint folder: checkpoint\.json not found"):
        checkpoints.read_checkpoint_info(str(tmp_path))


@pytest.mark.parametrize("text, message", [
    ("{", r"checkpoint\.json is not valid JSON"),
    (b'{"task": "caf\xe9"}', r"checkpoint\.json is not valid JSON \('utf-8' codec can't decode"),
    ('["sst2", 64]', r"checkpoint\.json must hold a JSON object\. Received: list"),
    ('{"max_seq_length": 64}', r"`task` in .*checkpoint\.json must be a task name\. Received: task=None"),
    ('{"task": "sst2", "max_seq_length": "64"}', r"`max_seq_length` in .* must be an integer >= 1\. Received: "
                                                  r"max_seq_length='64'"),
    ('{"task": "sst2", "max_seq_length": true}', r"must be an integer >= 1\. Received: max_seq_length=True"),
    ('{"task": "sst2", "max_seq_length": 64, "family": "gpt2"}', r"`family` in .*checkpoint\.json: Unsupported "
                                                                 r"model_type='gpt2'"),
])
def test_read_checkpoint_info_refuses_garbage(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        checkpoints.read_checkpoint_info(_folder_with_metadata(tmp_path, text))


def test_load_checkpoint_refuses_garbage_metadata_before_loading_the_model(tmp_path, monkeypatch):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\n")
    target = checkpoints.save_checkpoint(str(tmp_path / "ckpt"), _model(), task="sst2", max_seq_length=8,
                                         vocabulary_file=str(vocab))
    with open(os.path.join(target, "checkpoint.json"), "w") as f:
        f.write('{"task": "sst2"')
    monkeypatch.setattr(checkpoints.keras.saving, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(ValueError, match="is not valid JSON"):
        checkpoints.load_checkpoint(target)
