"""Verifies an export against its Keras model in a fresh process (what `ltp_tf.export --verify` runs).

    python -m ltp_tf.verify --export_path=saved_models/sst2/1 --checkpoint=<checkpoint folder> [--max_examples=N]

The comparisons live in `ltp_tf.serving.verify`; this module only holds the command line, so importing the
library never defines flags.
"""

from __future__ import annotations

import sys

from absl import app, flags

from ltp_tf.atomic import write_json
from ltp_tf.serving.verify import verify_export

_EXPORT_PATH = flags.DEFINE_string("export_path", None, "An exported version folder (or a staging folder).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "The checkpoint folder that was exported.")
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", None, "Verify on the first N dev examples (default: all).",
                                     lower_bound=1)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "GLUE folder (default: ../shared/data/glue or $LTP_TF_GLUE_DIR).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Examples per call.", lower_bound=1)
_REPORT = flags.DEFINE_string("report", None, "Write the JSON report here.")


def main(argv: list[str]) -> None:
    del argv
    report = verify_export(_EXPORT_PATH.value, _CHECKPOINT.value, _MAX_EXAMPLES.value, _DATA_DIR.value,
                           _BATCH_SIZE.value)
    if _REPORT.value:
        write_json(_REPORT.value, report, sort_keys=True)
    print(f"Verified {_EXPORT_PATH.value} on {report['examples']} {report['task']} dev examples:")
    for name, result in report["engines"].items():
        print(f"  {name:32s} max |logit diff| {result['max_abs_logit_diff']:.2e}  "
              f"kept tokens equal: {result['kept_tokens_equal']}  "
              f"label mismatches: {result.get('label_mismatches', 'n/a')}  "
              f"{'PASS' if result['passed'] else 'FAIL'}")
    print(f"  saved_model_cli lists: {report['saved_model_cli']['signatures_listed']}")
    print("PASSED" if report["passed"] else "FAILED")
    if not report["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    flags.mark_flags_as_required(["export_path", "checkpoint"])
    app.run(main)
