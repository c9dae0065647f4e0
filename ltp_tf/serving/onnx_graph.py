"""ONNX graph of a token-pruning classifier written with ONNX Runtime's fused BERT kernels, tokens dropped between.

tf2onnx's conversion of the SavedModel spells every LayerNorm, GELU and attention as dozens of small
ops (about 1,800 nodes for the 6-layer pruned MiniLM), and `onnxruntime.transformers.optimizer` fuses
none of them (its patterns match PyTorch exports: 0 fusions measured on both the dense and the pruned
graph). At batch 1 those nodes' dispatch costs more than the FLOPs that pruning saves. This module
writes the graph directly from the Keras weights with the `com.microsoft` kernels the optimizer would
have produced:

    EmbedLayerNormalization(token_ids, segment_ids)              word + position + segment, LayerNorm
    per block:
      non-pruning block:  Attention(x, W_qkv, b_qkv, live mask)  fused QKV projection + attention
      pruning block:      MatMul(x, W_qkv) + b_qkv -> Split -> Attention (ONNX opset 23, which also
                          outputs the probabilities P: score[k] = sum_{h, q live} P[h, q, k] / (H * R),
                          keep = score >= threshold, [CLS] kept) and, at a compaction layer, TopK of
                          the keep mask (kept tokens first and in order: TopK breaks ties by the lower
                          index) and GatherND of the residual, the attention context and the mask: W_o,
                          the feed-forward and every later block run on fewer tokens; with more than
                          one row, the rest of a compaction layer's block runs on the live tokens of
                          all rows packed into one (NonZero + GatherND, ScatterND back into rows for
                          the next attention), skipping the padding to the longest kept row
      MatMul(W_o) -> SkipLayerNormalization(+ residual, + b_o) -> MatMul(W_1) -> BiasGelu (FastGelu for
      the tanh GELU) -> MatMul(W_2) -> SkipLayerNormalization
    pooler Gemm + Tanh, classifier Gemm, Softmax / ArgMax

The opset-23 `Attention` nodes have no int8 kernel: dynamic quantization must leave them alone
(`float_only_nodes`).

Inputs and outputs are those of the SavedModel's `token_ids` signature (`ltp_tf.serving.signatures`);
outputs equal the hard-masked model's on live tokens for any choice of compaction layers (pruning
layers that are not compaction layers only mask). Supported: `TokenPruningBackbone` encoders with
`prune_mode` `"none"` or `"absolute_threshold"` and an exact or tanh GELU (`supports`); other models
are converted with tf2onnx (`ltp_tf.serving.onnx_export`). Unlike the SavedModel, the graph does not
check `max_seq_length` (inputs longer than the position table make onnxruntime raise an error) and runs
padded columns as dead tokens instead of cutting them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ltp_tf.layers.token_scoring import MIN_THRESHOLD
from ltp_tf.validation import check_int_at_least

OPSET = 23  # the first with `Attention` (and its probabilities output)
MS_DOMAIN = "com.microsoft"


def supports(model) -> str | None:
    """None if `build_onnx_graph` can write `model`, else why not (then tf2onnx converts it)."""
    from ltp_tf.models.backbone import TokenPruningBackbone
    from ltp_tf.models.classifier import TokenPruningClassifier

    if type(model) is not TokenPruningClassifier or type(model.backbone) is not TokenPruningBackbone:
        return "only TokenPruningClassifier with the BERT-style TokenPruningBackbone is written directly"
    if model.backbone.family != "bert":
        return f"family={model.backbone.family!r}: only BERT's embeddings and pooler are written directly"
    config = model.backbone.pruning_config
    if config.prune_mode not in ("none", "absolute_threshold"):
        return f"prune_mode={config.prune_mode!r} (top-k) is converted with tf2onnx"
    if model.backbone.activation not in ("gelu_exact", "gelu_approximate"):
        return f"activation={model.backbone.activation!r} has no fused ONNX Runtime kernel"
    if model.output_dense.activation.__name__ != "linear":
        return "the classifier head must be linear"
    return None


def build_onnx_graph(model, task, compact_layers: Sequence[int] | None = None, compact_min_length: int = 0):
    """The `onnx.ModelProto` of `model` for `task` (see the module docstring).

    Args:
        model: a `TokenPruningClassifier` that `supports` accepts.
        task: its `GlueTask` (regression tasks output `score`, classification `probabilities` and `label`).
        compact_layers: pruning layers after which tokens are physically removed. Default: all of them.
        compact_min_length: the length gate: a compaction layer removes tokens only from a sequence of at
            least this many positions (an `If` node on the current length; the value is the graph's
            `compact_min_length` initializer, so it can be changed without rebuilding); shorter ones are
            only masked. 0: always remove (no `If` nodes). Outputs are the same for every value.
    """
    import onnx
    from onnx import TensorProto, helper

    reason = supports(model)
    if reason:
        raise ValueError(f"Cannot write this model as a fused ONNX graph: {reason}.")
    backbone = model.backbone
    blocks = list(backbone.transformer_layers)
    pruning_layers = [i for i, block in enumerate(blocks) if block.prunes]
    compact = set(pruning_layers if compact_layers is None else compact_layers)
    if not compact <= set(pruning_layers):
        raise ValueError(f"`compact_layers` must be pruning layers of the model ({pruning_layers}). "
                         f"Received: compact_layers={sorted(compact)}")
    check_int_at_least("compact_min_length", compact_min_length, 0)
    g = _Graph()
    if compact_min_length:
        g.const(np.array([compact_min_length], np.int64), name="compact_min_length")
    hidden, heads = backbone.hidden_dim, blocks[0].num_heads if blocks else 1

    # Embeddings: (batch, seq, hidden); `live` (batch, seq) float 1/0.
    x, _ = g.op("EmbedLayerNormalization",
             ["token_ids", "segment_ids", g.const(_np(backbone.token_embedding.embeddings)),
              g.const(_np(backbone.position_embedding.embeddings)), g.const(_np(backbone.segment_embedding.embeddings)),
              g.const(_np(backbone.embeddings_layer_norm.gamma)), g.const(_np(backbone.embeddings_layer_norm.beta))],
             outputs=2, domain=MS_DOMAIN, epsilon=float(backbone.embeddings_layer_norm.epsilon))
    live = g.op("Cast", ["padding_mask"], to=TensorProto.FLOAT)
    length = g.op("Slice", [g.op("Shape", ["token_ids"]), g.const(np.array([1])), g.const(np.array([2]))])  # (1,)
    positions = g.op("Range", [g.const(np.array(0)), g.op("Squeeze", [length]), g.const(np.array(1))])  # (seq,)
    first = g.op("Equal", [positions, g.const(np.array(0))])  # (seq,) bool: [CLS]
    batched = compact and g.op("Greater", [g.op("Slice", [g.op("Shape", ["token_ids"]), g.const(np.array([0])),
                                                          g.const(np.array([1]))]),
                                           g.const(np.array([1]))])  # (1,) bool: more than one row
    counts = []
    query_axis = ("", "")  # (the length it was built for, `(1, 1, length, 1)`: the mask's query axis)
    for index, block in enumerate(blocks):
        wqkv, bqkv, wo, bo = _attention_weights(block, hidden)
        if not block.prunes:
            live_int = g.op("Cast", [live], to=TensorProto.INT32)
            context = g.op("Attention", [x, g.const(wqkv), g.const(bqkv), live_int],
                           domain=MS_DOMAIN, num_heads=heads)  # (batch, seq, hidden)
            attended = g.op("MatMul", [context, g.const(wo)])
            counts.append(g.op("ReduceSum", [live, g.const(np.array([1]))], keepdims=0))
        else:
            live_bool = g.op("Cast", [live], to=TensorProto.BOOL)
            if query_axis[0] != length:  # the mask's shape changes with the sequence (after a compaction)
                query_axis = (length, g.op("Concat", [g.const(np.array([1, 1])), length, g.const(np.array([1]))],
                                           axis=0))
            context, probs = _attention_with_probabilities(g, x, live_bool, query_axis[1], wqkv, bqkv, heads)
            x, context, live, length, count = _prune(g, block, x, context, live, live_bool, probs, length, first,
                                                     heads, index in compact, compact_min_length)
            counts.append(count)
            if index in compact:  # the rest of the block runs on the live tokens of all rows packed together
                rows = x
                x, context, where = _pack(g, batched, x, context, live)
            attended = g.op("MatMul", [context, g.const(wo)])  # after compaction: on the kept tokens only
        ln1, ln2 = block.self_attention_layer_norm, block.feedforward_layer_norm
        x1 = g.op("SkipLayerNormalization", [attended, x, g.const(_np(ln1.gamma)), g.const(_np(ln1.beta)),
                                             g.const(bo)], domain=MS_DOMAIN, epsilon=float(ln1.epsilon))
        inner = block.feedforward_intermediate_dense
        gelu = "BiasGelu" if block.activation == "gelu_exact" else "FastGelu"
        hidden_ff = g.op(gelu, [g.op("MatMul", [x1, g.const(_np(inner.kernel))]), g.const(_np(inner.bias))],
                         domain=MS_DOMAIN)
        outer = block.feedforward_output_dense
        x = g.op("SkipLayerNormalization", [g.op("MatMul", [hidden_ff, g.const(_np(outer.kernel))]), x1,
                                            g.const(_np(ln2.gamma)), g.const(_np(ln2.beta)), g.const(_np(outer.bias))],
                 domain=MS_DOMAIN, epsilon=float(ln2.epsilon))
        if index in compact:
            x = _unpack(g, batched, x, rows, where)

    cls = g.op("Gather", [x, g.const(np.array(0))], axis=1)  # (batch, hidden)
    pooled = g.op("Tanh", [g.op("Gemm", [cls, g.const(_np(backbone.pooled_dense.kernel)),
                                         g.const(_np(backbone.pooled_dense.bias))])])
    g.op("Gemm", [pooled, g.const(_np(model.output_dense.kernel)), g.const(_np(model.output_dense.bias))],
         name="logits")
    kept = [g.op("Unsqueeze", [c, g.const(np.array([1]))]) for c in counts]
    kept = g.op("Concat", kept, axis=1) if kept else g.op("Slice", ["padding_mask", g.const(np.array([0])),
                                                                    g.const(np.array([0]))])
    g.op("Cast", [g.op("Round", [g.op("Cast", [kept], to=TensorProto.FLOAT)])], to=TensorProto.INT32,
         name="kept_tokens")
    num_classes = int(model.output_dense.units)
    if task.is_regression:
        g.op("Squeeze", ["logits", g.const(np.array([1]))], name="score")
        outputs = [("logits", TensorProto.FLOAT, ["batch", num_classes]), ("score", TensorProto.FLOAT, ["batch"])]
    else:
        g.op("Softmax", ["logits"], axis=-1, name="probabilities")
        g.op("Cast", [g.op("ArgMax", ["logits"], axis=-1, keepdims=0)], to=TensorProto.INT32, name="label")
        outputs = [("logits", TensorProto.FLOAT, ["batch", num_classes]),
                   ("probabilities", TensorProto.FLOAT, ["batch", num_classes]),
                   ("label", TensorProto.INT32, ["batch"])]
    outputs.append(("kept_tokens", TensorProto.INT32, ["batch", len(blocks)]))
    graph = helper.make_graph(
        g.nodes, "ltp_tf_token_pruning",
        [helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", "sequence"])
         for name in ("token_ids", "segment_ids", "padding_mask")],
        [helper.make_tensor_value_info(name, dtype, shape) for name, dtype, shape in outputs],
        initializer=g.initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                         helper.make_opsetid(MS_DOMAIN, 1)],
                                   producer_name="ltp_tf")
    onnx.checker.check_model(onnx_model)
    return onnx_model


def float_only_nodes(onnx_model) -> list[str]:
    """Names of the nodes dynamic int8 quantization must skip: the standard-domain `Attention` nodes
    (`onnxruntime.quantization` treats every node named `Attention` as the `com.microsoft` one it can
    quantize)."""
    return [node.name for node in onnx_model.graph.node if node.op_type == "Attention" and not node.domain]


def _attention_weights(block, hidden: int) -> tuple[np.ndarray, ...]:
    """`(W_qkv (hidden, 3 hidden), b_qkv (3 hidden,), W_o (hidden, hidden), b_o (hidden,))`, heads major."""
    attention = block.self_attention_layer
    projections = (attention.query_dense, attention.key_dense, attention.value_dense)
    kernel = np.concatenate([_np(dense.kernel).reshape(hidden, hidden) for dense in projections], axis=1)
    bias = np.concatenate([_np(dense.bias).reshape(hidden) for dense in projections])
    return kernel, bias, _np(attention.output_dense.kernel).reshape(hidden, hidden), _np(attention.output_dense.bias)


def _attention_with_probabilities(g: "_Graph", x, live_bool, query_axis, wqkv: np.ndarray, bqkv: np.ndarray,
                                  heads: int):
    """Attention that also returns its probabilities: `(context before W_o (batch, seq, hidden), probabilities
    (batch, heads, query, key))`. Dead keys (`live_bool` false) are masked out of the softmax; `query_axis` is
    the shape `(1, 1, seq, 1)`.

    One ONNX `Attention` node (opset 23; `qk_matmul_output_mode=3` outputs the probabilities after the
    softmax) instead of the same math spelled as a dozen ops: no transposed copies of Q, K, V or the context.
    """
    hidden = wqkv.shape[0]
    qkv = g.op("Add", [g.op("MatMul", [x, g.const(wqkv)]), g.const(bqkv)])  # (batch, seq, 3 hidden)
    query, key, value = g.op("Split", [qkv, g.const(np.array([hidden] * 3))], outputs=3, axis=2)
    live_keys = g.op("Unsqueeze", [live_bool, g.const(np.array([1, 2]))])  # (batch, 1, 1, key)
    # ONNX Runtime wants the mask's query axis spelled out: (batch, 1, query, key).
    mask = g.op("Expand", [live_keys, query_axis])
    context, _, _, probs = g.op("Attention", [query, key, value, mask], outputs=4, unused_outputs=(1, 2),
                                q_num_heads=heads, kv_num_heads=heads, qk_matmul_output_mode=3)
    return context, probs


def _prune(g: "_Graph", block, x, context, live, live_bool, probs, length, first, heads: int, compact: bool,
           compact_min_length: int):
    """Scores, keep mask and (if `compact`) the kept tokens moved to the front and the rest cut off.

    Returns `(x, context, live, length, kept count (batch,))`; with compaction the first four are cut to the
    longest kept row (behind the length gate's `If` when `compact_min_length`).
    """
    from onnx import TensorProto

    config = block.pruning_config
    received = g.op("ReduceSum", [g.op("MatMul", [g.op("Unsqueeze", [live, g.const(np.array([1, 2]))]), probs]),
                                  g.const(np.array([1, 2]))], keepdims=0)  # (batch, key)
    if config.scoring_mode == "mean":
        scores = g.op("Div", [received, g.const(np.float32(heads * float(config.score_reference_length)))])
    else:
        live_queries = g.op("Max", [g.op("ReduceSum", [live, g.const(np.array([1]))], keepdims=1),
                                    g.const(np.float32(1))])
        scores = g.op("Div", [received, g.op("Mul", [live_queries, g.const(np.float32(heads))])])
    threshold = np.maximum(np.float32(_np(block.threshold)), np.float32(MIN_THRESHOLD)).astype(np.float32)
    is_first = g.op("Slice", [first, g.const(np.array([0])), length])  # (seq,)
    keep = g.op("And", [live_bool, g.op("Or", [g.op("GreaterOrEqual", [scores, g.const(threshold)]), is_first])])
    keep = g.op("Cast", [keep], to=TensorProto.FLOAT)  # (batch, seq) 1/0
    count = g.op("ReduceSum", [keep, g.const(np.array([1]))], keepdims=0)  # (batch,)
    if not compact:
        return x, context, keep, length, count
    if not compact_min_length:
        return (*_compact(g, x, context, keep, count), count)
    # The length gate: compact only a sequence of at least `compact_min_length` positions, else just mask.
    x, context, keep, length = g.if_else(
        g.op("GreaterOrEqual", [length, "compact_min_length"]),
        lambda sub: _compact(sub, x, context, keep, count),
        lambda sub: [sub.op("Identity", [value]) for value in (x, context, keep, length)],
        (TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.INT64))
    return x, context, keep, length, count


def _compact(g: "_Graph", x, context, keep, count):
    """Kept tokens moved to the front of each row (in order), cut to the longest kept row."""
    from onnx import TensorProto

    new_length = g.op("Cast", [g.op("ReduceMax", [count], keepdims=1)], to=TensorProto.INT64)  # (1,)
    # The 1s of `keep` first; TopK breaks ties by the lower index, so kept tokens stay in order.
    _, order = g.op("TopK", [keep, new_length], outputs=2, largest=1, sorted=1)  # (batch, seq')
    index = g.op("Unsqueeze", [order, g.const(np.array([2]))])
    x = g.op("GatherND", [x, index], batch_dims=1)
    context = g.op("GatherND", [context, index], batch_dims=1)
    keep = g.op("GatherElements", [keep, order], axis=1)
    return x, context, keep, new_length


def _pack(g: "_Graph", batched, x, context, live):
    """`(x, context, where)`: with more than one row (`batched`), the live tokens of all rows packed into one
    row, `(1, tokens, hidden)`, and their `(row, position)` pairs `where` (tokens, 2); else `x` and `context`
    unchanged (a single row has no padding to skip). The feed-forward and the LayerNorms work token by token,
    so packing saves the padding that compaction leaves (every row padded to the longest kept row)."""
    from onnx import TensorProto

    def packed(sub):
        where = sub.op("Transpose", [sub.op("NonZero", [sub.op("Cast", [live], to=TensorProto.BOOL)])], perm=[1, 0])
        return [sub.op("Unsqueeze", [sub.op("GatherND", [value, where]), sub.const(np.array([0]))])
                for value in (x, context)] + [where]

    def unchanged(sub):
        return [sub.op("Identity", [value]) for value in (x, context, sub.const(np.zeros((0, 2), np.int64)))]

    return g.if_else(batched, packed, unchanged, (TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.INT64))


def _unpack(g: "_Graph", batched, x, rows, where):
    """The inverse of `_pack`: packed tokens scattered back to their rows (shaped like `rows`; dead positions 0)."""
    from onnx import TensorProto, helper

    def scattered(sub):
        zeros = sub.op("ConstantOfShape", [sub.op("Shape", [rows])],
                       value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]))
        return [sub.op("ScatterND", [zeros, where, sub.op("Squeeze", [x, sub.const(np.array([0]))])])]

    return g.if_else(batched, scattered, lambda sub: [sub.op("Identity", [x])], (TensorProto.FLOAT,))[0]


def _np(variable) -> np.ndarray:
    from keras import ops

    return np.asarray(ops.convert_to_numpy(variable), dtype=np.float32)


class _Graph:
    """Collects nodes and initializers, naming every value uniquely."""

    def __init__(self):
        self.nodes: list = []
        self.initializers: list = []
        self._counter = [0]  # shared with subgraphs, so names stay unique across branches

    def _name(self, stem: str) -> str:
        self._counter[0] += 1
        return f"{stem}_{self._counter[0]}"

    def subgraph(self) -> "_Graph":
        """A graph for an `If` branch: its own nodes, this graph's names and initializers."""
        sub = _Graph()
        sub.initializers, sub._counter = self.initializers, self._counter
        return sub

    def if_else(self, condition, then_branch, else_branch, types: Sequence[int]) -> list[str]:
        """An `If` node: `then_branch(sub)` / `else_branch(sub)` add nodes to a subgraph and return its outputs
        (of the ONNX element `types`); returns the node's outputs."""
        from onnx import helper

        branches = {}
        for key, build in (("then_branch", then_branch), ("else_branch", else_branch)):
            sub = self.subgraph()
            names = build(sub)
            branches[key] = helper.make_graph(sub.nodes, self._name("branch"), [],
                                              [helper.make_tensor_value_info(name, dtype, None)
                                               for name, dtype in zip(names, types)])
        outputs = self.op("If", [condition], outputs=len(types), **branches)
        return [outputs] if len(types) == 1 else outputs

    def const(self, array, name: str | None = None) -> str:
        from onnx import numpy_helper

        array = np.asarray(array)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        name = name or self._name("const")
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], outputs: int = 1, name: str | None = None,
           domain: str = "", unused_outputs: Sequence[int] = (), **attributes):
        """Adds a node; its output names (one string, or a list if `outputs` > 1; `unused_outputs` get "",
        which tells the kernel not to compute them)."""
        from onnx import helper

        names = [name or self._name(op_type.lower())] + [self._name(op_type.lower()) for _ in range(outputs - 1)]
        names = ["" if i in unused_outputs else value for i, value in enumerate(names)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=self._name(op_type),
                                           domain=domain or None, **attributes))
        return names[0] if outputs == 1 else names
