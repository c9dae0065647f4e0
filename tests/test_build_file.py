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
    test_files = list(ROOT.glob("tests/**/test_*.py"))
    assert test_files and all(f.name.startswith("test_") for f in test_files)
    # Support files every test imports are listed explicitly.
    for support in re.findall(r'"(tests/[a-z_/]+\.py)"', build):
        assert (ROOT / support).is_file(), f"BUILD lists a missing file: {support}"


def test_binaries_point_at_existing_entry_points():
    build = (ROOT / "BUILD").read_text()
    for main in re.findall(r'main = "(ltp_tf/[a-z_]+\.py)"', build):
        assert (ROOT / main).is_file(), f"BUILD binary entry point missing: {main}"
