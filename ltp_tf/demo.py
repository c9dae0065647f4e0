"""Demo: load the packaged MiniLM into token-pruning blocks and show what each layer keeps on SST-2 dev.

    python -m ltp_tf.demo --num_sentences=4 --prune_mode=absolute_threshold --final_token_threshold=0.01
"""

from __future__ import annotations

import sys

import numpy as np
from absl import app, flags

from ltp_tf.data import get_task, load_preprocessor, read_split, tokenize
from ltp_tf.flops import count_flops
from ltp_tf.models.pretrained import load_backbone, packaged_minilm_path
from ltp_tf.token_pruning_config import PRUNE_MODES, TokenPruningConfig

_NUM_SENTENCES = flags.DEFINE_integer("num_sentences", 4, "SST-2 dev sentences to prune.", lower_bound=1)
_PRUNE_MODE = flags.DEFINE_enum("prune_mode", "absolute_threshold", list(PRUNE_MODES), "Token pruning mode.")
_THRESHOLD = flags.DEFINE_float("final_token_threshold", 0.01, "Last layer's threshold (absolute_threshold).")
_KEEP_RATE = flags.DEFINE_float("token_keep_rate", 0.5, "Last layer's keep rate (topk).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "GLUE folder; default ../shared/data/glue.")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        sys.exit(f"ltp_tf.demo: error: unexpected arguments {argv[1:]} (flags are --name=value)")
    try:
        config = TokenPruningConfig(prune_mode=_PRUNE_MODE.value, final_token_threshold=_THRESHOLD.value,
                                    token_keep_rate=_KEEP_RATE.value)
        examples = read_split(get_task("sst2"), "dev", _DATA_DIR.value).take(_NUM_SENTENCES.value)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"ltp_tf.demo: error: {error}")
    model_dir = packaged_minilm_path()
    preprocessor = load_preprocessor(model_dir, sequence_length=128)
    features = tokenize(preprocessor, examples.texts)
    longest = int(features.lengths.max())
    inputs = {k: v[:, :longest] for k, v in features.as_dict().items()}
    backbone = load_backbone(model_dir, config, drop_tokens=True)
    outputs = backbone(inputs, training=False)

    vocabulary = preprocessor.tokenizer.get_vocabulary()
    kept = np.asarray(outputs["kept_tokens"]).astype(int)
    positions = np.asarray(outputs["kept_positions"])
    live = np.asarray(outputs["token_mask"])
    print(f"MiniLM-L6 from {model_dir}\n{config}\n")
    for b, sentence in enumerate(examples.texts[0]):
        print(f"[{b}] {sentence.strip()}")
        print(f"    tokens per layer: {int(features.lengths[b])} -> " + " -> ".join(map(str, kept[b])))
        survivors = [vocabulary[inputs['token_ids'][b, p]] for p, ok in zip(positions[b], live[b]) if ok]
        print(f"    kept after the last layer: {' '.join(survivors)}")
    report = count_flops(backbone.hidden_dim, backbone.intermediate_dim, outputs["sequence_lengths"], kept)
    print(f"\nEncoder FLOPs: {report.total / 1e9:.3f} G pruned vs {report.dense_total / 1e9:.3f} G dense "
          f"({report.reduction:.2f}x fewer). Untrained thresholds: run ltp_tf.train for learned ones.")


if __name__ == "__main__":
    app.run(main)
