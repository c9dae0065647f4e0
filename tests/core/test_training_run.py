"""The whole training loop on a tiny model and synthetic features, on the current backend (TF or JAX).

Covers: the finetune -> soft -> hard recipe writing LTP's folder layout, thresholds moving in soft,
FLOPs going down in hard, a rerun skipping finished stages, an interrupted stage resuming exactly where
it stopped, a finished stage refusing to be silently reused with other settings, and (in a subprocess)
the JAX path with TensorFlow made unimportable.
"""

import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig
from ltp_tf.checkpoints import is_complete, load_checkpoint, save_checkpoint
from ltp_tf.data.features import TaskData, save_features
from ltp_tf.data.glue import get_task
from ltp_tf.layers.token_scoring import initial_threshold
from ltp_tf.models.surgery import with_settings
from ltp_tf.training import StagePlugins, TrainConfig, layout, run
from ltp_tf.training.training_run import default_plugins
from tests.tiny_glue import random_split, write_vocab

SEQ = 16
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _split(rng, count):
    return random_split(rng, count, SEQ, min_length=4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A features folder and a dense tiny checkpoint to `--restore` from."""
    root = tmp_path_factory.mktemp("tiny")
    vocab = write_vocab(str(root))
    rng = np.random.default_rng(0)
    data = TaskData(task=get_task("sst2"), max_seq_length=SEQ, train=_split(rng, 64), dev={"dev": _split(rng, 24)},
                    vocabulary_file=str(vocab), lowercase=True)
    features = save_features(str(root / "features"), data, source={"synthetic": True})
    keras.utils.set_random_seed(0)
    backbone = TokenPruningBackbone(vocabulary_size=40, num_layers=3, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                    dropout=0.0, max_sequence_length=SEQ)
    model = TokenPruningClassifier(backbone, num_classes=2, dropout=0.0)
    model.build()
    checkpoint = save_checkpoint(str(root / "dense"), model, task="sst2", max_seq_length=SEQ,
                                 vocabulary_file=str(vocab),
                                 metadata={"stage": "finetune", "pruning_config": TokenPruningConfig().to_dict()})
    dropout_model = with_settings(model, dropout=0.1)
    with_dropout = save_checkpoint(str(root / "dense_dropout"), dropout_model, task="sst2", max_seq_length=SEQ,
                                   vocabulary_file=str(vocab),
                                   metadata={"stage": "finetune", "pruning_config": TokenPruningConfig().to_dict()})
    return {"features": features, "checkpoint": checkpoint, "dropout_checkpoint": with_dropout}


def _config(tiny, out, **changes):
    values = dict(task="sst2", restore=tiny["checkpoint"], features_dir=tiny["features"], output_dir=str(out),
                  max_seq_length=SEQ, bs=8, lr=1e-3, epoch=1, final_token_threshold=0.02, threshold_lr=1e-3,
                  verbose=0, seed=1, pad_to_multiple_of=SEQ)
    values.update(changes)
    return TrainConfig(**values)


class _CountSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


class _Interrupt(Exception):
    pass


class _InterruptAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Interrupt


def test_recipe_layout_thresholds_flops_and_rerun(tiny, tmp_path):
    config = _config(tiny, tmp_path, stages=("finetune", "soft", "hard"), jit_compile=True)  # XLA here
    report = run(config)
    dirs = {stage: layout.stage_dir(config, stage) for stage in config.stages}
    assert dirs["hard"].startswith(dirs["soft"] + os.sep)
    for stage, folder in dirs.items():
        assert is_complete(folder), stage
        assert not os.path.exists(layout.work_dir(folder))  # no leftover training state
        assert os.path.isfile(os.path.join(folder, "metrics.csv")) and os.path.isfile(os.path.join(folder, "report.json"))
        loaded = load_checkpoint(folder)
        assert isinstance(loaded.model, TokenPruningClassifier)
        assert loaded.task == "sst2" and loaded.max_seq_length == SEQ and loaded.metadata["stage"] == stage
        assert loaded.metadata["pruning_config"] == config.pruning_config(stage).active_settings()
        assert "accuracy" in loaded.metadata["dev_metrics"]["dev"]
    with open(os.path.join(dirs["soft"], "metrics.csv")) as f:
        header = f.readline()
    assert "dev_accuracy" in header and "threshold/layer_2" in header and "kept_ratio/layer_2" in header

    # Thresholds move in soft (lambda pushes them up); hard keeps what soft learned, frozen.
    initial = [initial_threshold(i, 3, 0.02) for i in range(3)]
    soft_thresholds = report["stages"]["soft"]["thresholds"]
    assert all(abs(learned - start) > 1e-5 for learned, start in zip(soft_thresholds[1:], initial[1:]))
    np.testing.assert_allclose(report["stages"]["hard"]["thresholds"], soft_thresholds, rtol=1e-6)
    # FLOPs go down once tokens are pruned.
    assert report["stages"]["finetune"]["flops"]["reduction"] == pytest.approx(1.0)
    assert report["stages"]["hard"]["flops"]["reduction"] > 1.2
    assert report["stages"]["hard"]["kept_token_ratio"][0] == 1.0
    with open(layout.report_file(config)) as f:
        assert json.load(f)["stages"]["hard"]["flops"] == report["stages"]["hard"]["flops"]
    with open(layout.config_file(config)) as f:
        assert json.load(f)["stages"] == ["finetune", "soft", "hard"]

    # A rerun trains nothing and reports the same.
    counter = _CountSteps()
    again = run(config, StagePlugins(callbacks=lambda context: [counter]))
    assert counter.steps == 0
    assert again["stages"] == report["stages"]


def test_interrupted_stage_resumes_exactly_with_dropout(tiny, tmp_path):
    """Dropout on: the resumed stage must continue the dropout generators, not restart them."""
    changes = dict(stages=("soft",), epoch=2, save_step=4, restore=tiny["dropout_checkpoint"],  # 4 evaluations
                   no_load=True)  # keep the last weights: the ones trained after the resumption
    straight_config = _config(tiny, tmp_path / "straight", **changes)
    straight = run(straight_config)

    config = _config(tiny, tmp_path / "interrupted", **changes)
    with pytest.raises(_Interrupt):
        run(config, StagePlugins(callbacks=lambda context: [_InterruptAt(epoch=2)]))
    work = layout.work_dir(layout.stage_dir(config, "soft"))
    assert os.path.isdir(os.path.join(work, "last")) and not is_complete(layout.stage_dir(config, "soft"))
    counter = _CountSteps()
    report = run(config, StagePlugins(callbacks=lambda context: [counter]))
    assert counter.steps == 8  # the 8 steps after the second evaluation, not all 16
    assert len(report["stages"]["soft"]["train"]["history"]) == 4

    # Bit-identical: weights, learned thresholds, and every logged metric.
    for a, b in zip(load_checkpoint(layout.stage_dir(straight_config, "soft")).model.get_weights(),
                    load_checkpoint(layout.stage_dir(config, "soft")).model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert report["stages"]["soft"]["thresholds"] == straight["stages"]["soft"]["thresholds"]
    assert report["stages"]["soft"]["train"]["history"] == straight["stages"]["soft"]["train"]["history"]
    assert report["stages"]["soft"]["dev"] == straight["stages"]["soft"]["dev"]


def test_interrupted_weight_pruning_stage_restarts_and_equals_an_uninterrupted_run(tiny, tmp_path):
    """Weight pruning's scores and masks live in its optimizer wrapper, which the saved state does not restore:
    rather than resume into a result unlike an uninterrupted run, the rerun trains the stage from its start."""
    pruning = {"do_prune": True, "pruning_pattern": "2:4", "target_sparsity": 0.5, "sparsity_warm_epochs": 0,
               "cooldown_epochs": 0, "pruning_frequency": 1, "distill_loss_weight": 1.0}

    def config_in(folder):
        return TrainConfig(task="sst2", stages=("finetune",), restore=tiny["checkpoint"],
                           features_dir=tiny["features"], output_dir=str(folder), max_seq_length=SEQ, bs=8, lr=1e-3,
                           epoch=2, save_step=4, verbose=0, seed=1, pad_to_multiple_of=SEQ, weight_pruning=pruning)

    def with_callback(config, callback):  # the run's own plugins (weight pruning) and one callback more
        plugins = default_plugins(config)
        return dataclasses.replace(plugins, callbacks=lambda context: [*plugins.callbacks(context), callback])

    straight_config = config_in(tmp_path / "straight")
    straight = run(straight_config)
    assert straight["stages"]["finetune"]["flops"]["weight_density"] == pytest.approx(0.5, abs=0.05)
    config = config_in(tmp_path / "interrupted")
    with pytest.raises(_Interrupt):
        run(config, with_callback(config, _InterruptAt(epoch=2)))
    assert os.path.isdir(layout.work_dir(layout.stage_dir(config, "finetune")))
    counter = _CountSteps()
    report = run(config, with_callback(config, counter))
    assert counter.steps == 16  # every step of the stage, not the 8 after the interruption
    assert report["stages"]["finetune"]["dev"] == straight["stages"]["finetune"]["dev"]
    for a, b in zip(load_checkpoint(layout.stage_dir(straight_config, "finetune")).model.get_weights(),
                    load_checkpoint(layout.stage_dir(config, "finetune")).model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_finished_stage_with_other_settings_is_an_error(tiny, tmp_path):
    run(_config(tiny, tmp_path, stages=("finetune",)))
    with pytest.raises(ValueError, match="trained with other settings \\(differing: epoch\\)"):
        run(_config(tiny, tmp_path, stages=("finetune",), finetune_epoch=2))


def test_finished_dense_stage_ignores_pruning_knobs_it_does_not_use(tiny, tmp_path):
    run(_config(tiny, tmp_path, stages=("finetune",)))
    counter = _CountSteps()
    run(_config(tiny, tmp_path, stages=("finetune",), mask_loss_weight=0.7, temperature=0.5, token_keep_rate=0.2),
        StagePlugins(callbacks=lambda context: [counter]))
    assert counter.steps == 0


def test_restore_for_another_task_is_refused(tiny, tmp_path):
    with pytest.raises(ValueError, match="`--restore` is a checkpoint for task 'sst2', not 'mrpc'"):
        run(_config(tiny, tmp_path, task="mrpc", stages=("finetune",), features_dir=None))


def test_cli_on_jax_without_tensorflow(tiny, tmp_path):
    """The GPU machine's path: KERAS_BACKEND=jax, features from disk, no TensorFlow importable."""
    script = ("import sys; sys.modules['tensorflow'] = None\n"
              "from absl import app\nfrom ltp_tf.train import main\napp.run(main)\n")
    args = ["--task=sst2", f"--restore={tiny['checkpoint']}", f"--features_dir={tiny['features']}",
            f"--output_dir={tmp_path}", f"--max_seq_length={SEQ}", "--bs=8", "--lr=1e-3", "--epoch=1",
            "--stages=soft,hard", "--verbose=0", f"--pad_to_multiple_of={SEQ}"]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(tmp_path, "SST2", "report.json")) as f:
        report = json.load(f)
    assert set(report["stages"]) == {"soft", "hard"}
    assert report["stages"]["hard"]["checkpoint"].startswith(str(tmp_path))
