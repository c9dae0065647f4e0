"""The sweep's plumbing: a two-point sweep (dense + top-k) on a tiny real slice writes its table and plot.

Run as a subprocess: `benchmarks.sweep` defines absl flags that clash with `ltp_tf.train`'s in one process.
The dense point fine-tunes a tiny random 4-layer BERT folder (`--model`): the sweep's bookkeeping is the same
for any encoder, and the real MiniLM's training is tests/tf/test_train_e2e.py's.
"""

import csv
import json
import os
import shutil
import subprocess
import sys

from tests.hf_models import write_hf_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_two_point_sweep_writes_table_and_plot(tmp_path):
    out = str(tmp_path / "sweep")
    model = write_hf_model(str(tmp_path / "bert"), "bert", num_layers=4)  # top-k prunes from the 4th layer on
    command = [sys.executable, "-m", "benchmarks.sweep", "--task=sst2", f"--output_dir={out}", f"--model={model}",
               "--points=topk_0.5", "--keep_rates=0.5", "--dense_epochs=1", "--latency_examples=4",
               "--calibration_examples=8",
               "--train_flags=--max_train_examples=32,--max_eval_examples=16,--max_seq_length=32,--bs=16,"
               "--jit_compile=false"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(out, "results.json")) as f:
        rows = json.load(f)
    assert [r["point"] for r in rows] == ["dense", "topk_0.5"]
    assert rows[0]["flops_reduction"] == 1.0 and rows[1]["flops_reduction"] > 1.0
    assert rows[1]["speedup_batch1"] > 0 and rows[1]["throughput_batch32_pruned"] > 0 and rows[1]["speedup_batch32"] > 0
    with open(os.path.join(out, "results.csv")) as f:
        header = next(csv.reader(f))
    assert {"method", "setting", "dev", "flops_reduction", "speedup_batch1", "speedup_batch32", "command", "seed",
            "train_seconds"} <= set(header)
    table = open(os.path.join(out, "results.md")).read()
    assert "| top-k (LTP schedule) | keep rate=0.5 | 1 |" in table and "python -m ltp_tf.train" in table
    with open(os.path.join(out, "pareto.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    # A rerun of the same sweep reuses both rows instead of training or timing again.
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing its row") == 2
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f) == rows

    # --remeasure times both points again from their checkpoints, without retraining (same metrics and FLOPs).
    remeasured = subprocess.run([*command, "--remeasure"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert remeasured.returncode == 0, remeasured.stderr[-3000:]
    assert "reusing its row" not in remeasured.stdout and "Stage finetune:" not in remeasured.stderr
    with open(os.path.join(out, "results.json")) as f:
        again_rows = json.load(f)
    assert [(r["point"], r["dev"], r["flops_reduction"]) for r in again_rows] == \
        [(r["point"], r["dev"], r["flops_reduction"]) for r in rows]
    table = open(os.path.join(out, "results.md")).read()

    # --report_only rebuilds the table and plot from results.json without training.
    os.remove(os.path.join(out, "results.md"))
    os.remove(os.path.join(out, "pareto.png"))
    rebuilt = subprocess.run([sys.executable, "-m", "benchmarks.sweep", "--task=sst2", f"--output_dir={out}",
                              "--report_only"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert open(os.path.join(out, "results.md")).read() == table
    assert os.path.isfile(os.path.join(out, "pareto.png"))

    # A fresh clone has results.json but no checkpoints (git-ignored): a new point that starts from the dense
    # model retrains it by its recorded command first, and the rebuilt model scores what its row says.
    shutil.rmtree(os.path.join(out, "dense"))
    extended = subprocess.run([*(c for c in command if not c.startswith(("--points=", "--keep_rates="))),
                               "--points=topk_0.25", "--keep_rates=0.5,0.25"], cwd=ROOT, capture_output=True,
                              text=True, timeout=1200, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert extended.returncode == 0, extended.stderr[-3000:]
    assert "dense: its row is in results.json but its checkpoint is not on this machine" in extended.stdout
    assert "WARNING" not in extended.stdout
    with open(os.path.join(out, "results.json")) as f:
        extended_rows = {r["point"]: r for r in json.load(f)}
    assert extended_rows["dense"]["dev"] == rows[0]["dev"]
    assert abs(extended_rows["dense"]["rebuilt_dev"] - rows[0]["dev"]) <= 1e-4  # sweep.REBUILT_TOLERANCE
    assert set(extended_rows) == {"dense", "topk_0.5", "topk_0.25"} and extended_rows["topk_0.25"]["flops_reduction"] > 1.0


def test_jobs_train_independent_points_at_once(tmp_path):
    """`--jobs=2`: the two grid points train together (each logging to its own file), the top-k point starts
    from the better of them once both have finished; timing is refused while points share the machine."""
    out = str(tmp_path / "sweep")
    model = write_hf_model(str(tmp_path / "bert"), "bert", num_layers=4)
    command = [sys.executable, "-m", "benchmarks.sweep", "--task=sst2", f"--output_dir={out}", f"--model={model}",
               "--dense_lrs=1e-4,3e-3", "--points=topk_0.5", "--keep_rates=0.5", "--dense_epochs=1",
               "--train_flags=--max_train_examples=32,--max_eval_examples=16,--max_seq_length=32,--bs=16,"
               "--jit_compile=false"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    refused = subprocess.run([*command, "--jobs=2"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert refused.returncode != 0 and "set --latency_examples=0" in refused.stderr
    assert not os.path.exists(out)

    result = subprocess.run([*command, "--jobs=2", "--latency_examples=0"], cwd=ROOT, capture_output=True, text=True,
                            timeout=1200, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(out, "results.json")) as f:
        rows = {r["point"]: r for r in json.load(f)}
    assert list(rows) == ["dense_lr1e-4", "dense_lr3e-3", "topk_0.5"]
    best = max(["dense_lr1e-4", "dense_lr3e-3"], key=lambda name: rows[name]["dev"])
    assert [name for name, row in rows.items() if row["selected"]] == [best]
    assert f"/{best}/" in rows["topk_0.5"]["command"].split("--restore=")[1]
    for name in rows:  # each point's training output went to its own log, not to the sweep's
        with open(os.path.join(out, "logs", f"{name}.log")) as f:
            assert "Report:" in f.read()
    assert "Report:" not in result.stdout
