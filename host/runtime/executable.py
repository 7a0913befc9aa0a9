"""A network compiled once for an accelerator configuration, and its runtime.

An :class:`Executable` holds everything a network needs on the accelerator, laid out in
one DRAM image (addresses are offsets into the image; the runtime relocates them to where
the image lands):

* every layer's weights, parameter records and activation table, once;
* the command lists, one per accelerator **segment** (a run of commands the accelerator
  executes from one START_QUEUE), of :class:`hw.contract.CommandRecord` s, and a trace
  area of :class:`hw.contract.TraceRecord` s, one per command;
* an activation **arena** in which every tensor the network computes (u8, NCHW) has its
  place, tensors reusing memory by liveness;
* the **steps** of a frame, in order: segments, and the host operators between them
  (``host.runtime.host_ops``: quantize the input, pooling, additions, ... as numpy models
  equal to PyTorch's kernels, working on the arena's u8 NCHW tensors in place; a host
  operator without such a model is marked ``needs_torch``).

It saves to one file (:meth:`Executable.save`, :meth:`Executable.load`) that needs only
numpy (and pynq on a board) to run: no torch, no planner. The file carries a SHA-256 of its
contents; a truncated or altered file is refused on load.

:meth:`Executable.run` runs frames on a backend: ``golden`` (the command lists executed by
:class:`host.golden.machine.GoldenAccelerator`, so the lists are proven without RTL),
``rtl`` (the fast C++ simulation engine), ``sim`` (the default simulation engine),
``cocotb`` (the cocotb testbench, with optional random AXI pauses) and ``pynq`` (the
board). Every backend is a :class:`Device` under the same :class:`Session`: the image is
written once and stays resident; per frame the session writes the input, starts each
segment (at most 10 register accesses per start, fewer when the queue registers keep
their values), runs the host operators between segments and reads the output.
"""

import base64
import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hw.config import AccelConfig
from hw.contract import (COMMAND_BYTES, STATUS_DONE, STATUS_ERROR, TRACE_BYTES, VERSION, ErrorCode,
                         register_map)

from host.runtime import driver, host_ops

__all__ = ["Executable", "TensorInfo", "Segment", "HostOp", "Session", "Device", "ExecutableError",
           "FrameReport", "BACKENDS", "FORMAT_VERSION"]

BACKENDS = ("golden", "rtl", "sim", "cocotb", "pynq")
MAGIC = b"DPEGEXE\0"
FORMAT_VERSION = 1
IMAGE_ALIGN = 4096


class ExecutableError(ValueError):
    """An executable file that is damaged, of another format, or does not match the
    accelerator it is run on."""


@dataclass
class TensorInfo:
    """A tensor of the network: u8 in the arena (``offset`` in the image, logical NCHW
    order, contiguous; a static tensor, a padded input whose padding holds the zero
    point, lies in the static image below the arena), or ``f32`` on the host (``offset`` -1: the network's float inputs
    and outputs). ``channels_last``: the memory format PyTorch gives it, which some
    host operators' results depend on."""
    name: str
    shape: tuple
    dtype: str = "u8"
    offset: int = -1
    scale: float = 1.0
    zero_point: int = 0
    channels_last: bool = False
    storage: str = ""

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self):
        return self.size * (4 if self.dtype == "f32" else 1)


@dataclass
class Segment:
    """Commands the accelerator runs from one START_QUEUE: ``count`` records at
    ``list_addr``, their trace at ``trace_addr``. ``commands``: per command what it
    computes (layer name, shape, MACs, the tensor it writes), for reports."""
    list_addr: int
    count: int
    trace_addr: int
    commands: list = field(default_factory=list)
    timeout_cycles: int = 0

    kind = "segment"


@dataclass
class HostOp:
    """An operator the host runs between segments (``host.runtime.host_ops``)."""
    kind: str
    name: str
    inputs: list
    outputs: list
    params: dict = field(default_factory=dict)
    needs_torch: bool = False


@dataclass
class FrameReport:
    """What one frame cost: ``starts`` (accelerator starts), ``segments``, ``cycles``
    (START to interrupt summed over the starts, when the device counts them), the host's
    ``bytes_written``, ``bytes_read``, ``register_accesses`` and ``seconds`` (host time,
    the waits for the accelerator excluded), ``host_ops`` (name, kind, seconds, bytes)
    and, when profiled, ``layers`` (each command's trace record and what it computes)."""
    starts: int = 0
    segments: int = 0
    cycles: int = 0
    bytes_written: int = 0
    bytes_read: int = 0
    register_accesses: int = 0
    seconds: float = 0.0
    wait_seconds: float = 0.0
    host_ops: list = field(default_factory=list)
    layers: list = field(default_factory=list)

    def to_dict(self):
        return asdict(self)


