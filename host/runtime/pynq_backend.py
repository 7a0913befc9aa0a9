"""PYNQ backend: runs layers on the ZCU104 bitstream built by ``python -m boards.zcu104``.

Everything about a layer (checks, DRAM layout, descriptor registers, start and finish
sequences) comes from :mod:`host.runtime.driver`, as for the simulation backend; this module only
moves bytes and register values through PYNQ:

1. ``pynq.Overlay(bitfile)`` loads ``dpegen.bit`` (with ``dpegen.hwh`` beside it);
2. the accelerator's registers are found in ``ip_dict`` (cell ``dpegen_0``) and its
   identification registers are checked against the configuration before anything else;
3. the layer's ``DramImage`` (addresses relative to the image) goes into a physically
   contiguous ``pynq.allocate`` buffer, and every address register is rebased by the
   buffer's physical address (:func:`host.runtime.driver.rebase_writes`); the DMA window
   registers are set to the whole buffer, ``[physical address, + buffer size)``
   (:func:`host.runtime.driver.with_window`), so the accelerator refuses any layer that would
   touch memory outside it;
4. the descriptor writes and :func:`host.runtime.driver.start_sequence` start the layer; the end
   comes as an interrupt (``pynq.Interrupt`` on ``dpegen_0/irq`` through the AXI interrupt
   controller), or by polling STATUS when no interrupt is available;
5. STATUS, ERROR_CODE and the counters are read, :func:`host.runtime.driver.finish_sequence`
   clears the interrupt, and the output is read back from the buffer.

Whole networks: :class:`PynqDevice` is the board as a
:class:`host.runtime.executable.Device`: ``Executable.run(x, backend="pynq",
bitfile=...)`` (or ``Executable.session("pynq", bitfile=...)``) allocates one buffer for
the executable's image, writes it once (weights stay resident) and per frame writes the
input, starts each segment with a few register writes, waits for its interrupt and reads
the output; the host operators between segments work on the buffer in place.

``pynq`` is imported only when a :class:`PynqAccelerator` or :class:`PynqDevice` is made;
:mod:`host.runtime.pynq_fake` stands in for it (and for the board) in tests.
"""

import asyncio
import time

import numpy as np

from hw.config import AccelConfig
from hw.contract import STATUS_DONE, register_map
from host.runtime.executable import Device

from host.runtime.driver import (DriverError, LayerRun, check_window, counters_from, finish_sequence,
                     identification_errors, prepare_layer, rebase_writes, start_sequence,
                     status_error, with_window)
from host.golden.quant import QuantConv

__all__ = ["PynqAccelerator", "PynqDevice", "Board", "run_conv", "find_accelerator", "ACCEL_CELL",
           "PYNQ_MISSING"]

ACCEL_CELL = "dpegen_0"             # block-design cell name (boards/zcu104.py)
ACCEL_MODULE = "dpegen_axi"         # module reference, part of the IP's type
PAGE = 4096                         # the DRAM layout aligns regions to 4 KiB
PYNQ_MISSING = ("host.runtime.pynq_backend needs the `pynq` package: run it on the board under a "
                "PYNQ image (v3.0 or newer for the ZCU104), where `pynq` is installed")


def _pynq():
    try:
        import pynq
    except ImportError as exc:
        raise ImportError(PYNQ_MISSING) from exc
    return pynq


def find_accelerator(ip_dict):
    """(name, entry) of the dpegen accelerator in an overlay's ``ip_dict``."""
    found = [(name, info) for name, info in ip_dict.items()
             if name.split("/")[-1] == ACCEL_CELL or ACCEL_MODULE in str(info.get("type", ""))]
    if len(found) != 1:
        raise DriverError(f"expected one dpegen accelerator (cell {ACCEL_CELL}) in the overlay, "
                          f"found {len(found)}: {sorted(ip_dict)}")
    return found[0]


def _physical_address(buffer):
    for attr in ("device_address", "physical_address"):
        addr = getattr(buffer, attr, None)
        if addr is not None:
            return int(addr)
    raise DriverError("the PYNQ buffer has no physical address")


