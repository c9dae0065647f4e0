"""A real short run on MRPC: the packaged MiniLM-L6 fine-tuned on real MRPC pairs while its block kernels are pruned
to 2:4 with snip-momentum; the target sparsity is reached and dev accuracy is clearly above chance.

Kept small for a 2-core CPU: 640 training pairs (balanced, so the classifier cannot win by the label prior),
max_seq_length 64, batch 16, 80 steps; the token embedding is frozen (the optimizer update of its 30522 x 384
table would dominate each step and it is not pruned). Pruning runs from step 20 to step 60, every 2 steps, then
20 steps of cooldown.

"Above chance" is measured honestly: MRPC dev is 68% positive, so plain accuracy is compared with the majority
baseline, and the bars are on balanced accuracy (mean recall of both classes; any constant prediction scores 0.5)
and ROC AUC (0.5 for any score unrelated to the label). Over the 408 dev pairs one standard error at chance is about
0.025, and the bars sit more than 3 of them above 0.5; the margins were checked over several seeds (see
docs/weight_pruning.md, "Measured here").
"""

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ltp_tf import TokenPruningClassifier, load_backbone, packaged_minilm_path
from ltp_tf.data import load_preprocessor, read_split, tokenize
from ltp_tf.sparsity import UpdateWeightPruning, WeightPruningConfig, find_plan, setup_weight_pruning, sparsity_report

TRAIN_PAIRS, MAX_SEQ_LENGTH, BATCH, EPOCHS, LEARNING_RATE = 640, 64, 16, 2, 1e-4
BALANCED_ACCURACY_BAR, AUC_BAR = 0.58, 0.62


def _balanced_subset(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    return np.sort(np.concatenate([rng.choice(positives, count // 2, replace=False),
                                   rng.choice(negatives, count // 2, replace=False)]))


@pytest.mark.e2e
def test_mrpc_reaches_2_in_4_with_accuracy_above_chance(glue_dir):
    keras.utils.set_random_seed(0)
    train, dev = read_split("mrpc", "train", glue_dir), read_split("mrpc", "dev", glue_dir)
    index = _balanced_subset(train.labels, TRAIN_PAIRS, np.random.default_rng(0))
    preprocessor = load_preprocessor(packaged_minilm_path(), MAX_SEQ_LENGTH)
    x_train = tokenize(preprocessor, tuple(tuple(column[i] for i in index) for column in train.texts)).as_dict()
    y_train = train.labels[index]
    x_dev = tokenize(preprocessor, dev.texts).as_dict()

    model = TokenPruningClassifier(load_backbone(), num_classes=2)
    model({key: value[:2] for key, value in x_train.items()})
    model.backbone.token_embedding.trainable = False
    config = WeightPruningConfig(do_prune=True, pruning_pattern="2:4", target_sparsity=0.5, pruning_frequency=2,
                                 sparsity_warm_epochs=0.5, cooldown_epochs=0.5, op_names=("transformer_layer_",))
    steps_per_epoch = TRAIN_PAIRS // BATCH
    setup = setup_weight_pruning(model, config, steps_per_epoch=steps_per_epoch, epochs=EPOCHS)
    assert [callback.__class__ for callback in setup.callbacks] == [UpdateWeightPruning]
    model.compile(optimizer=keras.optimizers.AdamW(LEARNING_RATE, weight_decay=0.0), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x_train, y_train, batch_size=BATCH, epochs=EPOCHS, verbose=0, callbacks=list(setup.callbacks))

    plan = find_plan(model)
    assert plan.step == EPOCHS * steps_per_epoch and len(plan.kernels) == 6 * 6
    assert history.history["weight_sparsity"][-1] == 0.5
    report = sparsity_report(model)
    assert report.pruned_sparsity == 0.5
    for pruned in plan.kernels:  # every kernel is exactly 2:4 along its inputs
        matrix = pruned.kernel.view.to_matrix(keras.ops.convert_to_numpy(pruned.kernel.variable))
        assert np.all((matrix.reshape(-1, 4, matrix.shape[1]) == 0).sum(axis=1) == 2)

    scores = model.predict(x_dev, batch_size=64, verbose=0)
    predictions = scores.argmax(axis=-1)
    labels = dev.labels
    balanced = 0.5 * ((predictions[labels == 1] == 1).mean() + (predictions[labels == 0] == 0).mean())
    auc = roc_auc_score(labels, scores[:, 1] - scores[:, 0])
    accuracy, majority = (predictions == labels).mean(), max(labels.mean(), 1 - labels.mean())
    print(f"MRPC dev after 2:4 pruning: accuracy {accuracy:.4f} (majority {majority:.4f}), balanced accuracy "
          f"{balanced:.4f}, ROC AUC {auc:.4f}, kernel sparsity {report.kernel_sparsity:.4f}")
    assert balanced >= BALANCED_ACCURACY_BAR and auc >= AUC_BAR
