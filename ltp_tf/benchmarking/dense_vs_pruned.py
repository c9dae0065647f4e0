"""The benchmark: dense vs token-pruned inference on real dev sets, through every engine, in one run.

`run(BenchmarkConfig(...))` loads the pruned checkpoint (or builds one with untrained thresholds), takes its
dense twin (the same weights with pruning off), and times both through each engine (`engines`) in turns of
consecutive calls (`timing`): latency at batch 1 (median, p90) and throughput at each batch size, on the dev texts of
every dataset and on long inputs (`inputs`). It writes, under `output_dir`:

    <tag>.md, <tag>.csv, <tag>.json   the results table and the run's information (`results`), with the dev
                                      score of each engine's dense and pruned model (`dev_scores`)
    <tag>.png, <tag>_length.png       speedup bars, speedup against input length (several datasets) (`plots`)
    <tag>_length_gate.json            with `calibrate_gate`: the length gate per engine (`length_gate`)
    tmp-XXXXXXXX/                     the work folder (checkpoints, exports), removed at the end

`tag` defaults to `<task>_<backend>_<date>`.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import shutil
import tempfile
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ltp_tf.benchmarking.engines import ENGINES, EngineSettings
from ltp_tf.benchmarking.timing import Predictor
from ltp_tf.models.surgery import without_token_pruning

if TYPE_CHECKING:
    import keras

    from ltp_tf.inference import TokenDroppingRunner


class ModelLimitError(ValueError):
    """A setting that only the loaded model shows to be out of range (lengths beyond its positions)."""


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """A benchmark run. Field names are the flags of `ltp_tf.benchmark`, whose help describes each one.

    Without `checkpoint`, a pruned checkpoint is built from `model` (default: the packaged MiniLM) with untrained
    thresholds (`final_token_threshold`), a random head for `task` and `max_seq_length`. Integer lists may be
    given as strings (flag values); they are stored as tuples of ints.
    """

    checkpoint: str | None = None
    model: str | None = None
    task: str = "sst2"
    final_token_threshold: float = 0.01
    max_seq_length: int = 128
    engines: tuple[str, ...] = ENGINES
    batch_sizes: tuple[int, ...] = (32, 128)
    max_examples: int | None = None
    latency_examples: int = 200
    length_bucket: int = 8
    calibration_examples: int = 1000
    threads: int | None = None
    onnx_max_batch_tokens: int = 0
    datasets: tuple[str, ...] = ()
    long_lengths: tuple[int, ...] = ()
    calibrate_gate: bool = False
    long_examples: int = 32
    min_timed_calls: int = 8
    data_dir: str | None = None
    output_dir: str = "benchmarks/results"
    tag: str | None = None
    length_scan: tuple[int, ...] = (4, 8, 16, 32, 64)

    def __post_init__(self) -> None:
        from ltp_tf.data.glue import get_task

        engines = tuple(self.engines)
        if not engines or any(engine not in ENGINES for engine in engines):
            raise ValueError(f"`--engines` must be a non-empty list from {list(ENGINES)}. "
                             f"Received: --engines={','.join(engines)}")
        object.__setattr__(self, "engines", engines)
        object.__setattr__(self, "batch_sizes", _integers("batch_sizes", self.batch_sizes, 2,
                                                          " (batch 1 is the latency run)"))
        if not self.batch_sizes:
            raise ValueError("`--batch_sizes` must name at least one batch size. Received: --batch_sizes=")
        object.__setattr__(self, "long_lengths", _integers("long_lengths", self.long_lengths, 2))
        object.__setattr__(self, "length_scan", _integers("length_scan", self.length_scan, 1))
        object.__setattr__(self, "datasets", tuple(self.datasets))
        for flag, names in (("task", (self.task,)), ("datasets", self.datasets)):
            for name in names:
                try:
                    get_task(name)
                except ValueError as error:
                    raise ValueError(f"`--{flag}`: {error}") from None
        for name, minimum in (("latency_examples", 1), ("calibration_examples", 0), ("long_examples", 1),
                              ("min_timed_calls", 1)):
            _check_integer(name, getattr(self, name), minimum)
        if self.max_examples is not None:
            _check_integer("max_examples", self.max_examples, 1)
        self.engine_settings  # raises if a setting is bad

    @property
    def engine_settings(self) -> EngineSettings:
        return EngineSettings(length_bucket=self.length_bucket, threads=self.threads,
                              onnx_max_batch_tokens=self.onnx_max_batch_tokens)

    def check_lengths(self, max_sequence_length: int) -> None:
        """Raises `ModelLimitError` if `long_lengths` or `length_scan` exceed the model's positions."""
        if self.long_lengths and max(self.long_lengths) > max_sequence_length:
            raise ModelLimitError(f"`--long_lengths` must be <= the model's {max_sequence_length} positions. "
                                  f"Received: --long_lengths={_joined(self.long_lengths)}")
        if self.length_scan and max(self.length_scan) > max_sequence_length:
            raise ModelLimitError(f"`--length_scan` must be integers in [1, {max_sequence_length}]. "
                                  f"Received: --length_scan={_joined(self.length_scan)}")