class Board:
    """The accelerator of a loaded bitstream, checked against ``cfg``: registers through
    ``pynq.MMIO``, the end of a run through the interrupt or STATUS.

    ``bitfile``: path of ``dpegen.bit`` (``dpegen.hwh`` beside it). ``download``: load the
    bitstream (False: use the one already loaded). ``use_interrupt``: wait on the
    interrupt when the overlay has one, else poll STATUS. ``timeout``: seconds per run.
    """

    def __init__(self, cfg: AccelConfig, bitfile, *, download=True, use_interrupt=True, timeout=10.0):
        pynq = _pynq()
        self.cfg = cfg
        self.timeout = timeout
        self.rm = register_map(cfg)
        self.overlay = pynq.Overlay(str(bitfile), download=download)
        self.name, info = find_accelerator(self.overlay.ip_dict)
        self.mmio = pynq.MMIO(int(info["phys_addr"]), int(info.get("addr_range") or self.rm.size))
        errors = identification_errors(cfg, self.read)
        if errors:
            raise DriverError(f"the bitstream {bitfile} does not match the configuration: "
                              + "; ".join(errors))
        self.interrupt = None
        if use_interrupt:
            pin = self._irq_pin()
            if pin is not None:
                self.interrupt = pynq.Interrupt(pin)
        self._allocate = pynq.allocate

    def _irq_pin(self):
        pins = getattr(self.overlay, "interrupt_pins", None) or {}
        matches = [p for p in pins if p.split("/")[-1] == "irq" and self.name in p.split("/")]
        return matches[0] if len(matches) == 1 else None

    def read(self, offset):
        return int(self.mmio.read(offset))

    def write(self, offset, value):
        self.mmio.write(offset, int(value))

    def allocate(self, size):
        buffer = self._allocate(shape=(size,), dtype=np.uint8)
        if _physical_address(buffer) % PAGE:
            raise DriverError(f"buffer at {_physical_address(buffer):#x} is not {PAGE}-byte aligned")
        return buffer

    def _wait(self, timeout):
        try:
            asyncio.get_running_loop()
            in_loop = True          # e.g. a notebook: asyncio.run is unavailable, poll
        except RuntimeError:
            in_loop = False
        if self.interrupt is not None and not in_loop:
            try:
                asyncio.run(asyncio.wait_for(self.interrupt.wait(), timeout))
            except asyncio.TimeoutError:
                pass                # STATUS tells whether the run ended
            return
        deadline = time.monotonic() + timeout
        while not self.read(self.rm["STATUS"].offset) & STATUS_DONE:
            if time.monotonic() > deadline:
                return
            time.sleep(1e-4)


