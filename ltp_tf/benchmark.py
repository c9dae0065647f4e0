"""Benchmark dense vs token-pruned inference on a task's real dev set, through every engine, in one run.

    python -m ltp_tf.benchmark --checkpoint=<pruned checkpoint folder>
    python -m ltp_tf.benchmark --task=sst2 --final_token_threshold=0.01      # untrained thresholds

The dense model is the same weights with pruning off. Engines: `keras_xla` (the token-dropping runner,
XLA-compiled per length bucket; `jax.jit` under KERAS_BACKEND=jax), `keras` (the same runner without
XLA), `saved_model` (the exported SavedModel's token-id signature: in-graph token removal, dynamic
shapes), `onnxruntime` (the exported ONNX: fused kernels, `ltp_tf.serving.onnx_graph`) and
`onnxruntime_int8` (the same after dynamic int8 quantization). It measures latency at batch 1 (median,
p90) and throughput at each `--batch_sizes`, with dense and pruned timed call by call in turn after a
warm-up pass, on the dev texts of `--datasets` and on `--long_lengths` inputs, and writes
`<output_dir>/<tag>.{md,csv,json,png}` (+ `<tag>_length.png`) with the FLOPs reduction and the fastest
dense engine beside each speedup; `--calibrate_gate` adds `<tag>_length_gate.json`. Size it with
`--max_examples` and `--latency_examples` (see benchmarks/README.md for the issue-15 command).
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
from absl import app, flags

ENGINES = ("keras_xla", "keras", "saved_model", "onnxruntime", "onnxruntime_int8")

_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "A pruned checkpoint folder. Default: build one from --model.")
_MODEL = flags.DEFINE_string("model", None, "Without --checkpoint: the pretrained encoder (default: packaged MiniLM).")
_TASK = flags.DEFINE_string("task", "sst2", "Without --checkpoint: the GLUE task (its dev set is measured).")
_THRESHOLD = flags.DEFINE_float("final_token_threshold", 0.01, "Without --checkpoint: the last layer's threshold.")
_MAX_SEQ_LENGTH = flags.DEFINE_integer("max_seq_length", 128, "Without --checkpoint: the tokenizer's length.")
_ENGINES = flags.DEFINE_list("engines", list(ENGINES), f"Engines to measure, from {list(ENGINES)}.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["32", "128"], "Throughput batch sizes.")
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", None, "Dev examples for throughput (default: all).",
                                     lower_bound=1)
_LATENCY_EXAMPLES = flags.DEFINE_integer("latency_examples", 200, "Dev examples timed one at a time.", lower_bound=1)
_LENGTH_BUCKET = flags.DEFINE_integer("length_bucket", 8, "The runner's length bucket.", lower_bound=1)
_CALIBRATION_EXAMPLES = flags.DEFINE_integer(
    "calibration_examples", 1000, "Training examples from which the runner learns its batch-1 capacities "
    "(`TokenDroppingRunner.fit_capacities`: one program per call instead of one per pruning layer). 0: off.",
    lower_bound=0)
_THREADS = flags.DEFINE_integer("threads", None, "onnxruntime intra-op threads (default: every CPU).")
_DATASETS = flags.DEFINE_list("datasets", [], "GLUE tasks whose dev texts are measured (default: the model's task), "
                              "e.g. sst2,mrpc,rte,qnli; the model's head stays the checkpoint's.")
_LONG_LENGTHS = flags.DEFINE_list("long_lengths", [], "Also measure long inputs of these lengths (e.g. 128,256,512): "
                                  "real dev text of the first dataset, concatenated.")
_CALIBRATE_GATE = flags.DEFINE_boolean(
    "calibrate_gate", False, "Also time the pruned model's two schedules (tokens removed / only masked) per engine "
    "(keras_xla, saved_model, onnxruntime) on every dataset's batch-1 inputs and write the length gate they imply to "
    "<tag>_length_gate.json (ltp_tf.benchmarking.length_gate).")
_LONG_EXAMPLES = flags.DEFINE_integer("long_examples", 32, "Long inputs per length.", lower_bound=1)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "GLUE folder (default: ../shared/data/glue).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "benchmarks/results", "Where the result files go.")
_TAG = flags.DEFINE_string("tag", None, "File name stem (default: <task>_<backend>_<date>).")
_LENGTH_SCAN = flags.DEFINE_list("length_scan", ["4", "8", "16", "32", "64"],
                                 "Sequence lengths at which the dense model's batch-1 latency (keras_xla) is "
                                 "recorded: how much of it does not shrink with fewer tokens. Empty: skip.")



def _checked_long_lengths(values: list[str]) -> list[int]:
    try:
        lengths = [int(v) for v in values]
    except ValueError:
        lengths = []
    if len(lengths) != len(values) or any(length < 2 for length in lengths):
        raise app.UsageError(f"--long_lengths must be integers >= 2. Received: {values}")
    return lengths

def main(argv: list[str]) -> None:
    del argv
    import keras

    from ltp_tf.checkpoints import load_checkpoint
    from ltp_tf.data import get_task, read_split, tokenize
    from ltp_tf.flops import count_flops
    from ltp_tf.benchmarking import results as benchmarking
    from ltp_tf.inference import TokenDroppingRunner
    from ltp_tf.serving.text import checkpoint_preprocessor

    engines = _checked_engines(_ENGINES.value)
    batch_sizes = _checked_batch_sizes(_BATCH_SIZES.value)
    long_lengths = _checked_long_lengths(_LONG_LENGTHS.value)
    for name in _DATASETS.value or []:
        try:
            get_task(name)
        except ValueError as error:
            raise app.UsageError(f"--datasets: {error}") from None
    load_before = os.getloadavg()
    os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="tmp-", dir=_OUTPUT_DIR.value)
    pruned_path = _CHECKPOINT.value or _build_checkpoint(os.path.join(workdir, "pruned"))
    pruned = load_checkpoint(pruned_path)
    dense_model = benchmarking.dense_twin(pruned.model)
    task = get_task(pruned.task)
    backbone = pruned.model.backbone
    if long_lengths and max(long_lengths) > backbone.max_sequence_length:
        raise app.UsageError(f"--long_lengths must be <= the model's {backbone.max_sequence_length} positions. "
                             f"Received: {long_lengths}")
    preprocessor = checkpoint_preprocessor(pruned)
    datasets = {}  # name -> (features, examples for throughput, examples for latency)
    for name in _DATASETS.value or [task.name]:
        data_task = get_task(name)
        examples = read_split(data_task, data_task.dev_splits[0], _DATA_DIR.value)
        features = tokenize(preprocessor, examples.texts).as_dict()
        features["padding_mask"] = features["padding_mask"].astype(np.int32)
        total = min(_MAX_EXAMPLES.value or len(examples), len(examples))
        datasets[name] = (features, total, min(_LATENCY_EXAMPLES.value, total))
    for length in long_lengths:
        features = _long_inputs(datasets[next(iter(datasets))][0], length, _LONG_EXAMPLES.value)
        datasets[f"long{length}"] = (features, len(features["token_ids"]), len(features["token_ids"]))
    models = {"dense": dense_model, "pruned": pruned.model}
    reference = TokenDroppingRunner(pruned.model, length_bucket=_LENGTH_BUCKET.value, jit_compile=False)

    exports, checkpoints = {}, {}
    if {"saved_model", "onnxruntime", "onnxruntime_int8"} & set(engines):
        export_length = max([pruned.max_seq_length] + long_lengths)
        checkpoints = {
            "dense": _save_like(pruned, dense_model, os.path.join(workdir, "dense"), export_length),
            "pruned": _save_like(pruned, pruned.model, os.path.join(workdir, "pruned_export"), export_length)}
        onnx = bool({"onnxruntime", "onnxruntime_int8"} & set(engines))
        exports = {name: _export(path, name, workdir, onnx=onnx) for name, path in checkpoints.items()}

    calibration, calibration_note = _calibration_features(task, pruned, _CALIBRATION_EXAMPLES.value)
    rows, fallbacks, kept_by_dataset = [], {}, {}
    predictors = {engine: _predictors(engine, models, exports, calibration, workdir) for engine in engines}
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
            padded = benchmarking.padded_flops_reduction(
                lengths[:count], kept[:count], batch_size, backbone.hidden_dim, backbone.intermediate_dim,
                length_bucket=_LENGTH_BUCKET.value if runner else 1, pad_batch=runner)
            return unpadded, padded

        single = benchmarking.batches(features, 1, latency_count)
        for engine in engines:
            pair = predictors[engine]
            difference = _max_logit_difference(pair["pruned"], reference, single[:16])
            for batch_size, inputs in [(1, single)] + [(b, benchmarking.batches(features, b, total))
                                                        for b in batch_sizes]:
                count = latency_count if batch_size == 1 else total
                mean_tokens = float(lengths[:count].mean())
                benchmarking.time_interleaved(pair, inputs)  # warm-up: compiles every bucket
                times = benchmarking.time_interleaved(pair, inputs)
                if batch_size == 1:
                    rows += benchmarking.latency_rows(engine, times, flops_reduction(engine, count, 1), difference,
                                                      dataset, mean_tokens)
                else:
                    rows.append(benchmarking.throughput_row(engine, batch_size, count, times,
                                                            flops_reduction(engine, count, batch_size), difference,
                                                            dataset, mean_tokens))
                print("\n".join(benchmarking.markdown_table(rows[-2 if batch_size == 1 else -1:]).splitlines()[2:]),
                      flush=True)
    for engine in engines:
        if isinstance(predictors[engine]["pruned"], TokenDroppingRunner) and predictors[engine]["pruned"].capacities:
            fallbacks[engine] = predictors[engine]["pruned"].fallbacks
    rows = benchmarking.with_fastest_dense(rows)
    stem = _TAG.value or f"{task.name}_{keras.backend.backend()}_{datetime.date.today().isoformat()}"
    gates = {}
    if _CALIBRATE_GATE.value:
        singles = [row for features, _, count in datasets.values() for row in benchmarking.batches(features, 1, count)]
        gates = _calibrate_gate(engines, pruned.model, task, singles, predictors, workdir,
                                checkpoints.get("pruned", pruned_path))
        _write_json(os.path.join(_OUTPUT_DIR.value, f"{stem}_length_gate.json"), gates)
    features, total, latency_count = next(iter(datasets.values()))
    lengths = features["padding_mask"][:total].sum(1)

    scan = _length_scan(dense_model, features, _checked_lengths(_LENGTH_SCAN.value, backbone.max_sequence_length))
    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), "-m", "ltp_tf.benchmark"] + sys.argv[1:]),
        "checkpoint": _CHECKPOINT.value or f"built from {_MODEL.value or 'packaged MiniLM'} with untrained "
                                           f"thresholds (final_token_threshold={_THRESHOLD.value}), random head",
        "task": f"{task.name} (the model's head); data: " + ", ".join(
            f"{name} ({count} examples, latency on {latency})" for name, (_, count, latency) in datasets.items()),
        "long inputs": "consecutive dev texts of the first dataset, tokenized, concatenated and cut into windows of "
                       "the length ([CLS] ... [SEP], one segment)" if long_lengths else "none",
        "pruning_config": backbone.pruning_config.to_dict(),
        "mean kept tokens per layer": kept_by_dataset,
        "onnxruntime": f"fused graph (ltp_tf.serving.onnx_graph), session options of "
                       f"ltp_tf.serving.onnx_export.session_options, intra-op threads {_THREADS.value or 'all CPUs'}; "
                       "onnxruntime_int8: the same graphs after onnxruntime.quantization.quantize_dynamic (QInt8 "
                       "weights); its pruned outputs differ (int8 rounding changes kept tokens)",
        "keras backend": keras.backend.backend(),
        "versions": _versions(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
        "load average (1 min) before / after": f"{load_before[0]:.2f} / {os.getloadavg()[0]:.2f}",
        "length bucket": _LENGTH_BUCKET.value,
        "length gate (compact_min_length by engine, calibrated in this run)": {
            engine: gate["compact_min_length"] for engine, gate in gates.items()} or "not calibrated",
        "runner capacities (batch 1)": calibration_note,
        "runner calls recomputed by segments (kept more than the capacities), timed + warm-up passes": fallbacks,
        "dense baseline": "the same weights with prune_mode=none, through the same engine",
        "dense batch-1 latency (ms, median) by sequence length, keras_xla": scan,
    }
    paths = benchmarking.write_results(rows, info, _OUTPUT_DIR.value, stem)
    print("\n" + benchmarking.markdown_table(rows))
    print("Written: " + ", ".join(paths.values()))
    _remove_tree(workdir)


def _calibration_features(task, checkpoint, count: int) -> tuple[dict | None, str]:
    """The first `count` training examples, tokenized (the runner fits its capacities on them, not on dev)."""
    from ltp_tf.data import read_split, tokenize
    from ltp_tf.serving.text import checkpoint_preprocessor

    if not count:
        return None, "off (--calibration_examples=0): every call runs segment by segment"
    try:
        examples = read_split(task, "train", _DATA_DIR.value).take(count)
    except FileNotFoundError as error:
        return None, f"off: no training split to fit them on ({error})"
    features = tokenize(checkpoint_preprocessor(checkpoint), examples.texts).as_dict()
    return features, f"fitted on the first {len(examples)} {task.name} training examples at batch 1"


def _predictors(engine: str, models: dict, exports: dict, calibration: dict | None, workdir: str) -> dict:
    """`{"dense": predict, "pruned": predict}` for an engine; each maps a batch to `{"logits", ...}`."""
    from ltp_tf.inference import TokenDroppingRunner

    if engine in ("keras_xla", "keras"):
        runners = {name: TokenDroppingRunner(model, length_bucket=_LENGTH_BUCKET.value,
                                             jit_compile=engine == "keras_xla")
                   for name, model in models.items()}
        if calibration is not None:
            runners["pruned"].fit_capacities(calibration, batch_size=1)
        return runners
    if engine == "saved_model":
        return {name: _signature(path) for name, path in exports.items()}
    from ltp_tf.serving.exporter import EXTRA_DIR, ONNX_FILE
    from ltp_tf.serving.onnx_export import OnnxPredictor

    paths = {name: os.path.join(path, EXTRA_DIR, ONNX_FILE) for name, path in exports.items()}
    if engine == "onnxruntime_int8":
        paths = {name: _quantized(path, os.path.join(workdir, f"{name}_int8.onnx")) for name, path in paths.items()}
    return {name: OnnxPredictor(path, _THREADS.value) for name, path in paths.items()}


def _signature(path: str):
    """The token-id signature of the SavedModel at `path` as a predictor."""
    import tensorflow as tf

    from ltp_tf.serving.saved_model import load_export

    function = load_export(path).signatures["token_ids"]
    return lambda batch: {k: v.numpy() for k, v in function(
        **{name: tf.constant(value, tf.int32) for name, value in batch.items()}).items()}


def _calibrate_gate(engines: list[str], model, task, inputs: list[dict], predictors: dict, workdir: str,
                    pruned_checkpoint: str) -> dict:
    """Per engine, `ltp_tf.benchmarking.length_gate.choose_min_length` from both schedules timed interleaved on
    `inputs`."""
    import onnx

    from ltp_tf.benchmarking.length_gate import choose_min_length
    from ltp_tf.inference import TokenDroppingRunner
    from ltp_tf.serving.onnx_export import OnnxPredictor
    from ltp_tf.serving.onnx_graph import build_onnx_graph

    gates = {}
    for engine in engines:
        if engine == "keras_xla":
            masked = TokenDroppingRunner(model, length_bucket=_LENGTH_BUCKET.value, compact_layers=[])
        elif engine == "onnxruntime":
            path = os.path.join(workdir, "pruned_masked.onnx")
            onnx.save(build_onnx_graph(model, task, compact_layers=[]), path)
            masked = OnnxPredictor(path, _THREADS.value)
        elif engine == "saved_model":  # a gate above every input: the mask-only schedule
            masked = _signature(_export(pruned_checkpoint, "pruned_masked", workdir, onnx=False,
                                        compact_min_length=10**6))
        else:
            continue
        schedules = {"compact": predictors[engine]["pruned"], "masked": masked}
        times = _interleaved_twice(schedules, inputs)
        lengths = [int(row["padding_mask"].sum()) for row in inputs]
        gate, table = choose_min_length(lengths, times["compact"], times["masked"])
        gates[engine] = {"compact_min_length": gate, "median_ms_by_length": table}
        print(f"length gate {engine}: compact_min_length={gate} {table}", flush=True)
    return gates


def _interleaved_twice(predictors: dict, inputs: list[dict]) -> dict:
    from ltp_tf.benchmarking import results as benchmarking

    benchmarking.time_interleaved(predictors, inputs)  # warm-up
    return benchmarking.time_interleaved(predictors, inputs)


def _write_json(path: str, value: dict) -> None:
    import json

    from ltp_tf.atomic import write_text

    write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def _quantized(path: str, output: str) -> str:
    """Dynamic int8 quantization of the ONNX model at `path` (weights QInt8, activations at run time)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(path, output, weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # for the com.microsoft ops
    return output


def _long_inputs(features: dict[str, np.ndarray], length: int, count: int) -> dict[str, np.ndarray]:
    """`count` inputs of exactly `length` tokens: `[CLS]` + consecutive dev tokens (without their own [CLS]/[SEP]
    and padding, concatenated and reused cyclically if too few) + `[SEP]`, one segment."""
    mask = features["padding_mask"] > 0
    cls, sep = int(features["token_ids"][0, 0]), int(features["token_ids"][0, mask[0].sum() - 1])
    stream = np.concatenate([row[m][1:-1] for row, m in zip(features["token_ids"], mask)])
    stream = stream[(stream != cls) & (stream != sep)]
    body = np.resize(stream, count * (length - 2)).reshape(count, length - 2)
    ids = np.concatenate([np.full((count, 1), cls), body, np.full((count, 1), sep)], axis=1).astype(np.int32)
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}


