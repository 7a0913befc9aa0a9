"""What every backend (simulation, PYNQ) does to run a layer, as plain data.

``prepare_layer`` checks the layer, places it in a DRAM image and gives the register
writes that describe it; backends only differ in how they write registers and memory.
"""

from dataclasses import dataclass

import numpy as np

from hw.config import AccelConfig
from hw.controller import COUNTERS, TABLE_BYTES
from hw.regs import CONTROL_SOFT_RESET, CONTROL_START, MAGIC, VERSION, ErrorCode, register_map

from . import schedule
from .layout import DramImage, layer_descriptor
from .quant import QuantConv, QuantError

__all__ = ["LayerRun", "prepare_layer", "register_writes", "identification_errors",
           "counters_from", "DriverError"]


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
                                 if kind != tiling.KIND_OUTPUT)


def default_tiles(cfg, conv, height, width):
    """The largest tiles that fit (whole layer if possible), shrinking T_C, T_K, then rows."""
    xo, yo = conv.output_shape(height, width)
    tiles = {"k": conv.out_channels, "c": conv.in_channels, "xo": xo, "yo": yo}
    base = dict(input_addr=0, weight_addr=0, params_addr=0, output_addr=0,
                channels=conv.in_channels, height=height, width=width, kernels=conv.out_channels,
                kernel_size=conv.kernel_size, stride=conv.stride, padding=conv.padding)
    from . import tiling

    def shrink_k(k):
        """About half, rounded to whole kernel groups so that no array row idles."""
        groups = -(-k // cfg.kp)
        return max(cfg.kp, (groups // 2 or 1) * cfg.kp)

    for _ in range(200):
        desc = tiling.descriptor(**base, **{f"tile_{k}": v for k, v in tiles.items()})
        needs = schedule.buffer_needs(cfg, desc)
        over = [n for n, v in needs.items() if v > getattr(cfg, n)]
        if not over:
            return tiles
        if "line_buffer_depth" in over and tiles["yo"] > 1:
            tiles["yo"] = max(1, tiles["yo"] // 2)
        elif "stationary_buffer_depth" in over or ("streaming_buffer_depth" in over and tiles["c"] > 1):
            if tiles["c"] > 1:
                tiles["c"] = max(1, tiles["c"] // 2)
            else:
                tiles["k"] = shrink_k(tiles["k"])
        elif "output_buffer_depth" in over and tiles["k"] > cfg.kp:
            tiles["k"] = shrink_k(tiles["k"])
        elif tiles["xo"] > 1:
            tiles["xo"] = max(1, tiles["xo"] // 2)
        elif tiles["yo"] > 1:
            tiles["yo"] = max(1, tiles["yo"] // 2)
        else:
            break
    schedule.check_fits(cfg, tiling.descriptor(**base, **{f"tile_{k}": v for k, v in tiles.items()}))
    return tiles


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
