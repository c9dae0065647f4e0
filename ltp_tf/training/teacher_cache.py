"""Teacher outputs for distillation, computed once per training example and kept next to the features.

A teacher's outputs are a pure function of the example, so they are computed in one inference pass over
the training split (dense teacher, no dropout) and reused by every stage and every rerun:

    <features_dir>/teacher_outputs/<key>/        (without --features_dir: <out>/<TASK>/teacher_outputs/<key>/)
        teacher.json     {"teacher", "teacher_fingerprint", "data_fingerprint", "examples", "hidden"}
        outputs.npz      logits (examples, classes) float32 [, hidden (examples, hidden) float32: [CLS] states]

Rows follow the training split's example order (not batches: training batches are shuffled and
length-bucketed, so each batch gathers its rows by example index). `<key>` hashes the teacher
checkpoint's content (its `model.keras` bytes), the training examples' token arrays and whether hidden
states are stored: another teacher or other data gets another folder, never stale outputs. A folder is
written to a temporary name and renamed into place, so one with the final name is whole.
"""

from __future__ import annotations

import hashlib
import os

import keras
import numpy as np
from absl import logging

from ltp_tf import checkpoints
from ltp_tf.atomic import write_folder, write_json
from ltp_tf.data.features import LabeledFeatures
from ltp_tf.sparsity.distillation import classifier_forward
from ltp_tf.training.batching import eval_batches
from ltp_tf.training.token_pruning_trainer import TEACHER_HIDDEN, TEACHER_LOGITS

CACHE_DIR = "teacher_outputs"
RECORD_FILE = "teacher.json"
OUTPUTS_FILE = "outputs.npz"


def checkpoint_fingerprint(checkpoint_dir: str) -> str:
    """SHA-256 (first 16 hex digits) of the checkpoint's weights file: changes whenever the teacher does."""
    digest = hashlib.sha256()
    with open(os.path.join(checkpoint_dir, checkpoints.MODEL_FILE), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def data_fingerprint(data: LabeledFeatures) -> str:
    """SHA-256 (16 hex digits) of the split's token ids, segment ids and padding masks, in example order."""
    digest = hashlib.sha256()
    for array in data.features.as_dict().values():
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def teacher_outputs(cache_root: str, teacher_dir: str, train: LabeledFeatures, hidden: bool, batch_size: int,
                    pad_to_multiple_of: int) -> dict[str, np.ndarray]:
    """The teacher's per-example outputs on `train` (`TEACHER_LOGITS`, and `TEACHER_HIDDEN` if `hidden`).

    Read from `cache_root/<key>/` when there; otherwise computed with the checkpoint at `teacher_dir` and
    written there first.
    """
    teacher_key = checkpoint_fingerprint(teacher_dir)
    data_key = data_fingerprint(train)
    folder = os.path.join(cache_root, hashlib.sha256(f"{teacher_key}-{data_key}-{hidden}".encode()).hexdigest()[:16])
    outputs_file = os.path.join(folder, OUTPUTS_FILE)
    if os.path.isfile(os.path.join(folder, RECORD_FILE)):
        logging.info("Teacher outputs read from %s", folder)
        with np.load(outputs_file) as arrays:
            return {name: arrays[name] for name in arrays.files}
    logging.info("Computing teacher outputs of %s on %d training examples -> %s", teacher_dir, len(train), folder)
    outputs = compute_teacher_outputs(checkpoints.load_checkpoint(teacher_dir).model, train, hidden, batch_size,
                                      pad_to_multiple_of)
    record = {"teacher": os.path.abspath(teacher_dir), "teacher_fingerprint": teacher_key,
              "data_fingerprint": data_key, "examples": len(train), "hidden": hidden}

    def write(tmp: str) -> None:
        np.savez(os.path.join(tmp, OUTPUTS_FILE), **outputs)
        write_json(os.path.join(tmp, RECORD_FILE), record, sort_keys=True)

    write_folder(folder, write)
    return outputs


class _TeacherModel(keras.Model):
    """Logits and last-layer `[CLS]` states of a classifier in inference mode, for one batch."""

    def __init__(self, teacher: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.teacher = teacher

    def call(self, inputs):
        logits, outputs = classifier_forward(self.teacher, inputs, training=False)
        return {TEACHER_LOGITS: logits, TEACHER_HIDDEN: outputs["sequence_output"][:, 0, :]}


def compute_teacher_outputs(teacher: keras.Model, train: LabeledFeatures, hidden: bool, batch_size: int,
                            pad_to_multiple_of: int) -> dict[str, np.ndarray]:
    """One inference pass of `teacher` over `train`: per-example float32 arrays in example order."""
    model = _TeacherModel(teacher, name="teacher_outputs")
    model.compile()
    logits = np.zeros((len(train), teacher.num_classes), np.float32)
    states = np.zeros((len(train), teacher.backbone.hidden_dim), np.float32) if hidden else None
    for rows, inputs in eval_batches(train, batch_size, pad_to_multiple_of):
        outputs = model.predict_on_batch(inputs)
        logits[rows] = np.asarray(outputs[TEACHER_LOGITS], np.float32)[:len(rows)]
        if states is not None:
            states[rows] = np.asarray(outputs[TEACHER_HIDDEN], np.float32)[:len(rows)]
    return {TEACHER_LOGITS: logits, **({TEACHER_HIDDEN: states} if states is not None else {})}