class Device:
    """What a backend gives the runtime: DRAM at ``base`` (``size`` bytes) and the
    register file. ``wait(timeout)`` blocks until the interrupt (True) or the timeout
    (``timeout_cycles`` of simulated time, or seconds on a board). ``cycles_since_start``
    is the START-to-interrupt time of the last start in cycles when the device measures
    it, else None."""
    base = 0
    size = 0
    timeout_unit = "cycles"

    def read_register(self, offset):
        raise NotImplementedError

    def write_register(self, offset, value):
        raise NotImplementedError

    def read_memory(self, addr, size):
        raise NotImplementedError

    def write_memory(self, addr, data):
        raise NotImplementedError

    def wait(self, timeout):
        raise NotImplementedError

    def cycles_since_start(self):
        return None

    def close(self):
        pass


def _encode(obj):
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": base64.b64encode(obj.tobytes()).decode(), "dtype": str(obj.dtype),
                "shape": list(obj.shape)}
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, bytes):
        return {"__bytes__": base64.b64encode(obj).decode()}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _encode(v) for k, v in obj.items()}
    return obj


def _decode(obj):
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return np.frombuffer(base64.b64decode(obj["__ndarray__"]), dtype=obj["dtype"]).reshape(obj["shape"]).copy()
        if "__bytes__" in obj:
            return base64.b64decode(obj["__bytes__"])
        if "__tuple__" in obj:
            return tuple(_decode(v) for v in obj["__tuple__"])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


