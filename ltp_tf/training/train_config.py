"""`TrainConfig`: every setting of a training run, typed, frozen and validated before any work starts.

Field names are the command-line flag names (`ltp_tf.training.flags` defines one flag per field; the
`mask_loss_weight` flag is `--lambda`), so a validation error reads "`--lr` must be > 0. Received: --lr=-1"
whether the config came from flags or from Python code. `STAGE_PRUNE_MODES` is the one stage -> token-pruning
mode table.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

from ltp_tf.data.glue import get_task
from ltp_tf.token_pruning_config import SCORING_MODES, SOFT_MASKS, TokenPruningConfig
from ltp_tf.validation import check_int_at_least, check_int_in_range, check_number, check_one_of

# Stages in the order they run. `tokenize` only writes `--features_dir`.
STAGES = ("tokenize", "finetune", "soft", "hard", "topk", "threshold")
TRAINING_STAGES = STAGES[1:]
# The stage whose checkpoint each stage starts from when both run in one command.
STAGE_SOURCES = {"finetune": None, "soft": "finetune", "hard": "soft", "topk": "finetune", "threshold": "finetune"}
# The token-pruning mode each training stage trains with.
STAGE_PRUNE_MODES = {"finetune": "none", "soft": "absolute_threshold", "hard": "absolute_threshold", "topk": "topk",
                     "threshold": "absolute_threshold"}
# Stages that read their hyper-parameters from the `--hard_*` flags (LTP runs the baselines like the hard stage).
HARD_LIKE = ("hard", "topk", "threshold")
# Stages that can distil from the dense teacher (`--kd_weight`, `--kd_hidden_weight`).
KD_STAGES = ("soft", "hard", "topk", "threshold")
LR_SCHEDULERS = ("linear", "constant")
MIXED_PRECISION = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
DEFAULT_OUTPUT_DIR = "outputs"


@dataclasses.dataclass(frozen=True)
class StageSettings:
    """Optimisation settings of one stage, resolved from the global and per-stage flags."""

    lr: float
    epoch: int
    threshold_lr: float


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run. See `docs/training.md` for every field (they are the flags of `ltp_tf.train`).

    `None` means "not set": `model` defaults to the packaged MiniLM, `data_dir` to the shared GLUE folder,
    per-stage `*_lr` / `*_epoch` to `lr` / `epoch`, `threshold_lr` to the stage's learning rate,
    `save_step` to "evaluate once per epoch", `eval_bs` to `bs`, `jit_compile` to "XLA on GPU/TPU only".
    """

    task: str
    stages: tuple[str, ...] = ("finetune", "soft", "hard")
    model: str | None = None
    restore: str | None = None
    output_dir: str = DEFAULT_OUTPUT_DIR
    data_dir: str | None = None
    data_source: str = "tsv"
    features_dir: str | None = None
    max_seq_length: int = 128
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    seed: int = 42
    # Optimisation (LTP's run.py names).
    lr: float = 2e-5
    epoch: int = 3
    bs: int = 32
    eval_bs: int | None = None
    finetune_lr: float | None = None
    finetune_epoch: int | None = None
    soft_lr: float | None = None
    soft_epoch: int | None = None
    hard_lr: float | None = None
    hard_epoch: int | None = None
    threshold_lr: float | None = None
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    max_grad_norm: float = 1.0
    lr_scheduler_type: str = "linear"
    save_step: int | None = None
    no_load: bool = False
    # Token pruning (LTP's config.json keys and flags).
    final_token_threshold: float = 0.01
    token_keep_rate: float = 0.5
    token_keep_rates: tuple[float, ...] | None = None
    scoring_mode: str = "mean"
    temperature: float = 1e-3
    mask_loss_weight: float = 0.1  # the `--lambda` flag
    soft_mask: str = "sigmoid"
    # FLOPs target of the soft stage (replaces --lambda) and distillation from the dense teacher.
    target_flops_reduction: float | None = None
    kd_weight: float = 0.0
    kd_temperature: float = 1.0
    kd_hidden_weight: float = 0.0
    teacher: str | None = None
    # Execution.
    jit_compile: bool | None = None  # None: XLA on a GPU/TPU, off on CPU (see runtime.resolve_jit_compile)
    mixed_precision: str = "auto"
    pad_to_multiple_of: int = 8
    verbose: int = 1
    # Training past one device (`ltp_tf.distribution`): none, mirrored, multi_worker_mirrored, tpu, data_parallel.
    distribution_strategy: str = "none"
    tpu_address: str | None = None
    # Weight pruning and distillation (`ltp_tf.sparsity.WeightPruningConfig` fields); None: off.
    weight_pruning: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        validate(self)

    # ------------------------------------------------------------------ derived
    @property
    def task_spec(self):
        """The `GlueTask` of `task`."""
        return get_task(self.task)

    @property
    def training_stages(self) -> tuple[str, ...]:
        return tuple(s for s in self.stages if s in TRAINING_STAGES)

    def stage_settings(self, stage: str) -> StageSettings:
        """Learning rate, epochs and threshold learning rate of a training stage."""
        check_one_of("stage", stage, TRAINING_STAGES)
        prefix = "hard" if stage in HARD_LIKE else stage
        lr = _first_set(getattr(self, f"{prefix}_lr"), self.lr)
        epoch = _first_set(getattr(self, f"{prefix}_epoch"), self.epoch)
        return StageSettings(lr=lr, epoch=epoch, threshold_lr=_first_set(self.threshold_lr, lr))

    def pruning_config(self, stage: str) -> TokenPruningConfig:
        """The token-pruning settings a stage trains with (only the knobs that stage uses are taken)."""
        if stage not in TRAINING_STAGES:
            raise ValueError(f"`stage` must be one of {list(TRAINING_STAGES)}. Received: stage={stage!r}")
        prune_mode = STAGE_PRUNE_MODES[stage]
        if prune_mode == "none":
            return TokenPruningConfig()
        if prune_mode == "topk":
            return TokenPruningConfig(prune_mode=prune_mode, token_keep_rate=self.token_keep_rate,
                                      token_keep_rates=self.token_keep_rates,
                                      scoring_mode=self.scoring_mode)
        if stage == "soft":
            # A FLOPs target replaces the fixed mask loss (lambda).
            mask_loss_weight = 0.0 if self.target_flops_reduction is not None else self.mask_loss_weight
            return TokenPruningConfig(prune_mode=prune_mode, masking_mode="soft",
                                      final_token_threshold=self.final_token_threshold, scoring_mode=self.scoring_mode,
                                      temperature=self.temperature, mask_loss_weight=mask_loss_weight,
                                      soft_mask=self.soft_mask)
        return TokenPruningConfig(prune_mode=prune_mode, final_token_threshold=self.final_token_threshold,
                                  scoring_mode=self.scoring_mode)

    def distils(self, stage: str) -> bool:
        """Whether `stage` trains against the dense teacher's cached outputs."""
        return stage in KD_STAGES and (self.kd_weight > 0 or self.kd_hidden_weight > 0)

    def objective_settings(self, stage: str) -> dict[str, Any]:
        """The FLOPs-target and distillation settings `stage` trains with; empty when it has neither."""
        settings: dict[str, Any] = {}
        if stage == "soft" and self.target_flops_reduction is not None:
            settings["target_flops_reduction"] = self.target_flops_reduction
        if self.distils(stage):
            settings.update(kd_weight=self.kd_weight, kd_temperature=self.kd_temperature,
                            kd_hidden_weight=self.kd_hidden_weight)
        return settings

    @property
    def eval_batch_size(self) -> int:
        return self.eval_bs or self.bs

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["stages"] = list(self.stages)
        if self.token_keep_rates is not None:
            values["token_keep_rates"] = list(self.token_keep_rates)
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        values = dict(values)
        if "lambda" in values:
            values["mask_loss_weight"] = values.pop("lambda")
        values["stages"] = parse_stages(values.get("stages", cls.stages))
        values["token_keep_rates"] = parse_keep_rates(values.get("token_keep_rates"))
        return cls(**values)


