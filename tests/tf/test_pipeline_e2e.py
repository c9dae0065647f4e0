"""The GLUE LTP pipeline end to end on a tiny real SST-2 slice, fine-tuning a tiny random BERT folder (the
components do the same for any encoder; the real MiniLM's training is tests/tf/test_train_e2e.py's).

One module-scoped scenario: a Trainer killed after its first stage resumes without retraining it; a
Pusher killed mid-export leaves no version folder and the rerun pushes; a rerun skips everything; a
cached artifact changed on disk is rerun, not reused; a failed blessing pushes nothing; the lineage lists
every artifact.
"""

import contextlib
import json
import os

import numpy as np
import pytest

from ltp_tf.serving import publish
from ltp_tf.training import training_run
from pipelines.lineage import format_lineage
from pipelines.local_runner import LocalRunner
from pipelines.metadata_store import MetadataStore
from pipelines.pipeline import BlessingRule, create_pipeline
from tests.hf_models import write_hf_model

TRAINER = {"stages": ["finetune", "soft", "hard"], "lr": 5e-5, "epoch": 1, "bs": 16, "jit_compile": False,
           "verbose": 0, "final_token_threshold": 0.01}


def _pipeline(model_dir, glue_dir, export_dir, blessing=BlessingRule(max_metric_drop=100.0, min_flops_reduction=1.0)):
    return create_pipeline(task="sst2", data_dir=glue_dir, model_dir=model_dir, max_seq_length=32,
                           trainer=TRAINER, model_name="sst2_tiny", export_dir=export_dir, blessing=blessing,
                           max_train_examples=64, max_eval_examples=32, latency_examples=4, verify_max_examples=16)


def _statuses(results):
    return {r.component: r.status for r in results}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, glue_dir):
    root = str(tmp_path_factory.mktemp("pipeline_root"))
    export_dir = str(tmp_path_factory.mktemp("saved_models"))
    model_dir = write_hf_model(str(tmp_path_factory.mktemp("bert")), "bert")
    runner = LocalRunner(root)
    quiet = lambda _: None  # noqa: E731
    record = {"root": root, "export_dir": export_dir}
    trained = []
    original_run_stage = training_run.run_stage

    def run_stage_then_die(config, stage, *args, **kwargs):
        if stage == "soft":
            raise KeyboardInterrupt("simulated kill during the Trainer")
        trained.append(stage)
        return original_run_stage(config, stage, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training_run, "run_stage", run_stage_then_die)
        with pytest.raises(KeyboardInterrupt):
            runner.run(_pipeline(model_dir, glue_dir, export_dir), log=quiet)
    record["trained_before_kill"] = list(trained)

    def counting_run_stage(config, stage, *args, **kwargs):
        trained.append(stage)
        return original_run_stage(config, stage, *args, **kwargs)

    def publish_then_die(staging, model_dir):
        raise KeyboardInterrupt("simulated kill during the Pusher")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training_run, "run_stage", counting_run_stage)
        patch.setattr(publish, "publish", publish_then_die)
        with pytest.raises(KeyboardInterrupt):
            runner.run(_pipeline(model_dir, glue_dir, export_dir), log=quiet)
    record["trained_after_resume"] = list(trained)
    killed_model_dir = os.path.join(export_dir, "sst2_tiny")
    record["versions_after_pusher_kill"] = sorted(os.listdir(killed_model_dir)) if os.path.isdir(killed_model_dir) else []
    record["pushed_run"] = _statuses(runner.run(_pipeline(model_dir, glue_dir, export_dir), log=quiet))
    record["cached_run"] = _statuses(runner.run(_pipeline(model_dir, glue_dir, export_dir), log=quiet))
    record["versions_after_cached_run"] = sorted(os.listdir(os.path.join(export_dir, "sst2_tiny")))

    # Tamper with a cached artifact: flip every label of the Transform's train split.
    train_npz = os.path.join(root, "Transform", "features")
    train_npz = os.path.join(train_npz, os.listdir(train_npz)[0], "train.npz")
    with np.load(train_npz) as values:
        arrays = dict(values)
    record["original_labels"] = arrays["labels"].copy()
    np.savez_compressed(train_npz, **{**arrays, "labels": 1 - arrays["labels"]})
    messages = []
    record["tampered_run"] = _statuses(runner.run(_pipeline(model_dir, glue_dir, export_dir), log=messages.append))
    record["tampered_log"] = messages
    with np.load(train_npz) as values:
        record["labels_after_rerun"] = values["labels"].copy()
    strict = BlessingRule(max_metric_drop=0.0, min_flops_reduction=100.0)
    record["unblessed_run"] = runner.run(_pipeline(model_dir, glue_dir, export_dir, strict), log=quiet)
    record["versions_after_unblessed"] = sorted(os.listdir(os.path.join(export_dir, "sst2_tiny")))
    return record


