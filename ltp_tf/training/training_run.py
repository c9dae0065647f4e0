"""`run`: one training run (`python -m ltp_tf.train`): checks, data, each requested stage in order, the report.

Stages already complete in the output folder are skipped (their report is read back), so rerunning a
command resumes it: finished stages are not retrained, an interrupted one continues from its last
evaluation. Data and models are only loaded when some stage still has to train.

Everything a run could reject (flags, data rows, `--restore`) is checked by `preflight` before anything
is written. A run then holds `<out>/<TASK>/.lock` (`ltp_tf.locking`) until it ends, so a second run on
the same output folder and task fails at once instead of both writing it, and removes the temporary
folders killed runs left beside the stage checkpoints.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from absl import logging

from ltp_tf import checkpoints
from ltp_tf.atomic import remove_abandoned_siblings, write_json
from ltp_tf.data import features as features_lib
from ltp_tf.data.glue import default_glue_dir
from ltp_tf.data.tokenization import check_tokenizer_folder
from ltp_tf.locking import exclusive_lock
from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.training import layout
from ltp_tf.training.modeling import pretrained_classifier
from ltp_tf.training.plugins import StagePlugins
from ltp_tf.training.report import format_summary, run_report
from ltp_tf.training.runtime import resolve_dtype_policy
from ltp_tf.training.stages import StageResult, finalize, fingerprint, run_stage, stage_settings_record
from ltp_tf.training.train_config import TrainConfig


def preflight(config: TrainConfig) -> None:
    """Checks what flags alone cannot, writing nothing: every data row (or the features), `--restore` whole
    and made for this task and stage, and the checkpoints of this run's finished stages whole.

    Raises:
        ValueError or FileNotFoundError: naming the file (and line) that is wrong.
    """
    task = config.task_spec
    if config.features_dir is not None and features_lib.read_features_record(config.features_dir) is not None:
        features_lib.check_features(config.features_dir, task, config.max_seq_length)
    elif config.data_source == "tsv":
        features_lib.check_splits(task, config.data_dir)
    if config.model is not None and os.path.isdir(config.model):
        check_tokenizer_folder(config.model)  # the folder tokenizes the data and gives `finetune` its weights
    for stage in config.training_stages:
        source = layout.source_dir(config, stage)
        if source is not None and source != config.restore and checkpoints.is_complete(source):
            checkpoints.check_checkpoint(source)
    if any(config.distils(stage) for stage in config.training_stages):
        layout.teacher_dir(config)  # raises if there is no dense teacher to distil from
    if config.restore is not None:
        restore = checkpoints.check_checkpoint(config.restore)
        if restore.task != task.name:
            raise ValueError(f"`--restore` is a checkpoint for task {restore.task!r}, not {task.name!r}. "
                             f"Received: --restore={config.restore} --task={config.task}")
        prune_mode = restore.prune_mode
        if "hard" in config.stages and "soft" not in config.stages and prune_mode != "absolute_threshold":
            raise ValueError("The hard stage fine-tunes with thresholds learned by a soft stage; --restore has "
                             f"prune_mode={prune_mode!r}. Restore a soft-stage checkpoint, add `soft` to --stages, or "
                             f"use the `threshold` stage for manual thresholds. Received: --restore={config.restore}")


def run(config: TrainConfig, plugins: StagePlugins | None = None, checked: bool = False) -> dict[str, Any]:
    """Runs `config.stages`; returns (and writes to `<out>/<TASK>/report.json`) the run's report.

    `plugins` default: weight pruning / distillation when `config.weight_pruning` asks for it. `checked`:
    the caller already ran `preflight(config)`.

    Raises:
        FolderLockedError: another live run holds `<out>/<TASK>/.lock`.
    """
    if not checked:
        preflight(config)
    if plugins is None:
        plugins = default_plugins(config)
    with exclusive_lock(layout.task_dir(config), "training run on this --output_dir and --task"):
        return _run_locked(config, plugins)


def _run_locked(config: TrainConfig, plugins: StagePlugins) -> dict[str, Any]:
    import keras

    keras.utils.set_random_seed(config.seed)
    write_json(layout.config_file(config), config.to_dict(), default=float)
    if "tokenize" in config.stages:
        write_features(config)

    loader = _DataLoader(config)
    reports: dict[str, dict[str, Any]] = {}
    models: dict[str, TokenPruningClassifier] = {}
    for stage in config.training_stages:
        checkpoint_dir = layout.stage_dir(config, stage)
        for path in remove_abandoned_siblings(checkpoint_dir):
            logging.info("Removed %s, left by a killed run.", path)
        if checkpoints.is_complete(checkpoint_dir):
            reports[stage] = _completed_report(config, stage, checkpoint_dir, loader)
            continue
        result: StageResult = run_stage(config, stage, loader.data(), _source_model(config, stage, models),
                                        plugins)
        models[stage] = result.model
        reports[stage] = result.report

    report = run_report(config.to_dict(), reports)
    if reports:
        write_json(layout.report_file(config), report, default=float)
        print(format_summary(report), flush=True)
        print(f"Report: {layout.report_file(config)}", flush=True)
    return report


def default_plugins(config: TrainConfig) -> StagePlugins:
    """The stage plugins a config asks for: weight pruning and distillation (`ltp_tf.sparsity`), or none."""
    if config.weight_pruning is None:
        return StagePlugins()
    from ltp_tf.sparsity import WeightPruningConfig
    from ltp_tf.training.weight_pruning import weight_pruning_plugins

    return weight_pruning_plugins(WeightPruningConfig.from_dict(config.weight_pruning))


def write_features(config: TrainConfig) -> None:
    """The `tokenize` stage: tokenizes every split of the task (all examples) into `--features_dir`."""
    record = features_lib.read_features_record(config.features_dir)
    if record is not None:
        logging.info("Features already at %s; skipping tokenization.", config.features_dir)
        return
    data = _tokenize(config, subset=False)
    features_lib.save_features(config.features_dir, data, source={
        "data_dir": os.path.abspath(config.data_dir or default_glue_dir()),
        "tokenizer": config.restore or config.model or "packaged MiniLM"})
    logging.info("Wrote tokenized features to %s", config.features_dir)


class _DataLoader:
    """Loads the task's data once, the first time a stage needs it."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self._data: features_lib.TaskData | None = None

    @property
    def num_train(self) -> int:
        """Training examples after `--max_train_examples` (without tokenizing, when features are on disk)."""
        if self._data is not None:
            return len(self._data.train)
        config = self.config
        record = (features_lib.read_features_record(config.features_dir) if config.features_dir is not None else None)
        if record is not None:
            total = record["splits"]["train"]
        else:
            from ltp_tf.data.sources import read_examples

            total = len(read_examples(config.task_spec, "train", config.data_dir, config.data_source))
        return min(total, config.max_train_examples or total)

    def data(self) -> features_lib.TaskData:
        if self._data is None:
            config = self.config
            if config.features_dir is not None:
                if features_lib.read_features_record(config.features_dir) is None:
                    write_features(config)
                self._data = features_lib.load_features(
                    config.features_dir, config.task_spec, config.max_seq_length, _train_subset(config),
                    config.max_eval_examples)
            else:
                self._data = _tokenize(config, subset=True)
        return self._data


