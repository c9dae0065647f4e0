"""`LocalRunner`: runs a `Pipeline` in order, caching, recording and resuming every execution."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import time

from ltp_tf.atomic import remove_abandoned_siblings, replace_folder, temporary_name
from ltp_tf.locking import exclusive_lock
from pipelines.component import Component, ExecutionContext, Pipeline
from pipelines.metadata_store import CACHED, COMPLETE, FAILED, RUNNING, Artifact, MetadataStore

METADATA_FILE = "metadata.sqlite"


@dataclasses.dataclass(frozen=True)
class ComponentRun:
    component: str
    status: str
    seconds: float
    outputs: dict[str, str]
    message: str | None


class LocalRunner:
    """Runs pipelines under `pipeline_root`, one run at a time (a lock file guards the root).

    A component whose inputs (artifact fingerprints) and parameters match a COMPLETE execution is not run
    again (status CACHED), provided every output of that execution is still on disk with its recorded
    sha256; one that is missing or changed makes the component run again (logged and recorded). Outputs
    are renamed into place only when their executor succeeds; an execution found RUNNING when a run
    starts was interrupted and is marked FAILED.
    """

    def __init__(self, pipeline_root: str, beam_pipeline_args: tuple[str, ...] = ()):
        self.pipeline_root = os.path.abspath(pipeline_root)
        self.beam_pipeline_args = tuple(beam_pipeline_args)

    def run(self, pipeline: Pipeline, log=print) -> list[ComponentRun]:
        os.makedirs(self.pipeline_root, exist_ok=True)
        metadata = os.path.join(self.pipeline_root, METADATA_FILE)
        with exclusive_lock(self.pipeline_root, "pipeline run"), contextlib.closing(MetadataStore(metadata)) as store:
            run_id = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
            for stale in store.executions():
                if stale.status == RUNNING:
                    store.finish_execution(stale.id, FAILED, f"interrupted; found running at the start of run {run_id}")
            produced: dict[tuple[str, str], Artifact] = {}
            results = []
            for component in pipeline.components:
                result = self._run_component(store, run_id, component, produced, log)
                results.append(result)
            return results

    def _run_component(self, store: MetadataStore, run_id: str, component: Component,
                       produced: dict[tuple[str, str], Artifact], log) -> ComponentRun:
        started = time.time()
        rerun_note = None
        inputs = {name: produced[source] for name, source in component.inputs.items()}
        for name, path in component.external_inputs.items():
            inputs[name] = Artifact(id=-1, type="ExternalFile", uri=os.path.abspath(path),
                                    fingerprint=fingerprint_path(path), properties={})
        fingerprint = _hash({"component": component.name, "parameters": component.parameters,
                             "inputs": {name: a.fingerprint for name, a in sorted(inputs.items())}})
        final_uris = {name: os.path.join(self.pipeline_root, component.name, name, fingerprint[:16])
                      for name in component.outputs}

        previous = store.completed_execution(component.name, fingerprint)
        if previous is not None:
            outputs = store.artifacts_of(previous.id, "OUTPUT")
            changed = (_changed_outputs(outputs) if set(outputs) == set(component.outputs)
                       else ["its recorded outputs are not this component's"])
            if changed:
                rerun_note = f"not reusing execution {previous.id}: {'; '.join(changed)}"
                log(f"[{component.name}] {rerun_note}; rerunning")
            else:
                execution_id = store.start_execution(run_id, component.name, fingerprint, dict(component.parameters))
                self._link(store, execution_id, inputs, outputs)
                store.finish_execution(execution_id, CACHED, f"same inputs as execution {previous.id}")
                for name, artifact in outputs.items():
                    produced[(component.name, name)] = artifact
                log(f"[{component.name}] cached (execution {previous.id})")
                return ComponentRun(component.name, CACHED, 0.0, {n: a.uri for n, a in outputs.items()}, None)

        execution_id = store.start_execution(run_id, component.name, fingerprint, dict(component.parameters))
        self._link(store, execution_id, inputs, {})
        work_dirs = {}
        for name, spec in component.outputs.items():
            final = final_uris[name]
            remove_abandoned_siblings(final)
            work = f"{final}.partial" if spec.resumable else temporary_name(final)
            os.makedirs(work, exist_ok=True)
            work_dirs[name] = work
        log(f"[{component.name}] running (execution {execution_id})")
        context = ExecutionContext(
            component=component.name, parameters=component.parameters,
            inputs={name: a.uri for name, a in inputs.items()},
            input_properties={name: a.properties for name, a in inputs.items()},
            outputs=work_dirs, beam_pipeline_args=self.beam_pipeline_args)
        try:
            result = component.executor(context)
            outputs = {}
            for name, spec in component.outputs.items():
                replace_folder(work_dirs[name], final_uris[name])
                artifact_id = store.add_artifact(spec.type, final_uris[name], fingerprint_path(final_uris[name]),
                                                 dict(result.properties.get(name, {})))
                store.link(execution_id, artifact_id, "OUTPUT", name)
                outputs[name] = store.artifacts_of(execution_id, "OUTPUT")[name]
        except BaseException as error:
            store.finish_execution(execution_id, FAILED, f"{type(error).__name__}: {error}")
            for name, spec in component.outputs.items():
                if not spec.resumable:
                    shutil.rmtree(work_dirs[name], ignore_errors=True)
            raise
        message = "; ".join(m for m in (rerun_note, result.message) if m) or None
        store.finish_execution(execution_id, COMPLETE, message)
        for name, artifact in outputs.items():
            produced[(component.name, name)] = artifact
        seconds = time.time() - started
        log(f"[{component.name}] complete in {seconds:.1f} s" + (f": {result.message}" if result.message else ""))
        return ComponentRun(component.name, COMPLETE, seconds, {n: a.uri for n, a in outputs.items()}, result.message)

    @staticmethod
    def _link(store: MetadataStore, execution_id: int, inputs: dict[str, Artifact],
              outputs: dict[str, Artifact]) -> None:
        for name, artifact in inputs.items():
            artifact_id = artifact.id
            if artifact_id < 0:  # external file: record it as an artifact of its own
                artifact_id = store.add_artifact(artifact.type, artifact.uri, artifact.fingerprint)
            store.link(execution_id, artifact_id, "INPUT", name)
        for name, artifact in outputs.items():
            store.link(execution_id, artifact.id, "OUTPUT", name)


def _changed_outputs(outputs: dict[str, Artifact]) -> list[str]:
    """What differs between the recorded output artifacts and the files on disk (empty: all intact)."""
    changed = []
    for name, artifact in sorted(outputs.items()):
        if not os.path.exists(artifact.uri):
            changed.append(f"output {name!r} ({artifact.uri}) is missing")
        elif fingerprint_path(artifact.uri) != artifact.fingerprint:
            changed.append(f"output {name!r} ({artifact.uri}) changed on disk since it was recorded "
                           f"(sha256 {artifact.fingerprint[:12]}...)")
    return changed


def _hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint_path(path: str) -> str:
    """sha256 over a file's bytes, or over a folder's relative paths and file contents."""
    digest = hashlib.sha256()
    if os.path.isfile(path):
        _update_with_file(digest, path)
        return digest.hexdigest()
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Pipeline input not found: {path!r}")
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode())
            _update_with_file(digest, full)
    return digest.hexdigest()


def _update_with_file(digest, path: str) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
