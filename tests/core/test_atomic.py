"""`write_json`, the one JSON writer: the whole new file or the old one, never a part, no temporaries left."""

import json
import os

import numpy as np
import pytest

from ltp_tf.atomic import write_file, write_json


def test_write_json_writes_indented_json_and_replaces_the_old_file(tmp_path):
    path = str(tmp_path / "sub" / "report.json")
    write_json(path, {"b": 1, "a": [1.5, None]})
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text == '{\n  "b": 1,\n  "a": [\n    1.5,\n    null\n  ]\n}\n'
    write_json(path, {"b": np.float32(0.5), "a": "x"}, sort_keys=True, default=float)
    with open(path, encoding="utf-8") as f:
        assert list(json.load(f).items()) == [("a", "x"), ("b", 0.5)]
    assert os.listdir(tmp_path / "sub") == ["report.json"]


def test_write_json_that_fails_leaves_the_old_file_whole(tmp_path):
    path = str(tmp_path / "report.json")
    write_json(path, {"ok": True})
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json(path, {"ok": False, "value": object()})
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == {"ok": True}
    assert os.listdir(tmp_path) == ["report.json"]


def test_write_file_renames_what_the_writer_wrote_and_cleans_up_when_it_fails(tmp_path):
    path = str(tmp_path / "model.onnx")

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("new")

    def fail(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("half")
        raise OSError("disk full")

    assert write_file(path, write) == path
    with pytest.raises(OSError, match="disk full"):
        write_file(path, fail)
    with open(path, encoding="utf-8") as f:
        assert f.read() == "new"
    assert os.listdir(tmp_path) == ["model.onnx"]
