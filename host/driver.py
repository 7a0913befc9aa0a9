"""What every backend (simulation, PYNQ) does to run a layer, as plain data.

``prepare_layer`` checks the layer, places it in a DRAM image and gives the register
writes that describe it; backends only differ in how they write registers and memory.
"""

from dataclasses import dataclass

import numpy as np

from hw.config import AccelConfig
from hw.contract import (COUNTERS, CONTROL_START, MAGIC, TABLE_BYTES, VERSION, DmaKind, ErrorCode,
                         register_map)

from . import schedule
from .layout import DramImage, layer_descriptor
from .quant import QuantConv, QuantError

__all__ = ["LayerRun", "prepare_layer", "register_writes", "identification_errors",
           "counters_from", "DriverError", "start_sequence", "finish_sequence",
           "address_registers", "rebase_writes"]


class DriverError(RuntimeError):
    """The accelerator reported an error, or does not match the configuration."""


@dataclass
class LayerRun:
    """A layer ready to run: the DRAM image, register writes, and where the output is."""
    dram: DramImage
    descriptor: dict
    writes: list               # (offset, value) register writes, START excluded
    output_addr: int
    output_shape: tuple
    table_addr: int
    zero_point: int

    def writes_with(self, cfg, **fields):
        """The register writes with some descriptor fields replaced (unchecked)."""
        return register_writes(cfg, {**self.descriptor, **fields}, self.table_addr, self.zero_point)

    def read_bytes(self):
        """Bytes the layer must read from DRAM: its transfers plus the table."""
        from . import tiling
        return TABLE_BYTES + sum(length for kind, _, length in tiling.transfers(self.descriptor)
                                 if kind != DmaKind.OUTPUT)


def default_tiles(cfg, conv, height, width):
    """The planner's tiles for ``conv`` on a ``height`` x ``width`` input: the fewest
    modelled cycles among tiles that fit every buffer (``host.planner.plan``)."""
    from .planner import ConvShape, plan
    return dict(plan(cfg, ConvShape.from_conv(conv, height, width)).tiles)


def register_writes(cfg, desc, table_addr, zero_point):
    """(offset, value) writes of the descriptor, table address and input zero point."""
    rm = register_map(cfg)
    writes = []
    for reg in rm.descriptor_registers():
        writes.append((reg.offset, (desc[reg.field_name] >> (32 * reg.half)) & 0xFFFFFFFF))
    writes += [(rm["TABLE_ADDR_LO"].offset, table_addr & 0xFFFFFFFF),
               (rm["TABLE_ADDR_HI"].offset, table_addr >> 32),
               (rm["INPUT_ZERO_POINT"].offset, zero_point)]
    return writes


def prepare_layer(cfg: AccelConfig, conv: QuantConv, x_u8, tiles=None, base=0x1000):
    """Check ``conv`` and ``x_u8`` (1, C, H, W) and lay them out for the accelerator.

    Raises :class:`QuantError` for what the accelerator cannot run and
    :class:`schedule.BufferOverflow` for tiles that do not fit, before any hardware access.
    """
    x_u8 = np.asarray(x_u8)
    if x_u8.dtype != np.uint8 or x_u8.ndim != 4 or x_u8.shape[0] != 1:
        raise QuantError(f"input must be u8 (1, C, H, W), got {x_u8.dtype} {x_u8.shape}")
    _, c, h, w = x_u8.shape
    if c != conv.in_channels:
        raise QuantError(f"input has {c} channels, the layer expects {conv.in_channels}")
    out_shape = conv.output_shape(h, w)
    if tiles is None:
        tiles = default_tiles(cfg, conv, h, w)
    dram = DramImage(base=base)
    desc = layer_descriptor(conv, x_u8.shape, dram, tiles)
    schedule.check_fits(cfg, desc)
    dram.write("input", x_u8)
    table_addr = dram.place("table", TABLE_BYTES, conv.table)
    if dram.top > 1 << cfg.axi_addr_width:
        raise QuantError(f"the layer needs {dram.top} bytes of DRAM, beyond the "
                         f"{cfg.axi_addr_width}-bit address space")
    return LayerRun(dram=dram, descriptor=desc,
                    writes=register_writes(cfg, desc, table_addr, conv.input_zero_point),
                    output_addr=desc["output_addr"],
                    output_shape=(conv.out_channels,) + out_shape,
                    table_addr=table_addr, zero_point=conv.input_zero_point)