class PynqAccelerator(Board):
    """Single layers on the board (see :class:`Board` for the arguments)."""

    def __init__(self, cfg: AccelConfig, bitfile, **options):
        super().__init__(cfg, bitfile, **options)
        self.buffer = None

    def _buffer_for(self, size):
        if self.buffer is None or self.buffer.size < size:
            if self.buffer is not None and hasattr(self.buffer, "freebuffer"):
                self.buffer.freebuffer()
            self.buffer = self.allocate(size)
        return self.buffer

    def run_layer(self, run: LayerRun, timeout=None):
        """Run a prepared layer: ``(y_u8 (K, XO, YO), counters)``; counters include
        ``wall_seconds`` (START to the end as the host saw it)."""
        memory = run.dram.memory
        buffer = self._buffer_for(memory.size)
        base = _physical_address(buffer)
        check_window(run.descriptor, run.table_addr, (0, int(buffer.size)))
        writes = with_window(self.cfg, rebase_writes(self.cfg, run.writes, base), base, int(buffer.size))
        buffer[:memory.size] = memory
        buffer.flush()
        for offset, value in writes:
            self.write(offset, value)
        start = time.perf_counter()
        for offset, value in start_sequence(self.cfg):
            self.write(offset, value)
        self._wait(self.timeout if timeout is None else timeout)
        seconds = time.perf_counter() - start
        status = self.read(self.rm["STATUS"].offset)
        error_code = self.read(self.rm["ERROR_CODE"].offset)
        counters = counters_from(self.read)
        for offset, value in finish_sequence(self.cfg):
            self.write(offset, value)
        error = status_error(status, error_code)
        if error is not None:
            raise error
        if not status & STATUS_DONE:
            raise DriverError(f"the layer did not finish within "
                              f"{self.timeout if timeout is None else timeout} s (status {status:#x})")
        buffer.invalidate()
        size = int(np.prod(run.output_shape))
        y = np.array(buffer[run.output_addr:run.output_addr + size], dtype=np.uint8)
        return y.reshape(run.output_shape), {**counters, "wall_seconds": seconds}

    def run_conv(self, conv: QuantConv, x_u8, tiles=None):
        """``conv`` on ``x_u8`` (N, C, H, W) u8: ``(y_u8, counters summed over the batch)``."""
        x_u8 = np.asarray(x_u8)
        if x_u8.ndim != 4:
            raise ValueError(f"input must be (N, C, H, W), got shape {x_u8.shape}")
        runs = [prepare_layer(self.cfg, conv, image[None], tiles) for image in x_u8]
        outputs, totals = [], {}
        for run in runs:
            y, counters = self.run_layer(run)
            outputs.append(y)
            for name, value in counters.items():
                totals[name] = totals.get(name, 0) + value
        return np.stack(outputs), totals

    def close(self):
        if self.buffer is not None and hasattr(self.buffer, "freebuffer"):
            self.buffer.freebuffer()
        self.buffer = None


class PynqDevice(Device):
    """The board as a :class:`host.runtime.executable.Device`: one buffer of ``size``
    bytes (``base``: its physical address), the registers of :class:`Board` (``options``:
    its ``bitfile``, ``download``, ``use_interrupt``). The host's writes to the buffer are
    flushed from the cache, range by range, before the next start; a range the host
    reads is invalidated first, and read in place (no copy)."""
    timeout_unit = "seconds"

    def __init__(self, cfg: AccelConfig, size, *, bitfile, **options):
        self.board = Board(cfg, bitfile, **options)
        self.buffer = self.board.allocate(size)
        self.base, self.size = _physical_address(self.buffer), size
        self.control = self.board.rm["CONTROL"].offset
        self._dirty = []

    def read_register(self, offset):
        return self.board.read(offset)

    def write_register(self, offset, value):
        if offset == self.control:
            for span in self._dirty:
                self.buffer[span].flush()
            self._dirty = []
        self.board.write(offset, value)

    def _span(self, addr, size):
        start = addr - self.base
        if start < 0 or start + size > self.size:
            raise DriverError(f"[{addr:#x}, {addr + size:#x}) is outside the buffer "
                              f"[{self.base:#x}, {self.base + self.size:#x})")
        return slice(start, start + size)

    def read_memory(self, addr, size):
        view = self.buffer[self._span(addr, size)]
        view.invalidate()
        return view.view(np.ndarray)

    def write_memory(self, addr, data):
        data = np.asarray(data, dtype=np.uint8).reshape(-1)
        span = self._span(addr, data.size)
        self.buffer[span] = data
        self._dirty.append(span)

    def wait(self, timeout):
        """Until the interrupt (or STATUS.DONE, polled) or ``timeout`` seconds; the caller
        reads STATUS to tell which."""
        self.board._wait(timeout)
        return True

    def close(self):
        if hasattr(self.buffer, "freebuffer"):
            self.buffer.freebuffer()


_OPEN = {}


def run_conv(cfg: AccelConfig, conv: QuantConv, x_u8, *, bitfile, tiles=None):
    """Run ``conv`` on ``x_u8`` (N, C, H, W) u8 on the board: ``(y_u8, counters)``, like
    :func:`host.runtime.sim.run_conv` (``wall_seconds`` in place of ``wall_cycles``). The overlay
    is loaded on the first call per (configuration, bitfile) and reused."""
    key = (cfg, str(bitfile))
    if key not in _OPEN:
        _OPEN[key] = PynqAccelerator(cfg, bitfile)
    return _OPEN[key].run_conv(conv, x_u8, tiles)
