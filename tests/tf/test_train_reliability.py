"""A training run's safety nets: bad data and bad checkpoints fail before anything is written, one run
per output folder, and leftovers of killed runs are cleaned.

Reuses the tiny synthetic checkpoint of tests/core/test_training_run.py; the data are small SST-2-style
TSV files written here.
"""

import os
import shutil
import subprocess
import sys

import pytest

from ltp_tf.atomic import temporary_name
from ltp_tf.checkpoints import check_checkpoint, is_complete
from ltp_tf.locking import FolderLockedError, exclusive_lock
from ltp_tf.training import layout, run
from ltp_tf.training.training_run import preflight
from tests.core.test_training_run import _config, tiny  # noqa: F401  (the module-scoped fixture)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOOD_ROWS = "sentence\tlabel\nw1 w2 w3\t1\nw4 w5\t0\n"


def _glue_dir(tmp_path, train: bytes) -> str:
    folder = tmp_path / "glue" / "SST-2"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_bytes(train)
    (folder / "dev.tsv").write_text(GOOD_ROWS)
    return str(tmp_path / "glue")


@pytest.mark.parametrize("train, message", [
    (GOOD_ROWS.encode() + b"caf\xe9 au lait\t1\n", r"train.tsv:4: not UTF-8 text \(invalid continuation byte\)"),
    (GOOD_ROWS.encode() + b"a tab\tinside\t1\n",
     r"train.tsv:4: malformed SST-2 row: 3 tab-separated columns, but the header has 2; every row needs 2 "
     r"\(a tab inside a text adds one\)"),
    (GOOD_ROWS.encode() + b"no label\n",
     r"train.tsv:4: malformed SST-2 row: 1 tab-separated columns, but the header has 2"),
    (GOOD_ROWS.encode() + b"w1\tpositive\n", r"train.tsv:4: SST-2 label must be one of \['0', '1'\]"),
])
def test_bad_data_fails_before_anything_is_written(tiny, tmp_path, train, message):  # noqa: F811
    config = _config(tiny, tmp_path / "out", features_dir=None, data_dir=_glue_dir(tmp_path, train))
    with pytest.raises(ValueError, match=message):
        run(config)
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("damage, message", [
    (lambda path: open(path, "r+b").truncate(os.path.getsize(path) // 2), "is not a loadable .keras model"),
    (lambda path: open(path, "wb").write(b"not a model"), "is not a loadable .keras model"),
    (lambda path: open(os.path.join(os.path.dirname(path), "checkpoint.json"), "w").write("{"), "is not valid JSON"),
])
def test_damaged_restore_fails_in_preflight(tiny, tmp_path, damage, message):  # noqa: F811
    restore = shutil.copytree(tiny["checkpoint"], tmp_path / "restore")
    check_checkpoint(str(restore))  # whole before the damage
    damage(os.path.join(restore, "model.keras"))
    with pytest.raises(ValueError, match=message):
        preflight(_config(tiny, tmp_path / "out", restore=str(restore)))
    assert not os.path.exists(tmp_path / "out")



def test_model_folder_without_its_tokenizer_fails_before_anything_is_written(tiny, tmp_path):  # noqa: F811
    model = tmp_path / "roberta"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "roberta"}')
    (model / "vocab.json").write_text("{}")
    config = _config(tiny, tmp_path / "out", restore=None, model=str(model), features_dir=None,
                     stages=("finetune",))
    with pytest.raises(FileNotFoundError, match=r"No roberta tokenizer in .*merges\.txt"):
        run(config)
    assert not os.path.exists(tmp_path / "out")

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ltp_tf.train", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]  # TensorFlow may log to stderr before the error line


def _lock_holder(folder):
    """A process that holds `folder`'s lock the way a run does (loads ltp_tf/locking.py alone: no TensorFlow)."""
    script = ("import importlib.util, sys, time\n"
              "spec = importlib.util.spec_from_file_location('locking', sys.argv[1])\n"
              "locking = importlib.util.module_from_spec(spec); spec.loader.exec_module(locking)\n"
              "with locking.exclusive_lock(sys.argv[2], 'training run on this --output_dir and --task'):\n"
              "    print('locked', flush=True); time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", script, os.path.join(REPO, "ltp_tf", "locking.py"), folder],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_one_run_per_output_folder_a_dead_holder_does_not_block_and_dead_leftovers_go(tiny, tmp_path):  # noqa: F811
    config = _config(tiny, tmp_path, stages=("soft",))
    task_dir = layout.task_dir(config)
    live_work = layout.work_dir(layout.stage_dir(config, "soft"))
    os.makedirs(os.path.join(live_work, "last"))  # as a running run with another seed would have it
    holder = _lock_holder(task_dir)
    try:
        result = _cli("--task=sst2", "--stages=soft", f"--restore={tiny['checkpoint']}",
                      f"--features_dir={tiny['features']}", f"--output_dir={tmp_path}", "--max_seq_length=16",
                      "--seed=7", "--epoch=1", "--bs=8", "--final_token_threshold=0.02", "--lr=1e-3")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert _last_line(result.stderr) == (
            f"ltp_tf.train: error: {task_dir}/.lock is held by another training run on this --output_dir and --task "
            f"(pid {holder.pid}); wait for it to finish, or choose another folder.")
        assert os.path.isdir(os.path.join(live_work, "last"))  # the live run's folder is untouched
        with pytest.raises(FolderLockedError, match=f"pid {holder.pid}"):
            run(config)
    finally:
        holder.kill()  # SIGKILL: the lock file stays behind, the lock does not
        holder.wait()
    assert os.path.isfile(os.path.join(task_dir, ".lock"))

    # Temporaries beside the stage checkpoint: one of a dead writer (removed), one of a live one (kept).
    stage_dir = layout.stage_dir(config, "soft")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = temporary_name(stage_dir).replace(f".tmp-{os.getpid()}-", f".tmp-{dead.stdout.strip()}-")
    live = temporary_name(stage_dir)  # this process's: still running, so it must stay
    for folder in (abandoned, live):
        shutil.copytree(tiny["checkpoint"], folder)
    run(config)
    assert is_complete(stage_dir)
    assert not os.path.exists(abandoned) and os.path.isdir(live)
    with exclusive_lock(task_dir, "test"):  # released when the run ended
        pass


def test_cli_reports_bad_data_in_one_line_and_writes_nothing(tiny, tmp_path):  # noqa: F811
    glue = _glue_dir(tmp_path, GOOD_ROWS.encode() + b"caf\xe9\t1\n")
    out = tmp_path / "out"
    result = _cli("--task=sst2", f"--data_dir={glue}", f"--output_dir={out}", "--stages=finetune,soft,hard")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert _last_line(result.stderr) == (f"ltp_tf.train: error: {glue}/SST-2/train.tsv:4: not UTF-8 text (invalid "
                                     "continuation byte); GLUE TSV files must be UTF-8.")
    assert not os.path.exists(out)
