"""Prints a pipeline root's lineage: every execution with its status, timings, inputs and outputs.

    python -m pipelines.lineage --pipeline_root=pipeline_root/glue_ltp_sst2
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

from absl import app, flags

from pipelines.local_runner import METADATA_FILE
from pipelines.metadata_store import MetadataStore

_ROOT = flags.DEFINE_string("pipeline_root", None, "Pipeline root folder (holds metadata.sqlite).")


def format_lineage(pipeline_root: str) -> str:
    """The lineage as text, one block per execution."""
    path = os.path.join(pipeline_root, METADATA_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No pipeline metadata at {path}: has the pipeline run with this --pipeline_root?")
    lines = []
    with contextlib.closing(MetadataStore(path)) as store:
        for execution, inputs, outputs in store.iter_lineage():
            took = f"{execution.finished - execution.started:.1f} s" if execution.finished else "-"
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(execution.started))
            lines.append(f"#{execution.id} {execution.component} [{execution.status}] run {execution.run_id} "
                         f"at {when}, {took}, fingerprint {execution.fingerprint[:12]}"
                         + (f" — {execution.message}" if execution.message else ""))
            for kind, artifacts in (("in ", inputs), ("out", outputs)):
                for name, artifact in artifacts.items():
                    lines.append(f"    {kind} {name}: {artifact.type} {artifact.uri} "
                                 f"(#{artifact.id}, sha256 {artifact.fingerprint[:12]})")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    del argv
    if not _ROOT.value:
        sys.exit("pipelines.lineage: error: `--pipeline_root` is required (the folder holding metadata.sqlite).")
    try:
        print(format_lineage(_ROOT.value))
    except FileNotFoundError as error:
        sys.exit(f"pipelines.lineage: error: {error}")


if __name__ == "__main__":
    app.run(main)
