"""ONNX export of the token-id signature and an onnxruntime predictor.

Models that `ltp_tf.serving.onnx_graph.supports` are written directly as a graph of ONNX Runtime's fused
BERT kernels with token dropping between them (`write_onnx`); others are converted by tf2onnx from the
SavedModel. tf2onnx converts from a SavedModel that holds only the token-id signature: its `from_function` path
fails on this TensorFlow version, and the text signature's TensorFlow Text ops have no ONNX
counterpart (ONNX clients tokenize themselves, as `token_ids` clients do). TensorFlow's exact GELU uses
`Erfc`, which ONNX lacks and tf2onnx passes through unconverted; it is rewritten as `1 - Erf(x)` (the
same function; the difference is float32 rounding, far below the 1e-5 parity bound).

ONNX has no assertion op, so the input checks of the token-id signature (`ltp_tf.serving.signatures`)
are not in the ONNX graph: onnxruntime would silently wrap negative token ids around. The bounds are
stored in the model's metadata (`metadata_props` key `ltp_tf_input_limits`, JSON) and `OnnxPredictor`
checks every input against them before running, raising `ValueError`; clients that call onnxruntime
directly must check their inputs the same way.

Token budget (`max_batch_tokens`, metadata key `ltp_tf_max_batch_tokens`, set at export or per predictor):
`OnnxPredictor` cuts a batch's padding to its longest row and, when rows x longest row exceed the budget,
runs it as consecutive sub-batches of rows sorted by length, each within the budget (a row longer than the
budget runs alone) and cut to its own longest row; outputs come back in the caller's row order. Outputs are
per row, so they are those of the whole batch up to float rounding. It keeps long batches in cache: the
pruned graph's attention at pruning layers writes its (batch, heads, seq, seq) probabilities out (the score
needs them), and a batch's rows are padded to its longest kept row at every compaction. Pick it with
`python -m benchmarks.onnx_batch_tokens` (benchmarks/README.md); 0 = run every batch whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from ltp_tf.serving.signatures import TOKEN_ID_INPUTS, TOKEN_ID_SIGNATURE
from ltp_tf.validation import check_int_at_least

OPSET = 17
LIMITS_KEY = "ltp_tf_input_limits"
BATCH_TOKENS_KEY = "ltp_tf_max_batch_tokens"


def convert_saved_model(token_id_saved_model: str, output_path: str, opset: int = OPSET) -> str:
    """Converts the `token_ids` signature of a SavedModel to ONNX at `output_path` (tf2onnx, subprocess)."""
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", token_id_saved_model,
               "--signature_def", TOKEN_ID_SIGNATURE, "--opset", str(opset), "--output", output_path]
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0 or not os.path.isfile(output_path):
        raise RuntimeError(f"tf2onnx failed (exit {result.returncode}): {' '.join(command)}\n"
                           f"{(result.stdout + result.stderr)[-4000:]}")
    replace_erfc(output_path)
    return output_path


def replace_erfc(path: str) -> int:
    """Rewrites every `Erfc(x)` node of the ONNX file at `path` as `1 - Erf(x)`; returns how many."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(path)
    graph = model.graph
    nodes, count = [], 0
    for node in graph.node:
        if node.op_type != "Erfc":
            nodes.append(node)
            continue
        count += 1
        erf_output = f"{node.output[0]}__erf"
        nodes.append(helper.make_node("Erf", [node.input[0]], [erf_output], name=f"{node.name}__erf"))
        nodes.append(helper.make_node("Sub", ["ltp_tf__one", erf_output], list(node.output),
                                      name=f"{node.name}__one_minus"))
    if count:
        graph.initializer.append(numpy_helper.from_array(np.array(1.0, dtype=np.float32), "ltp_tf__one"))
        del graph.node[:]
        graph.node.extend(nodes)
        onnx.checker.check_model(model)
        onnx.save(model, path)
    return count


def with_input_limits(model, limits: dict[str, int], max_batch_tokens: int = 0):
    """`model` (an `onnx.ModelProto`) with `limits` (`signatures.input_limits`) and, if > 0, the token budget
    `max_batch_tokens` (module docstring) in its metadata."""
    import onnx

    check_int_at_least("max_batch_tokens", max_batch_tokens, 0)
    props = {prop.key: prop.value for prop in model.metadata_props}
    props[LIMITS_KEY] = json.dumps(limits, sort_keys=True)
    if max_batch_tokens:
        props[BATCH_TOKENS_KEY] = str(max_batch_tokens)
    onnx.helper.set_model_props(model, props)
    return model


def write_onnx(model, task, archive_factory, output_path: str, limits: dict[str, int],
               compact_min_length: int = 0, max_batch_tokens: int = 0) -> str:
    """Writes `model`'s ONNX file: the fused graph when supported, else tf2onnx of `archive_factory()`.

    Returns how it was written: `"fused"` or `"tf2onnx"`. `limits` (`signatures.input_limits`) go into the
    ONNX metadata for `OnnxPredictor`'s input checks, with the token budget `max_batch_tokens` (module
    docstring; 0: none). `compact_min_length`: the fused graph's length gate
    (`ltp_tf.serving.onnx_graph.build_onnx_graph`).
    """
    import onnx

    from ltp_tf.atomic import write_file
    from ltp_tf.serving import onnx_graph

    check_int_at_least("max_batch_tokens", max_batch_tokens, 0)

    if onnx_graph.supports(model) is not None:
        with tempfile.TemporaryDirectory(prefix="ltp_tf_onnx_") as folder:
            saved_model = os.path.join(folder, "token_ids")
            archive_factory().write_out(saved_model, verbose=False)
            converted = convert_saved_model(saved_model, os.path.join(folder, "model.onnx"))
            graph, method = onnx.load(converted), "tf2onnx"
    else:
        graph, method = onnx_graph.build_onnx_graph(model, task, compact_min_length=compact_min_length), "fused"
    graph = with_input_limits(graph, limits, max_batch_tokens)
    write_file(output_path, lambda tmp: onnx.save(graph, tmp))
    return method


