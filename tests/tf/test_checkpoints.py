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