def run(config: BenchmarkConfig, command: str) -> dict[str, str]:
    """Runs the benchmark of `config` and returns the paths of the files it wrote (see the module docstring).

    `command`: the command line recorded in the run's information.
    """
    import keras

    from ltp_tf.benchmarking import engines as engines_lib
    from ltp_tf.benchmarking import inputs as inputs_lib
    from ltp_tf.benchmarking import dev_scores, length_gate, results, timing
    from ltp_tf.benchmarking.padded_flops import padded_flops_reduction
    from ltp_tf.checkpoints import load_checkpoint
    from ltp_tf.data import get_task
    from ltp_tf.flops import count_flops
    from ltp_tf.inference import TokenDroppingRunner
    from ltp_tf.serving.text import checkpoint_preprocessor

    engines, settings = config.engines, config.engine_settings
    load_before = os.getloadavg()
    os.makedirs(config.output_dir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="tmp-", dir=config.output_dir)
    pruned_path = config.checkpoint or _build_checkpoint(config, os.path.join(workdir, "pruned"))
    pruned = load_checkpoint(pruned_path)
    dense_model = without_token_pruning(pruned.model)
    task = get_task(pruned.task)
    backbone = pruned.model.backbone
    config.check_lengths(backbone.max_sequence_length)
    preprocessor = checkpoint_preprocessor(pruned)
    datasets, labels = inputs_lib.dev_and_long_inputs(  # name -> (features, throughput examples, latency examples)
        preprocessor, task, config.datasets, config.max_examples, config.latency_examples, config.long_lengths,
        config.long_examples, config.data_dir)
    models = {"dense": dense_model, "pruned": pruned.model}
    reference = TokenDroppingRunner(pruned.model, length_bucket=config.length_bucket, jit_compile=False)

    calibration, calibration_note = inputs_lib.calibration_features(task, pruned, config.calibration_examples,
                                                                    config.data_dir)
    checkpoints, exports = engines_lib.prepare_exports(
        engines, pruned, models, workdir, max([pruned.max_seq_length, *config.long_lengths]), settings,
        fit_examples=0 if calibration is None else len(calibration["token_ids"]), data_dir=config.data_dir)
    rows, fallbacks, kept_by_dataset = [], {}, {}
    predictors = {engine: engines_lib.predictors(engine, models, exports, settings, calibration, workdir)
                  for engine in engines}
    for dataset, (features, total, latency_count) in datasets.items():
        # What the pruned model keeps, and the FLOPs it saves, on the measured examples.
        kept = reference({key: value[:total] for key, value in features.items()})["kept_tokens"]
        lengths = features["padding_mask"][:total].sum(1)
        kept_by_dataset[dataset] = np.round(kept.mean(0), 2).tolist()

        def flops_reduction(engine: str, count: int, batch_size: int) -> tuple[float, float]:
            """(LTP's unpadded, as executed with this engine's padding) FLOPs reduction on the first `count`."""
            unpadded = count_flops(backbone.hidden_dim, backbone.intermediate_dim, lengths[:count],
                                   kept[:count]).reduction
            runner = engine.startswith("keras")
            bucketed = runner or engine == "saved_model_xla"  # its capacities pad more than this counts
            padded = padded_flops_reduction(
                lengths[:count], kept[:count], batch_size, backbone.hidden_dim, backbone.intermediate_dim,
                length_bucket=config.length_bucket if bucketed else 1, pad_batch=runner)
            return unpadded, padded

        single = inputs_lib.batches(features, 1, latency_count)
        for engine in engines:
            pair = predictors[engine]
            difference = _max_logit_difference(pair["pruned"], reference, single[:16])
            for batch_size, batches in [(1, single)] + [(b, inputs_lib.batches(features, b, total))
                                                         for b in config.batch_sizes]:
                count = latency_count if batch_size == 1 else total
                mean_tokens = float(lengths[:count].mean())
                repeats = timing.repeats_for(len(batches), config.min_timed_calls)
                times = timing.time_after_warm_up(pair, batches, repeats=repeats)  # the warm-up compiles every bucket
                if batch_size == 1:
                    rows += results.latency_rows(engine, times, flops_reduction(engine, count, 1), difference,
                                                 dataset, mean_tokens)
                else:
                    rows.append(results.throughput_row(engine, batch_size, count * repeats, times,
                                                       flops_reduction(engine, count, batch_size), difference,
                                                       dataset, mean_tokens))
                print("\n".join(results.markdown_table(rows[-2 if batch_size == 1 else -1:]).splitlines()[2:]),
                      flush=True)
    for engine in engines:
        if isinstance(predictors[engine]["pruned"], TokenDroppingRunner) and predictors[engine]["pruned"].capacities:
            fallbacks[engine] = predictors[engine]["pruned"].fallbacks
    rows = results.with_fastest_dense(rows)
    scores = "not measured: the model's task is not among --datasets"
    if labels is not None:
        scored = inputs_lib.batches(datasets[task.name][0], max(config.batch_sizes), len(labels))
        scores = dev_scores.describe(dev_scores.engine_dev_scores(predictors, scored, labels, task), task)
        print(f"Dev score by engine: {scores}", flush=True)
    stem = config.tag or f"{task.name}_{keras.backend.backend()}_{datetime.date.today().isoformat()}"
    gates = {}
    if config.calibrate_gate:
        singles = [row for features, _, count in datasets.values() for row in inputs_lib.batches(features, 1, count)]
        gates = length_gate.calibrate(engines, pruned.model, task, singles, predictors, settings, workdir,
                                      checkpoints.get("pruned", pruned_path))
        from ltp_tf.atomic import write_json

        write_json(os.path.join(config.output_dir, f"{stem}_length_gate.json"), gates, sort_keys=True)
    features = next(iter(datasets.values()))[0]

    scan = _length_scan(dense_model, features, config.length_scan)
    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "checkpoint": config.checkpoint or f"built from {config.model or 'packaged MiniLM'} with untrained "
                                           f"thresholds (final_token_threshold={config.final_token_threshold}), "
                                           "random head",
        "task": f"{task.name} (the model's head); data: " + ", ".join(
            f"{name} ({count} examples, latency on {latency})" for name, (_, count, latency) in datasets.items()),
        "long inputs": "consecutive dev texts of the first dataset, tokenized, concatenated and cut into windows of "
                       "the length ([CLS] ... [SEP], one segment)" if config.long_lengths else "none",
        "pruning_config": backbone.pruning_config.to_dict(),
        "mean kept tokens per layer": kept_by_dataset,
        "onnxruntime": f"fused graph (ltp_tf.serving.onnx_graph), session options of "
                       f"ltp_tf.serving.onnx_export.session_options, intra-op threads {config.threads or 'all CPUs'}, "
                       f"token budget {config.onnx_max_batch_tokens or 'none (whole batches)'}; "
                       "onnxruntime_int8: the same graphs after onnxruntime.quantization.quantize_dynamic (QInt8 "
                       "weights); its pruned outputs differ (int8 rounding changes kept tokens)",
        "keras backend": keras.backend.backend(),
        "versions": _versions(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
        "load average (1 min) before / after": f"{load_before[0]:.2f} / {os.getloadavg()[0]:.2f}",
        "length bucket": config.length_bucket,
        "timed calls": f"every model on at least {config.min_timed_calls} calls per input set and batch size "
                       "(fewer batches are passed over again), after an untimed pass",
        "length gate (compact_min_length by engine, calibrated in this run)": {
            engine: gate["compact_min_length"] for engine, gate in gates.items()} or "not calibrated",
        "runner capacities (batch 1)": calibration_note,
        "runner calls recomputed by segments (kept more than the capacities), timed + warm-up passes": fallbacks,
        "dense baseline": "the same weights with prune_mode=none, through the same engine",
        "dev score by engine (untimed pass over the examples timed for throughput)": scores,
        "dense batch-1 latency (ms, median) by sequence length, keras_xla": scan,
    }
    paths = results.write_results(rows, info, config.output_dir, stem)
    print("\n" + results.markdown_table(rows))
    print("Written: " + ", ".join(paths.values()))
    shutil.rmtree(workdir, ignore_errors=True)
    return paths