@dataclass
class Executable:
    """A network laid out for one :class:`hw.config.AccelConfig` (see the module).

    ``image``: the static part of the DRAM image (weights, parameters, tables, command
    lists), from offset 0; ``image_size``: the whole image, arena and trace included;
    ``arena``: ``(offset, size)``; ``tensor_bytes``: the sum of every arena tensor's size
    (what the arena would be without reuse); ``tensors``: name -> :class:`TensorInfo`;
    ``steps``: :class:`Segment` s and :class:`HostOp` s in order; ``inputs`` /
    ``outputs``: the names of the network's inputs and outputs; ``info``: free-form
    metadata (the model, the build's statistics).
    """
    cfg: AccelConfig
    image: np.ndarray
    image_size: int
    arena: tuple
    tensor_bytes: int
    trace: tuple
    tensors: dict
    steps: list
    inputs: list
    outputs: list
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self._sessions = {}

    # -- structure -------------------------------------------------------------------
    @property
    def segments(self):
        """The accelerator segments, in order."""
        return [s for s in self.steps if isinstance(s, Segment)]

    @property
    def host_ops(self):
        return [s for s in self.steps if isinstance(s, HostOp)]

    @property
    def needs_torch(self):
        """Names of the host operators that run in PyTorch (no numpy model yet)."""
        return [op.name for op in self.host_ops if op.needs_torch]

    def commands(self):
        """Every command's description, in order, with its ``segment`` index."""
        return [dict(cmd, segment=i) for i, seg in enumerate(self.segments) for cmd in seg.commands]

    def summary(self):
        """A few lines: segments, commands, host operators, image and arena sizes."""
        segs = self.segments
        lines = [f"executable for KP={self.cfg.kp} YP={self.cfg.yp}: {len(segs)} segment(s), "
                 f"{sum(s.count for s in segs)} commands, {len(self.host_ops)} host operators",
                 f"image {self.image_size / 2**20:.2f} MiB: static {self.image.size / 2**20:.2f} MiB "
                 f"(weights, parameters, tables, command lists), arena {self.arena[1] / 2**20:.2f} MiB "
                 f"for {self.tensor_bytes / 2**20:.2f} MiB of tensors, trace {self.trace[1]} bytes"]
        for i, step in enumerate(self.steps):
            if isinstance(step, Segment):
                lines.append(f"  [{i}] segment: {step.count} commands")
            else:
                torch_note = " (needs torch)" if step.needs_torch else ""
                lines.append(f"  [{i}] host {step.kind}: {step.name}{torch_note}")
        return "\n".join(lines)

    # -- files -----------------------------------------------------------------------
    def _header(self):
        return {"format": FORMAT_VERSION, "register_map": VERSION, "cfg": self.cfg.to_dict(),
                "image_size": self.image_size, "arena": list(self.arena),
                "tensor_bytes": self.tensor_bytes, "trace": list(self.trace),
                "tensors": {n: _encode(asdict(t)) for n, t in self.tensors.items()},
                "steps": [dict(type=s.kind if isinstance(s, Segment) else "host", **_encode(asdict(s)))
                          for s in self.steps],
                "inputs": self.inputs, "outputs": self.outputs, "info": _encode(self.info),
                "static_bytes": int(self.image.size)}

    def save(self, path):
        """Write the executable to one file: ``MAGIC``, the SHA-256 of the rest, the
        header's length, a JSON header, the static image."""
        header = json.dumps(self._header(), separators=(",", ":")).encode()
        body = len(header).to_bytes(8, "little") + header + np.ascontiguousarray(self.image).tobytes()
        Path(path).write_bytes(MAGIC + hashlib.sha256(body).digest() + body)
        return Path(path)

    @classmethod
    def load(cls, path):
        """Read a file written by :meth:`save`; raises :class:`ExecutableError` for a
        file that is not one, is truncated or altered (its SHA-256 differs), or was
        written for another format. Warns when host operators need torch."""
        raw = Path(path).read_bytes()
        if len(raw) < len(MAGIC) + 40 or raw[:len(MAGIC)] != MAGIC:
            raise ExecutableError(f"{path} is not a dpegen executable (no {MAGIC!r} header)")
        digest, body = raw[len(MAGIC):len(MAGIC) + 32], raw[len(MAGIC) + 32:]
        if hashlib.sha256(body).digest() != digest:
            raise ExecutableError(f"{path} is damaged: its SHA-256 does not match its contents "
                                  f"(truncated or altered)")
        n = int.from_bytes(body[:8], "little")
        h = json.loads(body[8:8 + n])
        if h.get("format") != FORMAT_VERSION:
            raise ExecutableError(f"{path} has executable format {h.get('format')}, this runtime "
                                  f"reads format {FORMAT_VERSION}")
        image = np.frombuffer(body[8 + n:], dtype=np.uint8).copy()
        if image.size != h["static_bytes"]:
            raise ExecutableError(f"{path}: the image holds {image.size} bytes, the header says "
                                  f"{h['static_bytes']}")
        tensors = {}
        for name, t in h["tensors"].items():
            t = _decode(t)
            t["shape"] = tuple(t["shape"])
            tensors[name] = TensorInfo(**t)
        steps = []
        for s in h["steps"]:
            kind = s.pop("type")
            s = _decode(s)
            steps.append(Segment(**s) if kind == "segment" else HostOp(**s))
        exe = cls(cfg=AccelConfig.from_dict(h["cfg"]), image=image, image_size=h["image_size"],
                  arena=tuple(h["arena"]), tensor_bytes=h["tensor_bytes"], trace=tuple(h["trace"]),
                  tensors=tensors, steps=steps, inputs=h["inputs"], outputs=h["outputs"],
                  info=_decode(h["info"]))
        if exe.needs_torch:
            warnings.warn(f"{path}: host operators {exe.needs_torch} have no numpy model and "
                          f"run in PyTorch, which must be installed to run this executable",
                          stacklevel=2)
        return exe

    # -- running ---------------------------------------------------------------------
    def session(self, backend="golden", **options):
        """The :class:`Session` of this executable on ``backend`` (made, and the image
        loaded, on first use; ``options`` go to the backend's device)."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        key = (backend, tuple(sorted(options.items())))
        if key not in self._sessions:
            self._sessions[key] = Session(self, _device(self, backend, **options))
        return self._sessions[key]

    def run(self, *inputs, backend="golden", record=False, profile=False, **options):
        """Run one frame: ``inputs`` as the network takes them (numpy arrays, float32),
        the outputs as numpy arrays (one array, or a tuple). ``record``: also return
        ``{tensor name: u8 array}`` of every tensor (an executable built with
        ``reuse=False`` keeps them all). ``profile``: read each command's trace record
        into the report. The last frame's :class:`FrameReport` is ``self.report``."""
        if backend == "cocotb":
            from host.runtime.sim import run_executable_cocotb
            outputs, report, recorded = run_executable_cocotb(self, inputs, record=record, **options)
        else:
            session = self.session(backend, **options)
            outputs, recorded = session.run(*inputs, record=record, profile=profile)
            report = session.report
        self.report = report
        return (outputs, recorded) if record else outputs

    def close(self):
        for session in self._sessions.values():
            session.device.close()
        self._sessions.clear()