def _length_scan(model, features: dict[str, np.ndarray], lengths: list[int]) -> dict[int, float]:
    """Median batch-1 latency (ms) of the dense model's compiled runner on the first dev sentence's tokens,
    repeated or cut to each length: the part that stays as tokens go shows how far pruning can speed up."""
    import time

    from ltp_tf.inference import TokenDroppingRunner

    runner = TokenDroppingRunner(model, length_bucket=1)
    tokens = features["token_ids"][0][features["padding_mask"][0] > 0]
    scan = {}
    for length in lengths:
        ids = np.resize(tokens, length)[None, :].astype(np.int32)
        batch = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
        runner(batch)
        times = []
        for _ in range(20):
            start = time.perf_counter()
            runner(batch)
            times.append(time.perf_counter() - start)
        scan[length] = round(float(np.median(times)) * 1e3, 2)
    return scan


def _max_logit_difference(predict, reference, inputs) -> float:
    """Largest |logit| difference of an engine's pruned model from the uncompiled runner on `inputs`."""
    return max(float(np.abs(np.asarray(predict(b)["logits"]) - reference(b)["logits"]).max()) for b in inputs)


def _build_checkpoint(path: str) -> str:
    """A checkpoint of the pretrained encoder with untrained thresholds and a seeded random head."""
    import keras

    from ltp_tf.checkpoints import save_checkpoint
    from ltp_tf.config import TokenPruningConfig
    from ltp_tf.data import get_task
    from ltp_tf.data.tokenization import family_of_folder
    from ltp_tf.models import TokenPruningClassifier, load_backbone, packaged_minilm_path

    keras.utils.set_random_seed(0)
    model_dir = _MODEL.value or packaged_minilm_path()
    config = TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=_THRESHOLD.value)
    model = TokenPruningClassifier(load_backbone(model_dir, config), num_classes=get_task(_TASK.value).num_classes)
    model({"token_ids": np.ones((1, 4), "int32")})
    return save_checkpoint(path, model, task=get_task(_TASK.value).name, max_seq_length=_MAX_SEQ_LENGTH.value,
                           vocabulary_file=tuple(os.path.join(model_dir, name)
                                                 for name in family_of_folder(model_dir).tokenizer_files),
                           metadata={"lowercase": True, "strip_accents": False})


