"""Fault injection: training killed with SIGKILL at several points, then resumed, ends bit-identical to an
uninterrupted run.

One stage (finetune, dropout on, 16 steps, an evaluation every 4) is killed three times in a row in one output
folder: in the middle of an evaluation period, while an evaluation's resumable state is being written,
and while the final checkpoint is being written (just before its rename). After each kill nothing
half-written is loadable: the stage folder is absent, `last/` is whole. A last, unkilled rerun finishes
the stage, removes the dead runs' temporaries and must equal a straight run in weights and every logged
metric. (tests/core/test_training_run.py checks the same for a soft stage's thresholds, in one process.)
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from ltp_tf.checkpoints import is_complete, load_checkpoint
from ltp_tf.training import layout, resume_state, run
from tests.core.test_training_run import SEQ, _config, tiny  # noqa: F401  (the module-scoped fixture)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHANGES = dict(stages=("finetune",), epoch=2, save_step=4, no_load=True)  # 16 steps, 4 evaluations, keep the last

# Runs ltp_tf.train, SIGKILLing itself at a point named by argv[1] (the rest of argv are the flags).
KILLER = """
import os, signal, sys
point, sys.argv = sys.argv[1], [sys.argv[0], *sys.argv[2:]]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if point == "mid_period":  # when the batch of global step 6 is drawn (after the first evaluation at step 4)
    from ltp_tf.training import batching
    getitem = batching.TrainBatches.__getitem__
    def killing_getitem(self, index):
        if self.start_step + index == 6:
            die()
        return getitem(self, index)
    batching.TrainBatches.__getitem__ = killing_getitem
elif point == "saving_state":  # the second evaluation of this run, its state half-written
    from ltp_tf.training import resume_state
    write_json, calls = resume_state.write_json, []
    def killing_write_json(path, value, **options):
        if os.path.basename(path) == resume_state.PROGRESS_FILE:
            calls.append(path)
            if len(calls) == 2:
                die()
        write_json(path, value, **options)
    resume_state.write_json = killing_write_json
elif point == "final_checkpoint":  # the checkpoint folder written, not yet renamed into place
    from ltp_tf import atomic
    replace_folder = atomic.replace_folder
    def killing_replace_folder(src, dst):
        if os.path.isfile(os.path.join(src, "model.keras")):
            die()
        replace_folder(src, dst)
    atomic.replace_folder = killing_replace_folder
from absl import app
from ltp_tf.train import main
app.run(main)
"""


def _flags(tiny, out):  # noqa: F811
    config = _config(tiny, out, restore=tiny["dropout_checkpoint"], **CHANGES)
    return config, [f"--task={config.task}", f"--restore={config.restore}", f"--features_dir={config.features_dir}",
                    f"--output_dir={out}", f"--max_seq_length={SEQ}", "--stages=finetune", f"--bs={config.bs}",
                    f"--lr={config.lr}", f"--epoch={config.epoch}", f"--save_step={config.save_step}", "--no_load",
                    f"--final_token_threshold={config.final_token_threshold}", f"--threshold_lr={config.threshold_lr}",
                    "--verbose=0", f"--seed={config.seed}", f"--pad_to_multiple_of={config.pad_to_multiple_of}",
                    "--nojit_compile", "--mixed_precision=float32"]


def _kill_at(point, flags):
    result = subprocess.run([sys.executable, "-c", KILLER, point, *flags], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == -9, result.stderr[-3000:]  # killed by SIGKILL at that point, not failed


def _periods_done(work):
    loaded = resume_state.load_progress(work)
    return None if loaded is None else loaded.periods_done


def _temporaries(root):
    return sorted(os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files if ".tmp-" in n)


@pytest.fixture(scope="module")
def straight(tiny, tmp_path_factory):  # noqa: F811
    config, _ = _flags(tiny, str(tmp_path_factory.mktemp("straight")))
    return config, run(config)


def test_killed_three_times_then_resumed_equals_a_straight_run(tiny, straight, tmp_path):  # noqa: F811
    config, flags = _flags(tiny, str(tmp_path))
    stage_dir = layout.stage_dir(config, "finetune")
    work = layout.work_dir(stage_dir)

    _kill_at("mid_period", flags)
    assert _periods_done(work) == 1 and not os.path.exists(stage_dir)

    _kill_at("saving_state", flags)  # resumes after period 1, evaluates period 2, dies writing period 3
    assert _periods_done(work) == 2 and not os.path.exists(stage_dir)
    assert any(os.path.basename(t).startswith("last.tmp-") for t in _temporaries(work))  # the half-written state

    _kill_at("final_checkpoint", flags)
    assert _periods_done(work) == 4 and not is_complete(stage_dir)
    leftovers = _temporaries(os.path.dirname(stage_dir))
    assert any(os.path.basename(t).startswith(os.path.basename(stage_dir) + ".tmp-") for t in leftovers)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(stage_dir)

    report = run(config)  # the rerun: nothing left to train, writes the checkpoint, cleans up
    assert is_complete(stage_dir) and not os.path.exists(work)
    assert _temporaries(str(tmp_path)) == []
    straight_config, straight_report = straight
    for a, b in zip(load_checkpoint(layout.stage_dir(straight_config, "finetune")).model.get_weights(),
                    load_checkpoint(stage_dir).model.get_weights()):
        np.testing.assert_array_equal(a, b)
    expected, actual = straight_report["stages"]["finetune"], report["stages"]["finetune"]
    assert actual["dev"] == expected["dev"]
    assert actual["train"]["history"] == expected["train"]["history"]
