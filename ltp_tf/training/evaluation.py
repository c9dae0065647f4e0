"""Dev-set evaluation: GLUE metrics, what each layer kept, and FLOPs, in one compiled pass.

Evaluation runs in inference mode, where every pruning block prunes hard (LTP evaluates hard, also
during the soft threshold search). Tokens are masked, not physically removed, so shapes stay static
for XLA; FLOPs are counted from what each layer kept (`ltp_tf.flops`), as LTP counts them.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from ltp_tf.data.features import LabeledFeatures
from ltp_tf.data.glue import GlueTask
from ltp_tf.data.glue_metrics import compute_metrics, predictions_from_logits
from ltp_tf.flops import FlopsReport, count_flops
from ltp_tf.models.classifier import TokenPruningClassifier
from ltp_tf.sparsity.kernels import prunable_kernels
from ltp_tf.training.batching import eval_batches


class _EvalModel(keras.Model):
    """Logits plus the backbone's per-layer kept-token counts and sentence lengths, for one batch."""

    def __init__(self, classifier: TokenPruningClassifier, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier

    def call(self, inputs):
        outputs = self.classifier.backbone(inputs, training=False)
        logits = self.classifier.head(outputs["pooled_output"], training=False)
        return {"logits": logits, "kept_tokens": outputs["kept_tokens"],
                "sequence_lengths": outputs["sequence_lengths"]}


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """A split's metrics, per-sentence kept-token counts `(examples, layers)` and sentence lengths."""

    metrics: dict[str, float]
    kept_tokens: np.ndarray
    sequence_lengths: np.ndarray
    hidden_dim: int
    intermediate_dim: int
    weight_density: float = 1.0

    @property
    def kept_ratio(self) -> list[float]:
        """Per layer: tokens passed on / unpadded tokens, over the whole split."""
        return [float(r) for r in self.kept_tokens.sum(axis=0) / self.sequence_lengths.sum()]

    @property
    def flops(self) -> FlopsReport:
        return count_flops(self.hidden_dim, self.intermediate_dim, self.sequence_lengths, self.kept_tokens,
                           self.weight_density)


class Evaluator:
    """Evaluates a classifier on tokenized splits; compiled once per model (XLA with `jit_compile`)."""

    def __init__(self, model: TokenPruningClassifier, task: GlueTask, batch_size: int, pad_to_multiple_of: int,
                 jit_compile: bool):
        self.model = model
        self.task = task
        self.batch_size = batch_size
        self.pad_to_multiple_of = pad_to_multiple_of
        self._eval_model = _EvalModel(model, name="evaluation")
        self._eval_model.compile(jit_compile=jit_compile)

    def evaluate(self, data: LabeledFeatures) -> Evaluation:
        logits = np.zeros((len(data), self.task.num_classes), np.float32)
        kept = np.zeros((len(data), self.model.backbone.num_layers), np.float32)
        lengths = np.zeros((len(data),), np.int64)
        for rows, inputs in eval_batches(data, self.batch_size, self.pad_to_multiple_of):
            outputs = self._eval_model.predict_on_batch(inputs)
            logits[rows] = np.asarray(outputs["logits"])[:len(rows)]
            kept[rows] = np.asarray(outputs["kept_tokens"])[:len(rows)]
            lengths[rows] = np.asarray(outputs["sequence_lengths"])[:len(rows)]
        metrics = compute_metrics(self.task, data.labels, predictions_from_logits(self.task, logits))
        return Evaluation(metrics, kept, lengths, self.model.backbone.hidden_dim, self.model.backbone.intermediate_dim,
                          encoder_weight_density(self.model))


def encoder_weight_density(model: TokenPruningClassifier) -> float:
    """Nonzero fraction of the encoder blocks' kernel weights (1.0 unless weight pruning zeroed some)."""
    # By path: blocks sharing weights (ALBERT) hold the same kernels, counted once.
    variables = {kernel.path: kernel.variable for block in model.backbone.transformer_layers
                 for kernel in prunable_kernels(block)}
    kernels = [keras.ops.convert_to_numpy(variable) for variable in variables.values()]
    total = sum(k.size for k in kernels)
    return float(sum(np.count_nonzero(k) for k in kernels) / total) if total else 1.0