def _device(exe, backend, **options):
    if backend == "golden":
        return GoldenDevice(exe.cfg, exe.image_size, **options)
    if backend in ("rtl", "sim"):
        from host.runtime.sim.rtlsim import choose_engine, HarnessDevice
        engine = "cpp" if backend == "rtl" else choose_engine(None)
        if engine != "cpp":
            raise ValueError("backend 'sim' chose the cocotb engine: use backend='cocotb'")
        return HarnessDevice(exe.cfg, exe.image_size, **options)
    if backend == "pynq":
        from host.runtime.pynq_backend import PynqDevice
        return PynqDevice(exe.cfg, exe.image_size, **options)
    raise ValueError(f"backend {backend!r} runs through Executable.run")


class GoldenDevice(Device):
    """The golden accelerator model (:class:`host.golden.machine.GoldenAccelerator`) over
    a numpy DRAM: instantaneous, no timing."""
    timeout_unit = "cycles"

    def __init__(self, cfg, size, base=IMAGE_ALIGN):
        from host.golden.machine import GoldenAccelerator
        self.base, self.size = base, size
        self.memory = np.zeros(base + size, dtype=np.uint8)
        self.model = GoldenAccelerator(cfg, self.memory)

    def read_register(self, offset):
        return self.model.read(offset)

    def write_register(self, offset, value):
        self.model.write(offset, value)

    def read_memory(self, addr, size):
        return self.memory[addr:addr + size]

    def write_memory(self, addr, data):
        data = np.asarray(data, dtype=np.uint8).reshape(-1)
        self.memory[addr:addr + data.size] = data

    def wait(self, timeout):
        return self.model.irq