def _save_like(checkpoint, model, path: str, max_seq_length: int | None = None) -> str:
    from ltp_tf.checkpoints import save_checkpoint

    return save_checkpoint(path, model, task=checkpoint.task,
                           max_seq_length=max_seq_length or checkpoint.max_seq_length,
                           vocabulary_file=checkpoint.tokenizer_files, metadata=dict(checkpoint.metadata))


def _export(checkpoint_path: str, name: str, workdir: str, onnx: bool, compact_min_length: int = 0) -> str:
    """Exports through the export CLI in a TensorFlow-backend subprocess; returns the version folder."""
    export_dir = os.path.join(workdir, "saved_models")
    command = [sys.executable, "-m", "ltp_tf.export", f"--checkpoint={checkpoint_path}", f"--name={name}",
               f"--export_dir={export_dir}", f"--onnx={onnx}", "--text_signature=false",
               f"--compact_min_length={compact_min_length}"]
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        raise RuntimeError(f"Export failed (exit {result.returncode}): {' '.join(command)}\n{result.stderr[-3000:]}")
    return os.path.join(export_dir, name, "1")


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


def _checked_engines(values: list[str]) -> list[str]:
    unknown = [v for v in values if v not in ENGINES]
    if unknown or not values:
        raise app.UsageError(f"--engines must be a non-empty list from {list(ENGINES)}. Received: {values}")
    return values


def _checked_batch_sizes(values: list[str]) -> list[int]:
    try:
        sizes = [int(v) for v in values]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 2:
        raise app.UsageError(f"--batch_sizes must be integers >= 2 (batch 1 is the latency run). Received: {values}")
    return sizes


def _checked_lengths(values: list[str], maximum: int) -> list[int]:
    try:
        lengths = [int(v) for v in values]
    except ValueError:
        lengths = [0]
    if any(not 1 <= length <= maximum for length in lengths):
        raise app.UsageError(f"--length_scan must be integers in [1, {maximum}]. Received: {values}")
    return lengths


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    app.run(main)