def parse_stages(stages: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """`"finetune,soft,hard"` (or a list) -> a tuple in run order; unknown or repeated names are errors."""
    names = [s.strip().lower() for s in (stages.split(",") if isinstance(stages, str) else stages) if s.strip()]
    text = ",".join(names)
    if not names:
        raise ValueError(f"`--stages` must name at least one of {list(STAGES)}. Received: --stages={text!r}")
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        raise ValueError(f"`--stages` must be a comma-separated list of {list(STAGES)}. Received: --stages={text} "
                         f"(unknown: {', '.join(unknown)})")
    if len(set(names)) != len(names):
        raise ValueError(f"`--stages` must not repeat a stage. Received: --stages={text}")
    return tuple(s for s in STAGES if s in names)


def parse_keep_rates(rates: str | list[float] | tuple[float, ...] | None) -> tuple[float, ...] | None:
    """`--token_keep_rates` (comma-separated text or a sequence) as a tuple of floats; None or empty: unset."""
    if rates is None:
        return None
    if isinstance(rates, str):
        try:
            rates = [float(r) for r in rates.split(",") if r.strip()]
        except ValueError:
            raise ValueError("`--token_keep_rates` must be comma-separated numbers in (0, 1], one per layer. "
                             f"Received: --token_keep_rates={rates}") from None
    return tuple(rates) or None


def stages_from_masking_mode(masking_mode: str, prune_mode: str | None, restore_stage: str | None) -> tuple[str, ...]:
    """The stage an original-LTP command line means (`--masking_mode` plus the checkpoint's `prune_mode`).

    soft -> the soft threshold search; hard -> the top-k baseline with `prune_mode=topk`, the hard stage
    when restoring a soft checkpoint, and the manual-threshold baseline otherwise.
    """
    if masking_mode == "soft":
        if prune_mode not in (None, "absolute_threshold"):
            raise ValueError("`--masking_mode=soft` trains thresholds: it needs --prune_mode=absolute_threshold. "
                             f"Received: --prune_mode={prune_mode}")
        return ("soft",)
    check_one_of("--masking_mode", masking_mode, ("soft", "hard"), show=str)
    if prune_mode == "topk":
        return ("topk",)
    if prune_mode in (None, "absolute_threshold"):
        return ("hard",) if restore_stage == "soft" else ("threshold",)
    raise ValueError(f"`--masking_mode=hard` needs --prune_mode topk or absolute_threshold. "
                     f"Received: --prune_mode={prune_mode}")


def check_prune_mode(prune_mode: str, stages: tuple[str, ...]) -> None:
    """`--prune_mode` given with `--stages` must be the mode every pruning stage among them trains with."""
    clashing = [s for s in stages if STAGE_PRUNE_MODES.get(s, "none") not in ("none", prune_mode)]
    if prune_mode not in ("topk", "absolute_threshold") or clashing:
        raise ValueError(f"`--prune_mode` must be topk or absolute_threshold and match the pruning stages "
                         f"(topk: topk; soft, hard, threshold: absolute_threshold). Received: --prune_mode={prune_mode} "
                         f"--stages={','.join(stages)}")


def validate(config: TrainConfig) -> None:
    """Raises `ValueError` naming the flag, the received value and what is allowed."""
    try:
        get_task(config.task)
    except ValueError:
        raise ValueError(f"`--task` must be a GLUE task, one of ['cola', 'mnli', 'mrpc', 'qnli', 'qqp', 'rte', "
                         f"'sst2', 'stsb'] (any case, dashes ignored). Received: --task={config.task}") from None
    if tuple(parse_stages(config.stages)) != tuple(config.stages):
        raise ValueError(f"`--stages` must be in run order {list(STAGES)}. Received: --stages={','.join(config.stages)}")
    _positive("lr", config.lr)
    for name in ("finetune_lr", "soft_lr", "hard_lr", "threshold_lr"):
        if getattr(config, name) is not None:
            _positive(name, getattr(config, name))
    for name in ("epoch", "bs", "max_seq_length", "pad_to_multiple_of"):
        _integer(name, getattr(config, name), 1)
    for name in ("finetune_epoch", "soft_epoch", "hard_epoch", "eval_bs", "save_step", "max_train_examples",
                 "max_eval_examples"):
        if getattr(config, name) is not None:
            _integer(name, getattr(config, name), 1)
    _integer("seed", config.seed, 0)
    check_int_in_range("--max_seq_length", config.max_seq_length, 8, 512, show=str)
    _number("weight_decay", config.weight_decay, ">= 0", lambda v: v >= 0)
    _number("warmup_ratio", config.warmup_ratio, "in [0, 1)", lambda v: 0 <= v < 1)
    _number("max_grad_norm", config.max_grad_norm, ">= 0 (0 turns clipping off)", lambda v: v >= 0)
    _number("final_token_threshold", config.final_token_threshold, "in [0, 1)", lambda v: 0 <= v < 1)
    _number("token_keep_rate", config.token_keep_rate, "<= 1 (negative rates are floored, as in LTP)",
            lambda v: v <= 1)
    if config.token_keep_rates is not None:
        if "topk" not in config.stages or not all(isinstance(r, (int, float)) and 0 < r <= 1
                                                    for r in config.token_keep_rates):
            raise ValueError("`--token_keep_rates` must be one rate in (0, 1] per encoder layer, for the topk stage. "
                             f"Received: --token_keep_rates={','.join(map(str, config.token_keep_rates))} "
                             f"--stages={','.join(config.stages)}")
    _number("temperature", config.temperature, "> 0", lambda v: v > 0)
    _number("lambda", config.mask_loss_weight, ">= 0", lambda v: v >= 0)
    check_one_of("--soft_mask", config.soft_mask, SOFT_MASKS, show=str)
    _check_objective(config)
    check_one_of("--scoring_mode", config.scoring_mode, SCORING_MODES, show=str)
    check_one_of("--mixed_precision", config.mixed_precision, MIXED_PRECISION, show=str)
    if config.jit_compile not in (None, True, False):
        raise ValueError(f"`--jit_compile` must be true, false or unset (auto). Received: --jit_compile={config.jit_compile}")
    if config.verbose not in (0, 1, 2):
        raise ValueError(f"`--verbose` must be 0, 1 or 2. Received: --verbose={config.verbose}")
    from ltp_tf.data.sources import DATA_SOURCES
    from ltp_tf.distribution import STRATEGIES

    check_one_of("--data_source", config.data_source, DATA_SOURCES, show=str)
    check_one_of("--lr_scheduler_type", config.lr_scheduler_type, LR_SCHEDULERS, show=str)
    check_one_of("--distribution_strategy", config.distribution_strategy, STRATEGIES, show=str)
    if config.weight_pruning is not None:
        from ltp_tf.sparsity import WeightPruningConfig

        WeightPruningConfig.from_dict(config.weight_pruning)  # validates every weight-pruning flag
    if not str(config.output_dir).strip():
        raise ValueError("`--output_dir` must be a folder path. Received: --output_dir=''")
    _check_stage_sources(config)
    _check_paths(config)


def _check_objective(config: TrainConfig) -> None:
    """The FLOPs target and distillation flags: values, and stages they apply to."""
    if config.target_flops_reduction is not None:
        _number("target_flops_reduction", config.target_flops_reduction, "> 1 (2 = half the dense FLOPs)",
                lambda v: v > 1)
        if "soft" not in config.stages:
            raise ValueError("`--target_flops_reduction` steers the soft stage's thresholds: add `soft` to --stages. "
                             f"Received: --stages={','.join(config.stages)}")
    _number("kd_weight", config.kd_weight, ">= 0 (0: no logits distillation)", lambda v: v >= 0)
    _number("kd_temperature", config.kd_temperature, "> 0", lambda v: v > 0)
    _number("kd_hidden_weight", config.kd_hidden_weight, ">= 0 (0: no hidden-state distillation)", lambda v: v >= 0)
    distils = config.kd_weight > 0 or config.kd_hidden_weight > 0
    if config.teacher is not None and not distils:
        raise ValueError("`--teacher` is the model to distil from: set --kd_weight or --kd_hidden_weight > 0 too. "
                         f"Received: --teacher={config.teacher} --kd_weight={_format(config.kd_weight)}")
    if distils and not any(stage in KD_STAGES for stage in config.stages):
        raise ValueError(f"`--kd_weight`/`--kd_hidden_weight` distil in the stages {list(KD_STAGES)}; none runs. "
                         f"Received: --stages={','.join(config.stages)}")
    # Weight pruning's masks live on the kernels, so a FLOPs target and logits distillation train through them;
    # its own distillation (`--distill_loss_weight`, the reference's Distiller) is a second, different teacher.
    if ((config.weight_pruning or {}).get("distill_loss_weight") or 0) > 0 and (
            distils or config.target_flops_reduction is not None):
        raise ValueError("`--distill_loss_weight` (weight pruning's distillation) does not combine with "
                         "`--target_flops_reduction` or `--kd_weight`/`--kd_hidden_weight`: distil with --kd_weight "
                         "instead. Received: --distill_loss_weight="
                         f"{_format(config.weight_pruning['distill_loss_weight'])} --kd_weight={_format(config.kd_weight)} "
                         f"--target_flops_reduction={config.target_flops_reduction}")


def _check_stage_sources(config: TrainConfig) -> None:
    """Every pruning stage needs the checkpoint it starts from: an earlier stage of this run or `--restore`."""
    if "tokenize" in config.stages and config.features_dir is None:
        raise ValueError("`--stages=tokenize` writes features to --features_dir: set it. Received: --features_dir unset")
    if config.restore is not None and config.model is not None:
        raise ValueError("Set one of `--model` (pretrained weights to fine-tune) and `--restore` (a checkpoint folder "
                         f"written by ltp_tf.train). Received: --model={config.model} --restore={config.restore}")
    for stage in config.training_stages:
        source = STAGE_SOURCES[stage]
        if source is not None and source not in config.stages and config.restore is None:
            needs = "a fine-tuned model" if source == "finetune" else "a soft-stage checkpoint (its learned thresholds)"
            raise ValueError(f"`--stages={','.join(config.stages)}`: stage {stage!r} starts from {needs}: add "
                             f"{source!r} to --stages or pass --restore=<checkpoint folder>. Received: --restore unset")


def _check_paths(config: TrainConfig) -> None:
    for name in ("restore", "model", "data_dir", "teacher"):
        path = getattr(config, name)
        if path is not None and (os.sep in path or path.startswith(".")) and not os.path.isdir(path):
            raise ValueError(f"`--{name}` must be an existing folder. Received: --{name}={path} (not found)")
    from ltp_tf.checkpoints import is_complete

    for name in ("restore", "teacher"):
        path = getattr(config, name)
        if path is not None and not is_complete(path):
            raise ValueError(f"`--{name}` must be a checkpoint folder (model.keras, vocab.txt, checkpoint.json) "
                             f"written by ltp_tf.train. Received: --{name}={path}")


def _first_set(value, default):
    return default if value is None else value


def _positive(name: str, value: Any) -> None:
    _number(name, value, "> 0", lambda v: v > 0)


def _number(name: str, value: Any, allowed: str, predicate) -> None:
    check_number(f"--{name}", value, allowed, lambda v: math.isfinite(v) and predicate(v), show=_format)


def _format(value: Any) -> str:
    """Numbers as typed on a command line (`-1`, `2e-05`), anything else as is."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _integer(name: str, value: Any, minimum: int) -> None:
    check_int_at_least(f"--{name}", value, minimum, show=str)