class Session:
    """An :class:`Executable` resident on a :class:`Device`.

    Loading checks the accelerator's identification registers against the executable's
    configuration (and the register map version), relocates the command lists to
    ``device.base``, writes the static image once, sets the DMA window to the image and
    enables the interrupt. :meth:`run` then runs frames.
    """

    def __init__(self, exe: Executable, device: Device):
        self.exe, self.device = exe, device
        self.rm = register_map(exe.cfg)
        self._written = {}
        self.report = FrameReport()
        self._check_identification()
        if device.size < exe.image_size:
            raise ExecutableError(f"the device's memory holds {device.size} bytes, the executable "
                                  f"needs {exe.image_size}")
        image = exe.image.copy()
        base = device.base
        for seg in exe.segments:
            for i in range(seg.count):
                at = seg.list_addr + i * COMMAND_BYTES
                image[at:at + COMMAND_BYTES] = driver.rebase_command(image[at:at + COMMAND_BYTES], base)
        device.write_memory(base, image)
        for offset, value in driver.window_writes(exe.cfg, base, exe.image_size) + \
                [(self.rm["IRQ_ENABLE"].offset, 1)]:
            self._write(offset, value)
        self.report = FrameReport()

    def _check_identification(self):
        errors = driver.identification_errors(self.exe.cfg, self.device.read_register)
        version = self.device.read_register(self.rm["VERSION"].offset)
        if not errors and version < driver.QUEUE_VERSION:
            errors.append(f"register map version {version:#x} has no command queue "
                          f"(needs {driver.QUEUE_VERSION:#x} or newer)")
        if errors:
            raise ExecutableError("the accelerator does not match the executable's configuration: "
                                  + "; ".join(errors))

    # counted device access
    def _write(self, offset, value, cache=False):
        if cache and self._written.get(offset) == value:
            return
        self.device.write_register(offset, value)
        self._written[offset] = value
        self.report.register_accesses += 1

    def _read(self, offset):
        self.report.register_accesses += 1
        return self.device.read_register(offset)

    def _tensor(self, name):
        t = self.exe.tensors[name]
        raw = self.device.read_memory(self.device.base + t.offset, t.size)
        self.report.bytes_read += t.size
        return np.asarray(raw).reshape(t.shape)

    def _store(self, name, value):
        t = self.exe.tensors[name]
        value = np.asarray(value)
        if value.shape != tuple(t.shape) or value.dtype != np.uint8:
            raise ExecutableError(f"tensor {name}: computed {value.dtype} {value.shape}, "
                                  f"expected u8 {tuple(t.shape)}")
        self.device.write_memory(self.device.base + t.offset, value.reshape(-1))
        self.report.bytes_written += t.size

    def _start(self, seg: Segment, profile):
        base = self.device.base
        for offset, value in driver.queue_writes(self.exe.cfg, base + seg.list_addr, seg.count,
                                                 base + seg.trace_addr):
            self._write(offset, value, cache=True)
        t0 = time.perf_counter()          # the accelerator's time: from START to the interrupt
        self._write(self.rm["CONTROL"].offset, driver.queue_start_sequence(self.exe.cfg)[-1][1])
        irq = self.device.wait(seg.timeout_cycles if self.device.timeout_unit == "cycles"
                               else max(10.0, seg.timeout_cycles / 50e6))
        self.report.wait_seconds += time.perf_counter() - t0
        status = self._read(self.rm["STATUS"].offset)
        code = self._read(self.rm["ERROR_CODE"].offset) if status & STATUS_ERROR else 0
        cycles = self.device.cycles_since_start()
        if cycles is None and profile:
            cycles = self._read(self.rm["QUEUE_CYCLES_LO"].offset) | \
                self._read(self.rm["QUEUE_CYCLES_HI"].offset) << 32
        self._write(self.rm["IRQ_STATUS"].offset, 1)
        self.report.starts += 1
        self.report.segments += 1
        self.report.cycles += cycles or 0
        if code:
            index = self.device.read_register(self.rm["QUEUE_INDEX"].offset)
            cmd = seg.commands[index] if index < len(seg.commands) else {}
            raise driver.DriverError(f"accelerator error {ErrorCode(code).name} in command {index} "
                                     f"of the segment ({cmd.get('layer', '?')})")
        if not irq or not status & STATUS_DONE:
            raise driver.DriverError(f"the segment of {seg.count} commands did not finish within "
                                     f"{seg.timeout_cycles} {self.device.timeout_unit} (status {status:#x})")
        if profile:
            raw = self.device.read_memory(base + seg.trace_addr, seg.count * TRACE_BYTES)
            self.report.bytes_read += seg.count * TRACE_BYTES
            for record, cmd in zip(driver.trace_records(raw), seg.commands):
                self.report.layers.append({**cmd, **{k: v for k, v in record.items()
                                                     if k not in ("reserved", "error_code")}})

    def run(self, *inputs, record=False, profile=False):
        """One frame: ``(outputs, recorded)``; ``self.report`` says what it cost."""
        exe = self.exe
        if len(inputs) != len(exe.inputs):
            raise ValueError(f"the network takes {len(exe.inputs)} input(s), got {len(inputs)}")
        self.report = FrameReport()
        start = time.perf_counter()
        values = {}
        for name, x in zip(exe.inputs, inputs):
            t = exe.tensors[name]
            x = np.asarray(x.detach().numpy() if hasattr(x, "detach") else x)
            if tuple(x.shape) != tuple(t.shape):
                raise ValueError(f"input {name} must have shape {tuple(t.shape)}, got {tuple(x.shape)}")
            values[name] = x
        for step in exe.steps:
            if isinstance(step, Segment):
                self._start(step, profile)
                continue
            t0 = time.perf_counter()
            read0, written0 = self.report.bytes_read, self.report.bytes_written
            args = [values[n] if exe.tensors[n].offset < 0 else self._tensor(n) for n in step.inputs]
            results = host_ops.run(step, args, [exe.tensors[n] for n in step.inputs],
                                   [exe.tensors[n] for n in step.outputs])
            for name, value in zip(step.outputs, results):
                if exe.tensors[name].offset < 0:
                    values[name] = value
                else:
                    self._store(name, value)
            self.report.host_ops.append({"name": step.name, "kind": step.kind,
                                         "seconds": time.perf_counter() - t0,
                                         "bytes_read": self.report.bytes_read - read0,
                                         "bytes_written": self.report.bytes_written - written0})
        outputs = []
        for name in exe.outputs:
            outputs.append(values[name] if exe.tensors[name].offset < 0 else self._tensor(name).copy())
        recorded = None
        if record:
            recorded = {n: np.array(self.device.read_memory(self.device.base + t.offset, t.size)).reshape(t.shape)
                        for n, t in exe.tensors.items() if t.offset >= 0}
        self.report.seconds = time.perf_counter() - start - self.report.wait_seconds
        return (outputs[0] if len(outputs) == 1 else tuple(outputs)), recorded