def check_token_inputs(features: dict[str, np.ndarray], limits: dict[str, int]) -> None:
    """Raises `ValueError` for inputs the token-id signature would refuse (same rules, in NumPy)."""
    shape = np.shape(features["token_ids"])
    if len(shape) != 2 or shape[0] == 0:
        raise ValueError("`token_ids` must have shape (batch, sequence) with batch >= 1. "
                         f"Received: shape={shape}")
    for name in ("segment_ids", "padding_mask"):
        if np.shape(features[name]) != shape:
            raise ValueError(f"`{name}` must have the shape of `token_ids` {shape}. "
                             f"Received: shape={np.shape(features[name])}")
    for name, limit in (("token_ids", limits["vocabulary_size"]), ("segment_ids", limits["num_segments"])):
        values = np.asarray(features[name])
        if values.min() < 0 or values.max() >= limit:
            raise ValueError(f"`{name}` must be in [0, {limit}). Received: values from {values.min()} to "
                             f"{values.max()}")
    mask = np.asarray(features["padding_mask"])
    if not np.isin(mask, (0, 1)).all():
        raise ValueError("`padding_mask` must be 0 (padding) or 1 (real token). "
                         f"Received: values from {mask.min()} to {mask.max()}")
    if not (mask[:, 0] == 1).all():
        raise ValueError("`padding_mask` must be 1 at position 0 ([CLS]) of every row: pad on the right. "
                         "Received: a row starting with padding")
    longest = int(row_lengths(mask).max())
    if longest > limits["max_seq_length"]:
        raise ValueError(f"Inputs are longer than max_seq_length={limits['max_seq_length']} tokens: truncate "
                         f"them. Received: {longest} tokens")


def row_lengths(padding_mask: np.ndarray) -> np.ndarray:
    """Each row's length: one past its last real token (what cutting its padding keeps)."""
    positions = np.arange(1, np.shape(padding_mask)[1] + 1)[None, :]
    return np.where(np.asarray(padding_mask) == 1, positions, 0).max(axis=1)


def session_options(threads: int | None = None):
    """onnxruntime options for latency: `threads` intra-op threads (default: the CPUs this process may
    use), one inter-op thread, sequential execution, every graph optimization."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxPredictor:
    """Runs an exported ONNX model with onnxruntime on the CPU: `predictor(features) -> {output: array}`.

    `threads`: intra-op threads (default: every CPU this process may use; see `session_options`).
    `max_batch_tokens`: the token budget of a call (module docstring); None: the one stored in the model's
    metadata (none: 0), 0: run every batch whole.
    """

    def __init__(self, path: str, threads: int | None = None, max_batch_tokens: int | None = None):
        import onnxruntime

        if max_batch_tokens is not None:
            check_int_at_least("max_batch_tokens", max_batch_tokens, 0)
        options = session_options(threads)
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.output_names = [output.name for output in self.session.get_outputs()]
        names = sorted(i.name for i in self.session.get_inputs())
        if names != sorted(TOKEN_ID_INPUTS):
            raise ValueError(f"{path} is not a token-id model: inputs {names}, expected {sorted(TOKEN_ID_INPUTS)}")
        metadata = self.session.get_modelmeta().custom_metadata_map
        if LIMITS_KEY not in metadata:
            raise ValueError(f"{path} has no {LIMITS_KEY!r} metadata: export it again with this ltp_tf version.")
        self.limits = json.loads(metadata[LIMITS_KEY])
        self.max_batch_tokens = (int(metadata.get(BATCH_TOKENS_KEY, 0)) if max_batch_tokens is None
                                 else max_batch_tokens)

    def __call__(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the model; inputs the SavedModel's token-id signature would refuse raise `ValueError`."""
        feeds = {name: np.asarray(features[name]).astype(np.int32) for name in TOKEN_ID_INPUTS}
        check_token_inputs(feeds, self.limits)
        lengths = row_lengths(feeds["padding_mask"])
        chunks = sub_batches(lengths, self.max_batch_tokens)
        if len(chunks) == 1:
            return self._run(feeds, int(lengths.max()))
        order = np.concatenate(chunks)
        parts = [self._run({name: value[rows] for name, value in feeds.items()}, int(lengths[rows].max()))
                 for rows in chunks]
        inverse = np.argsort(order)
        return {name: np.concatenate([part[name] for part in parts])[inverse] for name in self.output_names}

    def _run(self, feeds: dict[str, np.ndarray], longest: int) -> dict[str, np.ndarray]:
        feeds = {name: value[:, :longest] for name, value in feeds.items()}  # padding columns change no output
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))


def sub_batches(lengths: np.ndarray, max_batch_tokens: int) -> list[np.ndarray]:
    """The row indices of each sub-batch of a batch whose rows have `lengths` under the token budget
    `max_batch_tokens` (module docstring): one sub-batch of every row in order when the batch fits (or the
    budget is 0), else rows sorted by length, grouped greedily so rows x longest row <= the budget."""
    lengths = np.asarray(lengths)
    if not max_batch_tokens or len(lengths) * int(lengths.max()) <= max_batch_tokens:
        return [np.arange(len(lengths))]
    order = np.argsort(lengths, kind="stable")
    chunks, start = [], 0
    for end in range(1, len(order) + 1):  # sorted ascending: a sub-batch's longest row is its last
        if end == len(order) or (end + 1 - start) * int(lengths[order[end]]) > max_batch_tokens:
            chunks.append(order[start:end])
            start = end
    return chunks
