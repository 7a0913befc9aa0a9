"""Fast RTL simulation: the Verilated accelerator in a C++ harness, no Python per cycle.

The harness (``harness.cpp``, shipped with the package) holds the Verilated
:class:`hw.top.Accelerator`, an AXI4 DRAM model that reproduces the cocotb testbench's
cocotbext-axi ``AxiRam`` with the latency wrappers of ``host/runtime/sim/axi.py`` cycle for
cycle, and an AXI4-Lite master. It is built once per configuration (cached by a hash of
the Verilog, the harness source and the flags, under ``sim_build/`` like every other
Verilator build) and kept running per configuration, driven over pipes, so a layer costs
no process start.

:func:`run_layers` has the interface and the result of :func:`host.runtime.sim.run_layers`
without random pauses, fault injection or waveforms (those stay with the cocotb engine):
the same register sequence (identification reads, the layer's writes, IRQ enable, START,
wait for the interrupt or the timeout, status, error code, counters, IRQ clear), the same
outputs, the same performance counters.
"""

import atexit
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from hw.config import AccelConfig
from hw.contract import CONTROL_SOFT_RESET, STATUS_BUSY, register_map

from host.runtime.sim import runner
from host.runtime.driver import (counters_from, finish_sequence, queue_start_sequence, queue_writes,
                                 start_sequence)
from host.runtime.executable import Device

__all__ = ["build", "Harness", "harness", "run_layers", "wrapper_verilog", "HarnessError",
           "WALL_CYCLES_OFFSET", "ENGINES", "choose_engine", "HarnessDevice"]

HARNESS_CPP = Path(__file__).with_name("harness.cpp")
NAME = "dpegen_rtlsim"
TOP = "harness_top"
# C++ optimisation of the Verilated model and the harness.
MAKE_OPT = ["OPT_FAST=-O3", "OPT_GLOBAL=-O2"]
# Cycles the cocotb testbench counts between issuing the START write and the write
# taking effect, minus the harness's own: added to the harness's START-to-interrupt count
# so that ``wall_cycles`` equals the cocotb engine's (checked by sim_tests/test_rtlsim.py).
WALL_CYCLES_OFFSET = 0

_PORT = re.compile(r"^\s*(input|output)\s+(\[[^\]]+\]\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*;", re.M)


class HarnessError(RuntimeError):
    """The harness process failed or answered an error."""


def _top_module(verilog_text, module):
    start = verilog_text.find(f"module {module}(")
    if start < 0:
        raise HarnessError(f"module {module} not found in the Verilog")
    end = verilog_text.find("endmodule", start)
    return verilog_text[start:end]


def wrapper_verilog(verilog_text, module="dpegen_accel"):
    """A top module ``harness_top`` around ``module`` whose ports are the accelerator's
    with ``__`` replaced by ``_`` (Verilator mangles double underscores in C++ names).
    Every input but ``clk`` is registered on the way in: the harness writes it before the
    edge, so it reaches the accelerator right after the edge, and no logic of the
    accelerator depends on a top-level input (which Verilator would evaluate at every
    input change)."""
    ports = _PORT.findall(_top_module(verilog_text, module))
    if not ports:
        raise HarnessError(f"no ports found on {module}")
    lines = [f"module {TOP}("]
    lines.append(",\n".join(f"  {name.replace('__', '_')}" for _, _, name in ports) + "\n);")
    for direction, width, name in ports:
        lines.append(f"  {direction} {width or ''}{name.replace('__', '_')};")
    # every input but the clock goes through a register (see harness.cpp's step())
    for direction, width, name in ports:
        if direction == "input" and name != "clk":
            lines.append(f"  reg {width or ''}{name}_q;")
            lines.append(f"  always @(posedge clk) {name}_q <= {name.replace('__', '_')};")
    lines.append(f"  {module} dut (")
    lines.append(",\n".join(f"    .{name}({name + '_q' if d == 'input' and name != 'clk' else name.replace('__', '_')})"
                            for d, _, name in ports))
    lines.append("  );")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _flags(cfg):
    return (list(runner.VERILATOR_ARGS) +
            ["-CFLAGS", f"-DDW={cfg.axi_data_width}"] + MAKE_OPT)


