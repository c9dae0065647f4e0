"""Publishing exports: version numbers, models.config, interrupted exports, token-id-only exports, errors.

Uses a tiny random model (13-word vocabulary) so each export takes a few seconds.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from ltp_tf.checkpoints import load_checkpoint, save_checkpoint
from ltp_tf.serving import exporter, publish
from ltp_tf.serving.exporter import export_checkpoint
from ltp_tf.serving.saved_model import load_export
from tests.tf.serving_helpers import tiny_checkpoint

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def sst2_checkpoint(tmp_path_factory):
    return tiny_checkpoint(str(tmp_path_factory.mktemp("tiny") / "sst2"), task="sst2")


def _entries(model_dir):
    return sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else []


def test_versions_increase_and_config_lists_every_model(tmp_path, sst2_checkpoint):
    export_dir = str(tmp_path / "saved_models")
    first = export_checkpoint(sst2_checkpoint, "alpha", export_dir)
    second = export_checkpoint(sst2_checkpoint, "alpha", export_dir)
    other = export_checkpoint(sst2_checkpoint, "beta", export_dir, serving_base_path="/srv/models/")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert _entries(os.path.join(export_dir, "alpha")) == ["1", "2"]
    assert publish.versions(os.path.join(export_dir, "alpha")) == [1, 2]
    with open(other.models_config) as f:
        config = f.read()
    assert config == publish.render_models_config(["alpha", "beta"], "/srv/models")
    assert 'name: "alpha"\n    base_path: "/srv/models/alpha"' in config and 'base_path: "/srv/models/beta"' in config
    assert sorted(os.listdir(export_dir)) == ["alpha", "beta", "models.config"]  # no temporary config left


def test_failure_midway_leaves_no_version(tmp_path, sst2_checkpoint, monkeypatch):
    export_dir = str(tmp_path / "saved_models")
    export_checkpoint(sst2_checkpoint, "model", export_dir)
    with open(os.path.join(export_dir, "models.config")) as f:
        config_before = f.read()

    class HalfWritten:
        def write_out(self, path, verbose=True):
            with open(os.path.join(path, "saved_model.pb"), "wb") as f:
                f.write(b"partial")
            raise KeyboardInterrupt

    monkeypatch.setattr(exporter, "build_export_archive", lambda *args, **kwargs: HalfWritten())
    with pytest.raises(KeyboardInterrupt):
        export_checkpoint(sst2_checkpoint, "model", export_dir)
    assert _entries(os.path.join(export_dir, "model")) == ["1"]
    with open(os.path.join(export_dir, "models.config")) as f:
        assert f.read() == config_before


def test_killed_export_leaves_nothing_tf_serving_would_load(tmp_path, sst2_checkpoint):
    export_dir = tmp_path / "saved_models"
    model_dir = export_dir / "model"
    process = subprocess.Popen(
        [sys.executable, "-m", "ltp_tf.export", f"--checkpoint={sst2_checkpoint}", "--name=model",
         f"--export_dir={export_dir}"], cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        while not any(e.startswith(publish.STAGING_PREFIX) for e in _entries(model_dir)):
            assert process.poll() is None, "the export ended before it could be interrupted"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    leftovers = _entries(model_dir)
    assert len(leftovers) == 1 and leftovers[0].startswith(publish.STAGING_PREFIX)  # never an integer name
    assert publish.versions(str(model_dir)) == [] and not (export_dir / "models.config").exists()
    # The next export removes the abandoned staging folder and publishes version 1.
    result = export_checkpoint(sst2_checkpoint, "model", str(export_dir))
    assert result.version == 1 and _entries(model_dir) == ["1"]


def test_token_id_only_export(tmp_path, sst2_checkpoint):
    result = export_checkpoint(sst2_checkpoint, "ids", str(tmp_path / "saved_models"), text_signature=False)
    signatures = load_export(result.path).signatures
    assert set(signatures) == {"serving_default", "token_ids"}
    assert set(signatures["serving_default"].structured_input_signature[1]) == {"token_ids", "segment_ids",
                                                                                "padding_mask"}


def test_errors(tmp_path, sst2_checkpoint):
    with pytest.raises(ValueError, match="`name` must be letters.*Received: name='../x'"):
        export_checkpoint(sst2_checkpoint, "../x", str(tmp_path))
    wrong = load_checkpoint(sst2_checkpoint)
    path = save_checkpoint(str(tmp_path / "mnli"), wrong.model, task="mnli", max_seq_length=16,
                           vocabulary_file=wrong.vocabulary_file, metadata={"lowercase": True, "strip_accents": False})
    with pytest.raises(ValueError, match="The model has 2 outputs but task 'mnli' needs 3"):
        export_checkpoint(path, "mnli", str(tmp_path / "saved_models"))
    assert _entries(str(tmp_path / "saved_models" / "mnli")) == []
    with pytest.raises(ValueError, match="refusing to publish an incomplete export"):
        publish.publish(str(tmp_path), str(tmp_path / "saved_models" / "x"))