def _length_scan(model: keras.Model, features: dict[str, np.ndarray], lengths: Sequence[int]) -> dict[int, float]:
    """Median batch-1 latency (ms) of the dense model's compiled runner on the first dev sentence's tokens,
    repeated or cut to each length: the part that stays as tokens go shows how far pruning can speed up."""
    from ltp_tf.benchmarking import timing
    from ltp_tf.inference import TokenDroppingRunner

    runner = TokenDroppingRunner(model, length_bucket=1)
    tokens = features["token_ids"][0][features["padding_mask"][0] > 0]
    scan = {}
    for length in lengths:
        ids = np.resize(tokens, length)[None, :].astype(np.int32)
        batch = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
        median = timing.median_ms(timing.time_after_warm_up({"dense": runner}, [batch] * 20))["dense"]
        scan[length] = round(median, 2)
    return scan


def _max_logit_difference(predict: Predictor, reference: TokenDroppingRunner,
                          inputs: list[dict[str, np.ndarray]]) -> float:
    """Largest |logit| difference of an engine's pruned model from the uncompiled runner on `inputs`."""
    return max(float(np.abs(np.asarray(predict(b)["logits"]) - reference(b)["logits"]).max()) for b in inputs)


def _build_checkpoint(config: BenchmarkConfig, path: str) -> str:
    """A checkpoint of the pretrained encoder with untrained thresholds and a seeded random head."""
    import keras

    from ltp_tf.checkpoints import save_checkpoint
    from ltp_tf.token_pruning_config import TokenPruningConfig
    from ltp_tf.data import get_task
    from ltp_tf.data.tokenization import family_of_folder
    from ltp_tf.models import TokenPruningClassifier, load_backbone, packaged_minilm_path

    keras.utils.set_random_seed(0)
    model_dir = config.model or packaged_minilm_path()
    pruning = TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=config.final_token_threshold)
    task = get_task(config.task)
    model = TokenPruningClassifier(load_backbone(model_dir, pruning), num_classes=task.num_classes)
    model({"token_ids": np.ones((1, 4), "int32")})
    return save_checkpoint(path, model, task=task.name, max_seq_length=config.max_seq_length,
                           vocabulary_file=tuple(os.path.join(model_dir, name)
                                                 for name in family_of_folder(model_dir).tokenizer_files),
                           metadata={"lowercase": True, "strip_accents": False})


def _versions() -> str:
    import importlib.metadata

    names = ("tensorflow", "tensorflow-cpu", "keras", "jax", "onnxruntime", "tf2onnx")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _integers(name: str, values: Sequence[int | str], minimum: int, note: str = "") -> tuple[int, ...]:
    """`values` (ints, or strings of a list flag) as ints, each at least `minimum`."""
    try:
        parsed = tuple(int(value) if isinstance(value, str) else _as_int(value) for value in values)
    except ValueError:
        parsed = None
    if parsed is None or any(value < minimum for value in parsed):
        raise ValueError(f"`--{name}` must be integers >= {minimum}{note}. Received: --{name}={_joined(values)}")
    return parsed


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"not an integer: {value!r}")
    return int(value)


def _check_integer(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`--{name}` must be an integer >= {minimum}. Received: --{name}={value!r}")


def _joined(values: Sequence[Any]) -> str:
    return ",".join(str(value) for value in values)
