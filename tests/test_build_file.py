"""BUILD stays in step with the modules: every package is globbed, every test file gets a py_test."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_python_package_is_covered_by_a_glob():
    build = (ROOT / "BUILD").read_text()
    globbed = set(re.findall(r'glob\(\["([a-z_]+)/\*\*/\*\.py"\]\)', build))
    packages = {p.parent.relative_to(ROOT).parts[0] for p in ROOT.glob("*/__init__.py")}
    assert packages - {"tests"} <= globbed, f"packages without a BUILD target: {packages - globbed - {'tests'}}"


def test_every_test_file_becomes_a_py_test_target():
    build = (ROOT / "BUILD").read_text()
    assert 'for src in glob(["tests/**/test_*.py"])' in build
    # Every other Python file of tests/ (shared helpers, probes) is listed in `test_support`.
    listed = set(re.findall(r'"(tests/[a-z_/]+\.py)"', build))
    helpers = {str(f.relative_to(ROOT)) for f in ROOT.glob("tests/**/*.py") if not f.name.startswith("test_")}
    assert helpers <= listed, f"tests/ files missing from BUILD's test_support: {sorted(helpers - listed)}"
    for support in listed:
        assert (ROOT / support).is_file(), f"BUILD lists a missing file: {support}"


def test_binaries_point_at_existing_entry_points():
    build = (ROOT / "BUILD").read_text()
    entries = re.findall(r'\("(\w+)", "([\w/]+\.py)", ":(\w+)"\)', build)
    assert {name for name, _, _ in entries} >= {"train", "export", "verify", "benchmark", "glue_ltp", "sweep"}
    for name, main, library in entries:
        assert (ROOT / main).is_file(), f"BUILD binary {name}: entry point missing: {main}"
        assert f'name = "{library}"' in build, f"BUILD binary {name}: no library target {library}"
