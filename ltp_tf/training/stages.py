"""`run_stage`: trains one stage (finetune, soft, hard, topk or threshold) and writes its checkpoint.

A stage builds its model from the source checkpoint's model (`modeling.stage_model`), trains it with
`fit` for whole evaluation periods (`--save_step` steps, or one epoch each), evaluates on dev after
each, keeps the best weights (the last ones with `--no_load`, weight pruning, or a soft stage with a FLOPs
target), and writes the checkpoint folder when done. An interrupted stage resumes from its last evaluation: same weights, optimizer state, schedule
position, batch order and dropout masks, so its result is bit-identical to an uninterrupted run's. With a
FLOPs target (soft) or distillation, the model trains inside a `TokenPruningTrainer` (its multiplier is
resumed too) and batches carry the cached teacher outputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from typing import Any

import keras
from absl import logging

from ltp_tf import checkpoints
from ltp_tf.atomic import write_json
from ltp_tf.data.features import TaskData
from ltp_tf.data.glue_metrics import primary_metric
from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.sparsity import Distiller
from ltp_tf.training import layout
from ltp_tf.training import resume_state
from ltp_tf.training import teacher_cache
from ltp_tf.training.batching import TrainBatches, fit_input, steps_per_epoch
from ltp_tf.training.evaluation import Evaluator
from ltp_tf.training.evaluation_callback import EvaluateAndSaveState
from ltp_tf.training.modeling import float32_copy, stage_model, thresholds
from ltp_tf.training.optim import make_optimizer
from ltp_tf.training.plugins import StageContext, StagePlugins
from ltp_tf.training.report import stage_report
from ltp_tf.training.runtime import model_scope, resolve_dtype_policy, resolve_jit_compile, seed_random_state
from ltp_tf.training.token_pruning_trainer import TokenPruningTrainer
from ltp_tf.training.train_config import TrainConfig

REPORT_FILE = "report.json"


@dataclasses.dataclass(frozen=True)
class StageResult:
    """A finished stage: its checkpoint folder, the float32 model stored there, and its report."""

    checkpoint_dir: str
    model: TokenPruningClassifier | None
    report: dict[str, Any]


def stage_settings_record(config: TrainConfig, stage: str, num_train: int) -> dict[str, Any]:
    """Everything that shapes a stage's result; a resumed or skipped stage must match it."""
    return {
        "stage": stage, **dataclasses.asdict(config.stage_settings(stage)),
        "pruning_config": config.pruning_config(stage).active_settings(), "bs": config.bs, "seed": config.seed,
        "max_seq_length": config.max_seq_length, "num_train_examples": num_train, "save_step": config.save_step,
        "weight_decay": config.weight_decay, "warmup_ratio": config.warmup_ratio,
        "max_grad_norm": config.max_grad_norm, "no_load": config.no_load,
        "source": _source_record(config, stage),
        # Listed only when set, so stages trained before these options keep their fingerprints.
        **({"objective": config.objective_settings(stage)} if config.objective_settings(stage) else {}),
        **({"soft_mask": config.soft_mask} if stage == "soft" and config.soft_mask != "sigmoid" else {}),
        **({"teacher": os.path.abspath(layout.teacher_dir(config))} if config.distils(stage) else {}),
    }


def _source_record(config: TrainConfig, stage: str) -> str:
    """Where a stage starts from: an absolute checkpoint folder (however `--restore` spelled it) or the model."""
    source = layout.source_dir(config, stage)
    if source is not None:
        return os.path.abspath(source)
    return config.model or "packaged MiniLM"