def _train_subset(config: TrainConfig):
    """Maps the number of training examples to the indices `--max_train_examples` keeps."""
    return functools.partial(features_lib.subset_indices, max_examples=config.max_train_examples, seed=config.seed)


def _tokenize(config: TrainConfig, subset: bool) -> features_lib.TaskData:
    if config.restore is not None:
        tokenizer = features_lib.Tokenizer.from_checkpoint(config.restore, checkpoints.read_checkpoint_info(config.restore).metadata,
                                                           config.max_seq_length)
    else:
        from ltp_tf.models.pretrained import packaged_minilm_path

        tokenizer = features_lib.Tokenizer.from_model(config.model or packaged_minilm_path(), config.max_seq_length)
    vocabulary_file = tokenizer.write_files(os.path.dirname(layout.vocabulary_file(config)))
    return features_lib.tokenize_task(config.task_spec, tokenizer, config.data_dir, config.max_seq_length,
                                      vocabulary_file, train_index_fn=_train_subset(config) if subset else None,
                                      max_eval_examples=config.max_eval_examples if subset else None,
                                      data_source=config.data_source)


def _source_model(config: TrainConfig, stage: str, models: dict[str, TokenPruningClassifier]) -> TokenPruningClassifier:
    """The model `stage` starts from: in memory if this command just trained it, else from disk or pretrained."""
    source_dir = layout.source_dir(config, stage)
    for name, model in models.items():
        if layout.stage_dir(config, name) == source_dir:
            return model
    if source_dir is not None:
        return checkpoints.load_checkpoint(source_dir).model
    return pretrained_classifier(config.model, config.task_spec.num_classes, resolve_dtype_policy(config.mixed_precision))


def _completed_report(config: TrainConfig, stage: str, checkpoint_dir: str, loader: _DataLoader) -> dict[str, Any]:
    """The report of a stage finished earlier; its settings must be this command's."""
    metadata = checkpoints.read_checkpoint_info(checkpoint_dir).metadata
    expected = stage_settings_record(config, stage, loader.num_train)
    if metadata.get("fingerprint") != fingerprint(expected):
        recorded = metadata.get("settings", {})
        differing = sorted(k for k in set(recorded) | set(expected) if recorded.get(k) != expected.get(k))
        raise ValueError(f"{checkpoint_dir} holds a finished {stage} stage trained with other settings "
                         f"(differing: {', '.join(differing)}). Delete that folder to retrain it, or choose another "
                         "--output_dir.")
    finalize(checkpoint_dir)
    logging.info("Stage %s already complete at %s; skipping (delete the folder to retrain).", stage, checkpoint_dir)
    return metadata["report"]