def identification_errors(cfg: AccelConfig, read):
    """Mismatches between the accelerator's identification registers and ``cfg``.

    ``read(offset) -> int`` reads a register. Returns a list of messages (empty: match)."""
    rm = register_map(cfg)
    errors = []
    if read(rm["MAGIC"].offset) != MAGIC:
        return [f"MAGIC reads {read(rm['MAGIC'].offset):#x}, expected {MAGIC:#x}: not a dpegen accelerator"]
    if read(rm["VERSION"].offset) >> 16 != VERSION >> 16:
        errors.append(f"register map version {read(rm['VERSION'].offset):#x}, driver speaks {VERSION:#x}")
    for reg in rm:
        if reg.name.startswith("CFG_"):
            got, want = read(reg.offset), reg.reset
            if got != want:
                errors.append(f"{reg.name[4:].lower()} is {got} in the bitstream, {want} in the configuration")
    return errors


def counters_from(read):
    """The performance counters, read through ``read(offset) -> int``."""
    rm = register_map()
    return {name: read(rm[f"{name.upper()}_LO"].offset) | read(rm[f"{name.upper()}_HI"].offset) << 32
            for name in COUNTERS}


def status_error(status, error_code):
    if error_code:
        return DriverError(f"accelerator error {ErrorCode(error_code).name} (status {status:#x})")
    return None


def start_sequence(cfg: AccelConfig = AccelConfig()):
    """(offset, value) writes that start a layer once its ``LayerRun.writes`` are in:
    enable the interrupt, then START. Every backend writes exactly these, in this order."""
    rm = register_map(cfg)
    return [(rm["IRQ_ENABLE"].offset, 1), (rm["CONTROL"].offset, CONTROL_START)]


def finish_sequence(cfg: AccelConfig = AccelConfig()):
    """(offset, value) writes after a layer ended and its status was read: clear IRQ_STATUS."""
    rm = register_map(cfg)
    return [(rm["IRQ_STATUS"].offset, 1)]


def address_registers(cfg: AccelConfig = AccelConfig()):
    """{name: (lo offset, hi offset)} of every register pair that holds a DRAM address
    (descriptor ``*_addr`` fields and the activation table address)."""
    rm = register_map(cfg)
    pairs = {}
    for reg in rm.descriptor_registers():
        if reg.field_name.endswith("_addr"):
            pairs.setdefault(reg.field_name, [None, None])[reg.half] = reg.offset
    pairs["table_addr"] = [rm["TABLE_ADDR_LO"].offset, rm["TABLE_ADDR_HI"].offset]
    for name, (lo, hi) in pairs.items():
        if lo is None or hi is None:
            raise ValueError(f"address register {name} has no low/high pair")
    return {name: tuple(pair) for name, pair in pairs.items()}


def rebase_writes(cfg: AccelConfig, writes, offset):
    """``writes`` with ``offset`` added to every DRAM address they program.

    A :class:`LayerRun`'s addresses are offsets into its ``DramImage``; a backend that
    places the image at physical address ``offset`` rebases them with this. Each address
    is rebased as a 64-bit value (carry from the low into the high word); both halves of
    every address must be among ``writes``. Order and other writes are unchanged.
    """
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, got {offset!r}")
    values = dict(writes)
    new = {}
    for name, (lo, hi) in address_registers(cfg).items():
        if lo not in values or hi not in values:
            raise ValueError(f"writes do not program both halves of {name}")
        addr = (values[lo] | values[hi] << 32) + int(offset)
        if addr >> cfg.axi_addr_width:
            raise ValueError(f"{name} {addr:#x} is beyond the {cfg.axi_addr_width}-bit address space")
        new[lo], new[hi] = addr & 0xFFFFFFFF, addr >> 32
    return [(reg, new.get(reg, value)) for reg, value in writes]
