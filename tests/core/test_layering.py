"""The layering of docs/architecture.md, checked on the code: no import runs back up, importing the library
defines no absl flags, and TensorFlow and keras_hub are imported only where a module needs them to run.

Imports are read with `ast` from every module of `ltp_tf`, `pipelines` and `benchmarks` (imports inside functions
included, as they run back up all the same), each reduced to its unit: a package under `ltp_tf` (`ltp_tf.models`),
a top-level module (`ltp_tf.flops`), the package root `ltp_tf`, or `pipelines` / `benchmarks` as a whole.
"""

import ast
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
SOURCES = ("ltp_tf", "pipelines", "benchmarks")

# Top to bottom; a unit may import the units of the layers below its own.
LAYERS = (
    ("entry points", ("ltp_tf.train", "ltp_tf.benchmark", "ltp_tf.export", "ltp_tf.demo", "ltp_tf.verify",
                      "pipelines", "benchmarks")),
    ("applications", ("ltp_tf.training", "ltp_tf.serving", "ltp_tf.benchmarking", "ltp_tf.inference")),
    ("data and checkpoints", ("ltp_tf.data", "ltp_tf.checkpoints")),
    ("models", ("ltp_tf", "ltp_tf.callbacks", "ltp_tf.sparsity", "ltp_tf.models", "ltp_tf.layers")),
    ("foundations", ("ltp_tf.token_pruning_config", "ltp_tf.flops", "ltp_tf.families", "ltp_tf.distribution",
                     "ltp_tf.locking", "ltp_tf.validation", "ltp_tf.atomic")),
)
# The imports allowed inside a layer (they run one way: no unit here is imported by one it imports).
WITHIN_A_LAYER = {
    "ltp_tf.benchmarking": {"ltp_tf.serving", "ltp_tf.inference"},
    "ltp_tf.serving": {"ltp_tf.inference"},  # the XLA buckets of a SavedModel run the runner's programs
    "ltp_tf.data": {"ltp_tf.checkpoints"},  # the checkpoint's file names, for tokenizer folders
    "ltp_tf": {"ltp_tf.callbacks", "ltp_tf.models", "ltp_tf.layers"},  # the public API re-exports
    "ltp_tf.callbacks": {"ltp_tf.layers"},
    "ltp_tf.sparsity": {"ltp_tf.models"},
    "ltp_tf.models": {"ltp_tf.layers"},
    "ltp_tf.token_pruning_config": {"ltp_tf.validation"},
    "ltp_tf.distribution": {"ltp_tf.validation"},
}
ENTRY_POINTS = dict(LAYERS)["entry points"]
# Export modules: TensorFlow is what they run (the rest of `serving/` imports it when called).
NEED_TENSORFLOW = ("ltp_tf.serving.exporter", "ltp_tf.serving.onnx_export", "ltp_tf.serving.signatures",
                   "ltp_tf.serving.xla_buckets")
HEAVY = ("tensorflow", "keras_hub", "tensorflow_text", "tf2onnx", "onnxruntime", "apache_beam")


def _layer_of(unit: str) -> int:
    for index, (_, units) in enumerate(LAYERS):
        if unit in units:
            return index
    raise AssertionError(f"{unit} is in no layer of tests/core/test_layering.py (and docs/architecture.md)")


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "ltp_tf":
        return parts[0]
    return "ltp_tf" if len(parts) == 1 else f"ltp_tf.{parts[1]}"


def _is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _modules() -> list[tuple[str, pathlib.Path]]:
    return sorted((_module_name(path), path) for source in SOURCES for path in (REPO / source).rglob("*.py"))


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, module) of every first-party import of `path`; `from a import b` is `a.b` when `b` is a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = [f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}")]
            names = submodules if len(submodules) == len(node.names) else [*submodules, node.module]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[0] in SOURCES]
    return found


def test_every_unit_has_a_layer_and_the_allowances_stay_inside_one():
    for module, _ in _modules():
        _layer_of(_unit(module))
    for unit, allowed in WITHIN_A_LAYER.items():
        assert {_layer_of(other) for other in allowed} == {_layer_of(unit)}, unit


def _violations(module: str, path: pathlib.Path) -> list[str]:
    unit, wrong = _unit(module), []
    for line, imported in _imports(path):
        target = _unit(imported)
        if target == unit:
            continue
        upward = _layer_of(target) < _layer_of(unit)
        sideways = _layer_of(target) == _layer_of(unit) and target not in WITHIN_A_LAYER.get(unit, ())
        if upward or sideways:
            wrong.append(f"{path.name}:{line} {module} ({LAYERS[_layer_of(unit)][0]}) imports {imported} "
                         f"({LAYERS[_layer_of(target)][0]})")
    return wrong


def test_no_import_runs_back_up():
    wrong = [line for module, path in _modules() for line in _violations(module, path)]
    assert not wrong, "imports against the layering (docs/architecture.md):\n" + "\n".join(wrong)


def test_upward_and_sideways_imports_are_caught(tmp_path):
    path = tmp_path / "surgery.py"
    path.write_text("from ltp_tf.layers import encoder_block\nfrom ltp_tf.validation import check_one_of\n"
                    "def f():\n    from ltp_tf import checkpoints\n    import ltp_tf.sparsity.masks\n")
    assert [line.split(" imports ")[1].split()[0] for line in _violations("ltp_tf.models.surgery", path)] == [
        "ltp_tf.checkpoints", "ltp_tf.sparsity.masks"]


_IMPORT_ALL = """
import importlib, importlib.util, json, sys
from absl import flags
light, tensorflow_only, heavy = json.loads(sys.argv[1])
for name in light:
    importlib.import_module(name)
loaded = sorted(name for name in heavy if name in sys.modules)
if importlib.util.find_spec("tensorflow") is not None:
    for name in tensorflow_only:
        importlib.import_module(name)
defined = sorted(m for m in flags.FLAGS.flags_by_module_dict() if m.split(".")[0] in ("ltp_tf", "pipelines"))
print(json.dumps({"heavy_loaded": loaded, "flag_modules": defined}))
"""


def test_importing_the_library_defines_no_flags_and_loads_tensorflow_lazily():
    library = [name for name, _ in _modules()
               if name.split(".")[0] != "benchmarks" and _unit(name) not in ENTRY_POINTS
               and name not in ("pipelines.glue_ltp", "pipelines.lineage")]  # the pipeline's command lines
    light = [name for name in library if name not in NEED_TENSORFLOW]
    env = {**os.environ, "KERAS_BACKEND": "jax" if importlib.util.find_spec("jax") else "tensorflow",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", _IMPORT_ALL, json.dumps([light, list(NEED_TENSORFLOW), HEAVY])],
                            cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["flag_modules"] == [], "library modules define absl flags on import"
    if env["KERAS_BACKEND"] == "jax":
        assert report["heavy_loaded"] == [], "importing the library loads these on JAX"