def fingerprint(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_stage(config: TrainConfig, stage: str, data: TaskData, source: TokenPruningClassifier,
              plugins: StagePlugins = StagePlugins()) -> StageResult:
    """Trains `stage` from the `source` model and writes its checkpoint (see the module docstring)."""
    settings = config.stage_settings(stage)
    checkpoint_dir = layout.stage_dir(config, stage)
    per_epoch = steps_per_epoch(len(data.train), config.bs)
    period = config.save_step or per_epoch
    num_periods = math.ceil(settings.epoch * per_epoch / period)
    context = StageContext(config=config, stage=stage, settings=settings, checkpoint_dir=checkpoint_dir,
                           work_dir=layout.work_dir(checkpoint_dir), steps_per_epoch=per_epoch,
                           total_steps=num_periods * period)
    record = stage_settings_record(config, stage, len(data.train))

    teacher = _teacher_outputs(config, stage, data)
    model = _compiled_model(context, data, source, plugins)
    seed_random_state(model, config.seed, stage)
    state = _progress_to_continue(context.work_dir, fingerprint(record), model,
                                  resumable=not (config.weight_pruning and config.weight_pruning["do_prune"]))
    evaluator = Evaluator(_student(model), data.task, config.eval_batch_size, config.pad_to_multiple_of,
                          resolve_jit_compile(config.jit_compile))
    dev_split = data.task.dev_splits[0]
    evaluate_callback = EvaluateAndSaveState(
        evaluator, data.dev[dev_split], primary_metric(data.task), context.work_dir, state,
        resume_state.load_best(context.work_dir), period,
        log_pruning=config.pruning_config(stage).prune_mode != "none")
    start = time.time()
    if state.periods_done < num_periods:
        _fit(context, data, model, state.periods_done, period, [*plugins.callbacks(context), evaluate_callback],
             teacher)

    # Final weights: the best on dev, or the last ones with --no_load.
    best = evaluate_callback.best
    keep_last = best is None or _keeps_last_weights(config, stage)
    final_period = num_periods if keep_last else best.period
    if final_period != num_periods:
        model.load_weights(resume_state.best_weights_file(context.work_dir))
    # The last evaluation of this run already measured the final weights if they are its weights.
    reuse = evaluate_callback.last_evaluation if final_period == evaluate_callback.progress.periods_done else None
    evaluations = {split: reuse if split == dev_split and reuse is not None else evaluator.evaluate(values)
                   for split, values in data.dev.items()}
    train_info = {"steps": context.total_steps, "steps_per_epoch": per_epoch, "evaluation_period": period,
                  "seconds_this_run": round(time.time() - start, 1), "kept": "last" if keep_last else "best",
                  "best_period": None if best is None else best.period,
                  "history": list(evaluate_callback.progress.history)}
    if isinstance(model, TokenPruningTrainer) and model.multiplier is not None:
        train_info["flops_multiplier"] = model.multiplier
    report = stage_report(stage, checkpoint_dir, evaluations, thresholds(_student(model)), train_info,
                          target_flops_reduction=config.target_flops_reduction if stage in ("soft", "hard") else None)

    final = _student(model) if plugins.save_transform is None else plugins.save_transform(_student(model), context)
    stored = float32_copy(final)
    checkpoints.save_checkpoint(
        checkpoint_dir, stored, task=data.task.name, max_seq_length=data.max_seq_length,
        vocabulary_file=data.vocabulary_file,
        metadata={"stage": stage, "lowercase": data.lowercase, "pruning_config": config.pruning_config(stage).active_settings(),
                  "dev_metrics": report["dev"], "report": report, "settings": record,
                  "fingerprint": fingerprint(record), "train_config": config.to_dict()})
    finalize(checkpoint_dir)
    return StageResult(checkpoint_dir, stored, report)


def _keeps_last_weights(config: TrainConfig, stage: str) -> bool:
    """Whether a stage ends with its last weights instead of its best on dev: with `--no_load`, and where an
    earlier evaluation may predate what the stage must reach — the target sparsity of weight pruning, or the
    FLOPs target of a soft stage (its controller reaches the target over the stage: the best dev score of an
    early epoch is a model that prunes less, seen on STS-B as 1.93x kept instead of 2.06x)."""
    return (config.no_load or bool(config.weight_pruning and config.weight_pruning["do_prune"])
            or (stage == "soft" and config.target_flops_reduction is not None))


def _compiled_model(context: StageContext, data: TaskData, source: TokenPruningClassifier,
                    plugins: StagePlugins) -> keras.Model:
    """The stage's model from `source`, transformed by the plugins and compiled (in the model scope)."""
    config, settings = context.config, context.settings
    with model_scope(config):
        model = stage_model(source, context.stage, config.pruning_config(context.stage),
                            settings.threshold_lr / settings.lr, resolve_dtype_policy(config.mixed_precision))
        if plugins.model_transform is not None:
            model = plugins.model_transform(model, context)
        objective = config.objective_settings(context.stage)
        if objective:
            model = TokenPruningTrainer(model, **objective, name="trainer")
            model.build()
        loss = _task_loss(data)
        if plugins.loss_transform is not None:
            loss = plugins.loss_transform(loss, context)
        model.compile(optimizer=make_optimizer(settings.lr, context.total_steps, config.warmup_ratio,
                                               config.weight_decay, config.max_grad_norm, config.lr_scheduler_type),
                      loss=loss, metrics=_train_metrics(data), jit_compile=resolve_jit_compile(config.jit_compile))
    return model


def _student(model: keras.Model) -> keras.Model:
    """The classifier a stage trains, taken out of its training wrapper (a `TokenPruningTrainer`, or weight
    pruning's `Distiller`) if it has one: what is evaluated and saved."""
    return model.student if isinstance(model, (TokenPruningTrainer, Distiller)) else model


def _teacher_outputs(config: TrainConfig, stage: str, data: TaskData) -> dict[str, Any] | None:
    """The dense teacher's per-example outputs on the training split when `stage` distils (cached on disk)."""
    if not config.distils(stage):
        return None
    return teacher_cache.teacher_outputs(layout.teacher_cache_dir(config), layout.teacher_dir(config), data.train,
                                         hidden=config.kd_hidden_weight > 0, batch_size=config.eval_batch_size,
                                         pad_to_multiple_of=config.pad_to_multiple_of)


def _fit(context: StageContext, data: TaskData, model: keras.Model, periods_done: int, period: int,
         callbacks: list[keras.callbacks.Callback], teacher: dict[str, Any] | None = None) -> None:
    """Trains the remaining evaluation periods; the CSV log goes last, after evaluation added its values."""
    config = context.config
    first_step = periods_done * period
    logging.info("Stage %s: %d steps (%d per epoch, evaluation every %d), from step %d -> %s", context.stage,
                 context.total_steps, context.steps_per_epoch, period, first_step, context.checkpoint_dir)
    batches = TrainBatches(data.train, config.bs, config.seed, num_steps=context.total_steps - first_step,
                           start_step=first_step, pad_to_multiple_of=config.pad_to_multiple_of,
                           example_inputs=teacher)
    os.makedirs(context.work_dir, exist_ok=True)
    csv_log = keras.callbacks.CSVLogger(resume_state.metrics_file(context.work_dir), append=True)
    model.fit(fit_input(batches), epochs=context.total_steps // period, initial_epoch=periods_done,
              steps_per_epoch=period, shuffle=False, callbacks=[*callbacks, csv_log], verbose=config.verbose)


def finalize(checkpoint_dir: str) -> None:
    """After a stage's checkpoint is written: puts its CSV log and report beside it, drops the work folder.

    Idempotent, so a run interrupted between the checkpoint and this step finishes it when rerun.
    """
    work_dir = layout.work_dir(checkpoint_dir)
    if not os.path.isdir(work_dir):
        return
    csv = resume_state.metrics_file(work_dir)
    if os.path.isfile(csv):
        shutil.copyfile(csv, os.path.join(checkpoint_dir, resume_state.METRICS_FILE))
    report = checkpoints.read_checkpoint_info(checkpoint_dir).metadata["report"]
    write_json(os.path.join(checkpoint_dir, REPORT_FILE), report)
    shutil.rmtree(work_dir)


def _progress_to_continue(work_dir: str, expected: str, model: keras.Model,
                          resumable: bool = True) -> resume_state.Progress:
    """The progress to continue from: the work folder's if it matches these settings, else a fresh start.

    An interrupted run that is not `resumable` (weight pruning: its gradient scores and masks live in the
    pruning optimizer, which the saved state does not restore, so a resumed run would not equal an
    uninterrupted one) is discarded with a warning, and the stage trains from its start.
    """
    saved = resume_state.load_progress(work_dir)
    if saved is not None and saved.fingerprint != expected:
        logging.warning("Discarding the interrupted run in %s: it was started with other settings.", work_dir)
        shutil.rmtree(work_dir)
        saved = None
    if saved is None:
        return resume_state.Progress(periods_done=0, fingerprint=expected)
    if not resumable:
        logging.warning("Restarting the interrupted weight-pruning run in %s from its start (%d evaluation "
                        "period(s) were done): its gradient scores and masks are not saved, so resuming would not "
                        "equal an uninterrupted run.", work_dir, saved.periods_done)
        shutil.rmtree(work_dir)
        return resume_state.Progress(periods_done=0, fingerprint=expected)
    resume_state.restore_last(work_dir, model)
    logging.info("Resuming from %s after %d evaluation period(s).", work_dir, saved.periods_done)
    return saved


def _task_loss(data: TaskData) -> keras.losses.Loss:
    if data.task.is_regression:
        return keras.losses.MeanSquaredError()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _train_metrics(data: TaskData) -> list:
    return [] if data.task.is_regression else [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
