"""The product never imports its tests or benches: nothing under hw/, gen/, host/, boards/
imports sim_tests, tests or bench (a static scan of every import statement)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hw", "gen", "host", "boards")
FORBIDDEN = ("sim_tests", "tests", "bench")


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def test_product_does_not_import_tests_or_benches():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, module in imported_modules(path):
                if module.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert not offenders, "the package imports test or bench code:\n" + "\n".join(offenders)


def test_cocotb_modules_named_in_the_package_are_in_the_package():
    """Dotted test-module names handed to the cocotb runner from the package."""
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.keyword) and node.arg == "test_module" \
                        and isinstance(node.value, ast.Constant) \
                        and str(node.value.value).split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.value.lineno}: {node.value.value}")
    assert not offenders, "\n".join(offenders)


def test_tests_do_not_import_test_modules():
    """Tests share helpers through the package (host.runtime.sim) or a conftest, not each other
    or the benches (cocotb modules are named by string, not imported)."""
    offenders = []
    for directory in ("tests", "sim_tests"):
        for path in sorted((ROOT / directory).glob("*.py")):
            for line, module in imported_modules(path):
                if module.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert not offenders, "\n".join(offenders)


def test_dependencies_run_one_way():
    """The runtime and the golden models import no compiler (the executable runs with
    numpy and pynq alone; torch only for a host operator marked as needing it):
    nothing under host/runtime/ or host/golden/ imports host.compiler or host.tools."""
    offenders = []
    for package in ("host/runtime", "host/golden"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, module in imported_modules(path):
                if module.startswith(("host.compiler", "host.tools")):
                    offenders.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert not offenders, "the runtime imports the compiler:\n" + "\n".join(offenders)