def build(cfg: AccelConfig = AccelConfig()):
    """Build (or find in the cache) the harness for ``cfg``; returns the executable."""
    from host.runtime.sim import accelerator_verilog
    verilog_text = accelerator_verilog(cfg)
    wrapper = wrapper_verilog(verilog_text)
    source = HARNESS_CPP.read_text()
    flags = _flags(cfg)
    key = hashlib.sha256("\0".join([verilog_text, wrapper, source] + flags).encode()).hexdigest()[:16]
    build_dir = runner.SIM_BUILD / f"{NAME}-{key}"
    exe = build_dir / "obj" / "Vharness"
    stamp = build_dir / "built.ok"
    with runner._locked(runner.SIM_BUILD / f"{NAME}-{key}.lock"):
        if not stamp.exists():
            root = runner.verilator_env()
            build_dir.mkdir(parents=True, exist_ok=True)
            (build_dir / "dpegen_accel.v").write_text(verilog_text)
            (build_dir / f"{TOP}.v").write_text(wrapper)
            (build_dir / "harness.cpp").write_text(source)
            make_opt = [f for f in flags if f.startswith("OPT_")]
            vflags = [f for f in flags if not f.startswith("OPT_")]
            env = dict(os.environ)
            env["MAKEFLAGS"] = " ".join([env.get("MAKEFLAGS", "")] + make_opt).strip()
            jobs = str(max(1, min(os.cpu_count() or 1, 4)))
            cmd = [str(Path(root) / "bin" / "verilator"), "--cc", "--exe", "--build", "-j", jobs,
                   "--top-module", TOP, "--Mdir", str(build_dir / "obj"), "-o", "Vharness",
                   *vflags, str(build_dir / f"{TOP}.v"), str(build_dir / "dpegen_accel.v"),
                   str(build_dir / "harness.cpp")]
            log = build_dir / "build.log"
            with open(log, "w") as out:
                proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                      cwd=build_dir)
            if proc.returncode != 0 or not exe.exists():
                raise HarnessError(f"harness build failed (exit {proc.returncode}); log: {log}\n"
                                   + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
            stamp.write_text("ok\n")
    return exe


class Harness:
    """One running harness process for one configuration."""

    def __init__(self, cfg: AccelConfig = AccelConfig()):
        self.cfg = cfg
        self.exe = build(cfg)
        self.tmp = Path(tempfile.mkdtemp(prefix="dpegen-rtlsim-"))
        self.stderr_path = self.tmp / "stderr.log"     # a file: a full pipe would block it
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen([str(self.exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, text=True, bufsize=1)
        self.lock = threading.Lock()

    def _call(self, line):
        if self.proc.poll() is not None:
            raise HarnessError(f"harness exited with {self.proc.returncode}: {self._stderr()}")
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            code = self.proc.wait()
            raise HarnessError(f"harness exited with {code} on {line.split()[0]!r}: {self._stderr()}")
        words = reply.split()
        if words[0] != "ok":
            raise HarnessError(f"harness: {reply.strip()} (command {line!r})")
        return [int(w) for w in words[1:]]

    def _stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def load(self, memory):
        memory = np.ascontiguousarray(memory, dtype=np.uint8)
        path = self.tmp / "image.bin"
        memory.tofile(path)
        self._call(f"mem {memory.size} {path}")

    def poke(self, addr, data):
        """Write ``data`` (u8) into DRAM at ``addr``; the memory keeps its size."""
        data = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
        path = self.tmp / "poke.bin"
        data.tofile(path)
        self._call(f"poke {int(addr)} {data.size} {path}")

    def reset(self, latency=0):
        """A fresh model (as a new simulation starts), reset, DRAM model with ``latency``."""
        self._call(f"reset {int(latency)}")

    def write(self, offset, value):
        return self._call(f"w {int(offset)} {int(value) & 0xFFFFFFFF}")[0]

    def read(self, offset):
        return self._call(f"r {int(offset)}")[0]

    def wait_irq(self, timeout):
        """Run until the interrupt is high or ``timeout`` cycles passed: ``(irq, cycles)``."""
        irq, cycles = self._call(f"wait {int(timeout)}")
        return bool(irq), cycles

    def run(self, cycles):
        self._call(f"run {int(cycles)}")

    def cycle(self):
        return self._call("cycle")[0]

    def dump(self, addr, size):
        path = self.tmp / "dump.bin"
        self._call(f"dump {int(addr)} {int(size)} {path}")
        return np.fromfile(path, dtype=np.uint8, count=int(size))

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


_HARNESSES = {}


def harness(cfg: AccelConfig = AccelConfig()):
    """The running harness for ``cfg`` (started, and built if needed, on first use)."""
    h = _HARNESSES.get(cfg)
    if h is None or h.proc.poll() is not None:
        h = _HARNESSES[cfg] = Harness(cfg)
    return h


@atexit.register
def _close_all():
    for h in _HARNESSES.values():
        h.close()
    _HARNESSES.clear()


ENGINES = ("cpp", "cocotb")


def choose_engine(engine=None, *, pause=0.0, waves=False, layers=()):
    """The engine to run on: ``engine`` if given ("cpp" or "cocotb"), else the
    ``DPEGEN_SIM_ENGINE`` environment variable, else the fast one ("cpp") unless random
    pauses, waveforms or fault injection are asked for, which only cocotb does."""
    engine = engine or os.environ.get("DPEGEN_SIM_ENGINE") or None
    if engine is not None and engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    needs_cocotb = bool(pause) or bool(waves) or any(layer.get("fault") for layer in layers)
    if engine is None:
        return "cocotb" if needs_cocotb else "cpp"
    return engine


def run_layers(cfg: AccelConfig, layers, *, latency=0, pause=0.0, seed=1, waves=False,
               memory=None, dump=False):
    """:func:`host.runtime.sim.run_layers` on the fast engine (same arguments, same result dict).

    Random pauses, fault injection and waveforms need the cocotb engine and are refused.
    A layer dict may also give ``"timeout_cycles"`` (default: :func:`host.runtime.sim.timeout_cycles`).
    """
    from host.runtime.sim import timeout_cycles
    if pause:
        raise ValueError("random AXI pauses need the cocotb engine (engine='cocotb')")
    if waves:
        raise ValueError("waveforms need the cocotb engine (engine='cocotb')")
    if any(layer.get("fault") for layer in layers):
        raise ValueError("fault injection needs the cocotb engine (engine='cocotb')")
    rm = register_map(cfg)
    image = np.ascontiguousarray(layers[0]["run"].dram.memory if memory is None else memory, dtype=np.uint8)
    h = harness(cfg)
    with h.lock:
        h.load(image)
        h.reset(latency)
        # keys as strings, as the cocotb engine's result comes back through JSON
        identification = {str(reg.offset): h.read(reg.offset) for reg in rm
                          if reg.name in ("MAGIC", "VERSION") or reg.name.startswith("CFG_")}
        results = []
        for layer in layers:
            run = layer["run"]
            if layer.get("soft_reset_first"):
                h.write(rm["CONTROL"].offset, CONTROL_SOFT_RESET)
                h.run(4)
                while h.read(rm["STATUS"].offset) & STATUS_BUSY:
                    h.run(16)
            for offset, value in layer.get("writes", run.writes if run else []):
                h.write(offset, value)
            queue = layer.get("queue")
            starting = start_sequence()
            if queue:
                for offset, value in queue_writes(cfg, *queue):
                    h.write(offset, value)
                starting = queue_start_sequence()
            for offset, value in starting:
                start = h.cycle()
                h.write(offset, value)
            timeout = layer.get("timeout_cycles") or timeout_cycles(cfg, run.descriptor, latency, pause)
            irq, _ = h.wait_irq(timeout)
            wall_cycles = h.cycle() - start + WALL_CYCLES_OFFSET
            status = h.read(rm["STATUS"].offset)
            error = h.read(rm["ERROR_CODE"].offset)
            values = {}
            for reg in rm:
                if reg.name.endswith("_LO") and reg.access == "ro":
                    values[reg.offset] = h.read(reg.offset)
                    hi = rm[reg.name[:-3] + "_HI"]
                    values[hi.offset] = h.read(hi.offset)
            counters = counters_from(lambda offset: values[offset])
            for offset, value in finish_sequence():
                h.write(offset, value)
            queue_index = h.read(rm["QUEUE_INDEX"].offset)
            output = h.dump(run.output_addr, int(np.prod(run.output_shape))) if run else np.zeros(0, np.uint8)
            results.append({"status": status, "error_code": error, "counters": counters,
                            "irq": bool(status & 2), "wall_cycles": wall_cycles,
                            "queue_index": queue_index, "output": output.tolist()})
        after = h.dump(0, image.size)
    changed = np.nonzero(after != image)[0]
    result = {"identification": identification, "layers": results,
              "changed": [int(changed.min()), int(changed.max()), int(changed.size)] if changed.size else None,
              "changed_offsets": changed[:64].tolist()}
    if dump:
        result["memory"] = after
    return result


class HarnessDevice(Device):
    """A :class:`host.runtime.executable.Device` on the fast engine: a harness process of
    its own (so no other run reloads its DRAM), ``base + size`` bytes of DRAM with read
    and write-response ``latency``. ``wait`` runs the model until the interrupt or the
    timeout in cycles; ``cycles_since_start`` is the last START-to-interrupt time."""
    timeout_unit = "cycles"

    def __init__(self, cfg: AccelConfig, size, *, latency=50, base=4096):
        self.cfg, self.base, self.size = cfg, base, size
        self.h = Harness(cfg)
        self.h.load(np.zeros(base + size, dtype=np.uint8))
        self.h.reset(latency)
        self.control = register_map(cfg)["CONTROL"].offset
        self._start = None
        self._cycles = None

    def read_register(self, offset):
        return self.h.read(offset)

    def write_register(self, offset, value):
        if offset == self.control:
            self._start = self.h.cycle()
        self.h.write(offset, value)

    def read_memory(self, addr, size):
        return self.h.dump(addr, size)

    def write_memory(self, addr, data):
        self.h.poke(addr, data)

    def wait(self, timeout):
        irq, _ = self.h.wait_irq(timeout)
        self._cycles = self.h.cycle() - self._start + WALL_CYCLES_OFFSET
        return irq

    def cycles_since_start(self):
        return self._cycles

    def close(self):
        self.h.close()
