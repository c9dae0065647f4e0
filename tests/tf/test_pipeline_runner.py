"""The local runner: caching, atomic outputs, resumable outputs, interrupted executions, lineage."""

import contextlib
import os

import pytest

from pipelines.component import Component, ExecutorResult, OutputSpec, Pipeline
from pipelines.lineage import format_lineage
from pipelines.local_runner import LocalRunner
from pipelines.metadata_store import MetadataStore


def _write(name, text=None):
    def executor(context):
        calls.append(name)
        text_ = context.parameters.get("text", text)
        with open(os.path.join(context.outputs["out"], "value.txt"), "w") as f:
            f.write(text_ + "".join(open(os.path.join(p, "value.txt")).read() for p in context.inputs.values()
                                   if os.path.isdir(p)))
        return ExecutorResult(properties={"out": {"text": text_}})
    return executor


calls: list[str] = []


def _pipeline(source_text="a", fail_second=False):
    def second(context):
        if fail_second:
            with open(os.path.join(context.outputs["out"], "half.txt"), "w") as f:
                f.write("half")
            raise RuntimeError("simulated crash")
        return _write("second", "b")(context)

    return Pipeline("test", (
        Component("First", _write("first"), {"text": source_text}, outputs={"out": OutputSpec("Text")}),
        Component("Second", second, inputs={"in": ("First", "out")}, outputs={"out": OutputSpec("Text")}),
    ))


def test_rerun_is_cached_and_changed_inputs_rerun(tmp_path):
    calls.clear()
    runner = LocalRunner(str(tmp_path))
    first = runner.run(_pipeline(), log=lambda _: None)
    assert [r.status for r in first] == ["COMPLETE", "COMPLETE"] and calls == ["first", "second"]
    assert open(os.path.join(first[1].outputs["out"], "value.txt")).read() == "ba"
    again = runner.run(_pipeline(), log=lambda _: None)
    assert [r.status for r in again] == ["CACHED", "CACHED"] and calls == ["first", "second"]
    changed = runner.run(_pipeline("z"), log=lambda _: None)
    assert [r.status for r in changed] == ["COMPLETE", "COMPLETE"]
    assert open(os.path.join(changed[1].outputs["out"], "value.txt")).read() == "bz"


def test_cached_output_changed_on_disk_is_rerun(tmp_path):
    calls.clear()
    runner = LocalRunner(str(tmp_path))
    first = runner.run(_pipeline(), log=lambda _: None)
    value_file = os.path.join(first[0].outputs["out"], "value.txt")
    with open(value_file, "w") as f:
        f.write("tampered")
    messages = []
    again = runner.run(_pipeline(), log=messages.append)
    assert [r.status for r in again] == ["COMPLETE", "CACHED"] and calls == ["first", "second", "first"]
    assert any("[First] not reusing execution 1: output 'out'" in m and "changed on disk" in m for m in messages)
    assert open(value_file).read() == "a"
    with contextlib.closing(MetadataStore(os.path.join(tmp_path, "metadata.sqlite"))) as store:
        assert "changed on disk" in store.executions()[-2].message  # the lineage says why it ran again


def test_second_run_on_a_locked_root_fails_at_once(tmp_path):
    from ltp_tf.locking import FolderLockedError, exclusive_lock

    with exclusive_lock(str(tmp_path), "pipeline run"):
        with pytest.raises(FolderLockedError, match=f"{tmp_path}/.lock is held by another pipeline run "
                                                    f"\\(pid {os.getpid()}\\)"):
            LocalRunner(str(tmp_path)).run(_pipeline(), log=lambda _: None)


def test_failure_leaves_no_output_and_is_recorded(tmp_path):
    runner = LocalRunner(str(tmp_path))
    with pytest.raises(RuntimeError, match="simulated crash"):
        runner.run(_pipeline(fail_second=True), log=lambda _: None)
    second_dir = os.path.join(tmp_path, "Second", "out")
    assert not os.path.exists(second_dir) or os.listdir(second_dir) == []
    with contextlib.closing(MetadataStore(os.path.join(tmp_path, "metadata.sqlite"))) as store:
        assert [e.status for e in store.executions()] == ["COMPLETE", "FAILED"]
    results = runner.run(_pipeline(), log=lambda _: None)
    assert [r.status for r in results] == ["CACHED", "COMPLETE"]


def test_resumable_output_keeps_partial_work(tmp_path):
    attempts = []

    def trainer(context):
        out = context.outputs["model"]
        attempts.append(sorted(os.listdir(out)))
        if not os.path.exists(os.path.join(out, "stage1")):
            os.makedirs(os.path.join(out, "stage1"))
            raise KeyboardInterrupt  # killed after the first stage
        os.makedirs(os.path.join(out, "stage2"))
        return ExecutorResult()

    pipeline = Pipeline("resume", (Component("Trainer", trainer, outputs={"model": OutputSpec("Model", resumable=True)}),))
    runner = LocalRunner(str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        runner.run(pipeline, log=lambda _: None)
    results = runner.run(pipeline, log=lambda _: None)
    assert attempts == [[], ["stage1"]]
    assert sorted(os.listdir(results[0].outputs["model"])) == ["stage1", "stage2"]


def test_interrupted_execution_is_marked_failed_and_lineage_lists_everything(tmp_path):
    runner = LocalRunner(str(tmp_path))
    runner.run(_pipeline(), log=lambda _: None)
    with contextlib.closing(MetadataStore(os.path.join(tmp_path, "metadata.sqlite"))) as store:
        store.start_execution("killed-run", "Second", "f" * 64, {})  # as if killed with SIGKILL
    runner.run(_pipeline(), log=lambda _: None)
    text = format_lineage(str(tmp_path))
    assert "[FAILED]" in text and "interrupted" in text
    assert text.count("out out: Text") == 4 and text.count("in  in: Text") == 2
    with pytest.raises(FileNotFoundError, match="No pipeline metadata"):
        format_lineage(str(tmp_path / "nowhere"))


def test_pipeline_validates_wiring():
    with pytest.raises(ValueError, match="needs First.missing"):
        Pipeline("bad", (Component("First", _write("x", "x"), outputs={"out": OutputSpec("T")}),
                         Component("Second", _write("y", "y"), inputs={"in": ("First", "missing")})))
    with pytest.raises(ValueError, match="unique"):
        Pipeline("bad", (Component("A", _write("x", "x")), Component("A", _write("x", "x"))))


def test_create_pipeline_checks_data_and_settings(tmp_path, glue_dir):
    from pipelines.pipeline import BlessingRule, create_pipeline

    common = dict(model_dir=str(tmp_path), max_seq_length=32, model_name="m", export_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="QQP train split not found: expected .*QQP/train.tsv"):
        create_pipeline(task="qqp", data_dir=glue_dir, trainer={}, **common)
    with pytest.raises(ValueError, match="must run the dense `finetune` stage"):
        create_pipeline(task="sst2", data_dir=glue_dir, trainer={"stages": ["soft", "hard"]}, **common)
    with pytest.raises(ValueError, match="`min_flops_reduction` must be >= 1. Received: 0.5"):
        BlessingRule(min_flops_reduction=0.5)
    pipeline = create_pipeline(task="sst2", data_dir=glue_dir, trainer={}, **common)
    assert [c.name for c in pipeline.components] == ["ExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"]
