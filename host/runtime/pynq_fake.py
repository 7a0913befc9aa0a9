"""A stand-in for the ``pynq`` package and the board, for tests and for trying the board
flow without one.

``FakeBoard(cfg)`` holds the accelerator's registers, the contiguous buffers and the
interrupt, with :class:`host.golden.machine.GoldenAccelerator` behind the registers (so a
START or START_QUEUE runs at once with the golden arithmetic on the buffers' bytes), and
logs every access. ``board.module()`` is a ``pynq`` module (``Overlay``, ``MMIO``,
``allocate``, ``Interrupt``) over it: put it in ``sys.modules["pynq"]`` and the PYNQ
backend runs unchanged. Nothing here imports torch or the real pynq.
"""

import types

import numpy as np

from hw.config import AccelConfig
from hw.contract import MAGIC, ErrorCode, register_map

from host.golden.machine import GoldenAccelerator

__all__ = ["FakeBoard", "BUFFER_BASE", "REGISTER_BASE", "IRQ_PIN"]

BUFFER_BASE = 0x1_FFFF_8000     # first buffer's physical address: rebasing carries into _HI
REGISTER_BASE = 0x8000_0000
IRQ_PIN = "dpegen_0/irq"


class FakeBoard:
    """The board behind a fake ``pynq`` (see the module). ``cfg``: the configuration the
    bitstream was built with; ``magic``: what MAGIC reads; ``fail_with``: an error code
    every command ends with; ``with_interrupt``: whether the overlay has the interrupt."""

    def __init__(self, cfg=AccelConfig(), *, magic=MAGIC, fail_with=ErrorCode.NONE, with_interrupt=True):
        self.cfg = cfg
        self.rm = register_map(cfg)
        self.log = []
        self.buffers = []
        self.with_interrupt = with_interrupt
        self.accelerator = GoldenAccelerator(cfg, view=self.dram, fail_with=fail_with)
        self.magic = magic

    # the accelerator's side
    def dram(self, addr, length):
        """The bytes ``[addr, addr + length)`` of the buffer holding them (``IndexError``
        outside every buffer: a DMA error)."""
        for buf in self.buffers:
            if buf.device_address <= addr and addr + length <= buf.device_address + buf.size:
                start = addr - buf.device_address
                return buf.view(np.ndarray)[start:start + length]
        raise IndexError(f"DRAM access {addr:#x}+{length} outside every buffer")

    def read(self, offset):
        self.log.append(("read", offset))
        if offset == self.rm["MAGIC"].offset:
            return self.magic
        return self.accelerator.read(offset)

    def write(self, offset, value):
        self.log.append(("write", offset, value))
        self.accelerator.write(offset, value)

    @property
    def irq(self):
        return self.accelerator.irq

    def reg(self, name):
        return self.accelerator.read(self.rm[name].offset)

    def window(self):
        return (self.reg("WINDOW_BASE_LO") | self.reg("WINDOW_BASE_HI") << 32,
                self.reg("WINDOW_SIZE_LO") | self.reg("WINDOW_SIZE_HI") << 32)

    def writes(self):
        """The register writes, in order: ``(offset, value)``."""
        return [(e[1], e[2]) for e in self.log if e[0] == "write"]

    # the host's side: a pynq module
    def module(self):
        board = self

        class MMIO:
            def __init__(self, base, length):
                board.log.append(("mmio", base, length))
                if base != REGISTER_BASE or length < board.rm.size:
                    raise ValueError(f"MMIO({base:#x}, {length}) does not map the accelerator's registers")

            def read(self, offset, length=4):
                return board.read(offset)

            def write(self, offset, value):
                board.write(offset, value)

        class Buffer(np.ndarray):
            """A physically contiguous buffer; a slice of it knows its own physical
            address, and its flush / invalidate cover just its bytes (as PYNQ's)."""

            def __array_finalize__(self, obj):
                base = getattr(obj, "device_address", None)
                if base is not None and obj.size and self.size:
                    offset = self.__array_interface__["data"][0] - obj.__array_interface__["data"][0]
                    self.device_address = base + offset
                else:
                    self.device_address = base

            def flush(self):
                board.log.append(("flush", self.device_address, self.nbytes))

            def invalidate(self):
                board.log.append(("invalidate", self.device_address, self.nbytes))

            def freebuffer(self):
                board.log.append(("free",))

        def allocate(shape, dtype):
            buf = np.zeros(shape, dtype=dtype).view(Buffer)
            if board.buffers:       # the next MiB after the last buffer
                end = board.buffers[-1].device_address + board.buffers[-1].size
                buf.device_address = -(-end // 0x100000) * 0x100000
            else:
                buf.device_address = BUFFER_BASE
            board.buffers.append(buf)
            board.log.append(("allocate", buf.nbytes))
            return buf

        class Interrupt:
            def __init__(self, pin):
                if pin != IRQ_PIN:
                    raise ValueError(f"no interrupt pin {pin}")
                board.log.append(("interrupt", pin))

            async def wait(self):
                board.log.append(("wait",))
                if not board.irq:
                    raise RuntimeError("interrupt waited on while irq is low forever")

        class Overlay:
            def __init__(self, bitfile, download=True):
                board.log.append(("overlay", bitfile, download))
                self.ip_dict = {
                    "axi_intc_0": {"phys_addr": 0x8001_0000, "addr_range": 0x10000,
                                   "type": "xilinx.com:ip:axi_intc:4.1"},
                    "dpegen_0": {"phys_addr": REGISTER_BASE, "addr_range": 0x1000,
                                 "type": "xilinx.com:module_ref:dpegen_axi:1.0"},
                }
                self.interrupt_pins = ({IRQ_PIN: {"controller": "axi_intc_0", "index": 0}}
                                       if board.with_interrupt else {})

        module = types.ModuleType("pynq")
        module.MMIO, module.allocate, module.Interrupt, module.Overlay = MMIO, allocate, Interrupt, Overlay
        return module