def test_trainer_kill_resumes_without_retraining(scenario):
    assert scenario["trained_before_kill"] == ["finetune"]
    assert scenario["trained_after_resume"] == ["finetune", "soft", "hard"]  # finetune was not trained again


def test_pusher_kill_leaves_no_version_then_pushes(scenario):
    assert scenario["versions_after_pusher_kill"] == []  # no version folder, no staging folder left
    model_dir = os.path.join(scenario["export_dir"], "sst2_tiny")
    assert scenario["pushed_run"] == {"ExampleGen": "CACHED", "Transform": "CACHED", "Trainer": "CACHED",
                                      "Evaluator": "CACHED", "Pusher": "COMPLETE"}
    assert os.path.isfile(os.path.join(model_dir, "1", "saved_model.pb"))


def test_rerun_skips_everything(scenario):
    assert set(scenario["cached_run"].values()) == {"CACHED"}
    assert [v for v in scenario["versions_after_cached_run"] if v.isdigit()] == ["1"]


def test_tampered_cached_artifact_is_rerun_not_reused(scenario):
    assert scenario["tampered_run"]["Transform"] == "COMPLETE"  # not CACHED
    assert any("[Transform] not reusing execution" in m and "changed on disk" in m for m in scenario["tampered_log"])
    np.testing.assert_array_equal(scenario["labels_after_rerun"], scenario["original_labels"])
    # The rerun reproduced the recorded features, so everything downstream is still valid and reused.
    assert scenario["tampered_run"]["Trainer"] == "CACHED" and scenario["tampered_run"]["Pusher"] == "CACHED"


def test_failed_blessing_pushes_nothing(scenario):
    statuses = _statuses(scenario["unblessed_run"])
    assert statuses["Trainer"] == "CACHED" and statuses["Evaluator"] == "COMPLETE" and statuses["Pusher"] == "COMPLETE"
    pusher = scenario["unblessed_run"][-1]
    assert pusher.message.startswith("not pushed") and "FLOPs reduction" in pusher.message
    with open(os.path.join(pusher.outputs["pushed"], "push.json")) as f:
        assert json.load(f)["pushed"] is False
    assert [v for v in scenario["versions_after_unblessed"] if v.isdigit()] == ["1"]


def test_lineage_lists_every_artifact(scenario):
    text = format_lineage(scenario["root"])
    with contextlib.closing(MetadataStore(os.path.join(scenario["root"], "metadata.sqlite"))) as store:
        executions = store.executions()
        outputs = [a for e in executions for a in store.artifacts_of(e.id, "OUTPUT").values()]
    assert {e.component for e in executions} == {"ExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"}
    assert any(e.status == "FAILED" for e in executions)
    for artifact in outputs:
        assert artifact.uri in text and os.path.exists(artifact.uri)
    for kind in ("Examples", "Features", "Model", "ModelEvaluation", "PushedModel", "ExternalFile"):
        assert kind in text
