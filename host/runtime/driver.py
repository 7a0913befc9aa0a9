"""What every backend (simulation, PYNQ) does to run a layer, as plain data.

``prepare_layer`` checks the layer, places it in a DRAM image and gives the register
writes that describe it; backends only differ in how they write registers and memory.
"""

from dataclasses import dataclass

import numpy as np

from hw.config import AccelConfig
from hw.contract import (COUNTERS, CONTROL_START, CONTROL_START_QUEUE, MAGIC, TABLE_BYTES,
                         TRACE_BYTES, VERSION, CommandOp, CommandRecord, DmaKind, ErrorCode, TraceRecord,
                         descriptor_layout, layer_extents, pack_record, register_map, unpack_record)

from host.golden import schedule
from host.runtime.layout import DramImage, layer_descriptor
from host.golden.quant import QuantConv, QuantError, float32_bits

__all__ = ["LayerRun", "prepare_layer", "runs_depthwise", "register_writes", "identification_errors",
           "counters_from", "DriverError", "start_sequence", "finish_sequence",
           "address_registers", "rebase_writes", "window_writes", "with_window", "check_window",
           "command_record", "pool_record", "command_fields", "rebase_command", "queue_writes", "queue_start_sequence",
           "trace_records", "QUEUE_VERSION"]

# the first register map version with the command queue
QUEUE_VERSION = 0x00010004


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
    window: tuple              # (base, size) of the DMA window the writes program

    def writes_with(self, cfg, table_addr=None, window=None, **fields):
        """The register writes with some descriptor fields, the table address or the
        window replaced (unchecked)."""
        return register_writes(cfg, {**self.descriptor, **fields},
                               self.table_addr if table_addr is None else table_addr,
                               self.zero_point, self.window if window is None else window)

    def extents(self):
        """``{name: (start, end)}`` of the DRAM ranges the layer touches."""
        return layer_extents(self.descriptor, self.table_addr)

    def read_bytes(self):
        """Bytes the layer must read from DRAM: its transfers plus the table."""
        from host.golden import tiling
        return TABLE_BYTES + sum(length for kind, _, length in tiling.transfers(self.descriptor)
                                 if kind != DmaKind.OUTPUT)


def runs_depthwise(conv):
    """Whether the accelerator runs ``conv`` as one depthwise layer (3x3, groups = C = K,
    ``AccelConfig.depthwise_lanes`` channels at once, on every configuration); other
    grouped layers run one group at a time."""
    return bool(conv.depthwise) and conv.kernel_size == 3


def window_writes(cfg, base, size):
    """(offset, value) writes of the DMA window ``[base, base + size)``."""
    rm = register_map(cfg)
    return [(rm["WINDOW_BASE_LO"].offset, base & 0xFFFFFFFF), (rm["WINDOW_BASE_HI"].offset, base >> 32),
            (rm["WINDOW_SIZE_LO"].offset, size & 0xFFFFFFFF), (rm["WINDOW_SIZE_HI"].offset, size >> 32)]


def with_window(cfg, writes, base, size):
    """``writes`` with the window registers set to ``[base, base + size)`` (in place of
    those ``writes`` program, or after them when they program none)."""
    new = dict(window_writes(cfg, base, size))
    out = [(reg, new.pop(reg, value)) for reg, value in writes]
    return out + list(new.items())


def register_writes(cfg, desc, table_addr, zero_point, window):
    """(offset, value) writes of the descriptor, table address, input zero point and the
    DMA window ``(base, size)``."""
    rm = register_map(cfg)
    writes = []
    for reg in rm.descriptor_registers():
        writes.append((reg.offset, (desc[reg.field_name] >> (32 * reg.half)) & 0xFFFFFFFF))
    writes += [(rm["TABLE_ADDR_LO"].offset, table_addr & 0xFFFFFFFF),
               (rm["TABLE_ADDR_HI"].offset, table_addr >> 32),
               (rm["INPUT_ZERO_POINT"].offset, zero_point)]
    return writes + window_writes(cfg, *window)


def check_window(desc, table_addr, window):
    """Raise :class:`DriverError` when a DRAM range the layer reads or writes
    (:func:`hw.contract.layer_extents`) leaves the DMA window ``(base, size)``, which the
    accelerator would refuse with ``OUTSIDE_WINDOW``."""
    base, size = window
    for name, (start, end) in layer_extents(desc, table_addr).items():
        if start < base or end > base + size:
            raise DriverError(f"the layer's {name} [{start:#x}, {end:#x}) is outside the DMA "
                              f"window [{base:#x}, {base + size:#x})")


def prepare_layer(cfg: AccelConfig, conv: QuantConv, x_u8, tiles=None, base=0x1000, window=None,
                  residual=None):
    """Check ``conv`` and ``x_u8`` (1, C, H, W) and lay them out for the accelerator.

    ``residual``: a fused residual addition, ``{"tensor": u8 (K, XO, YO), "ma", "mb",
    "shift", "za", "zb", "zo", "lo"}`` (``host.golden.quant.add_fixed``'s parameters; the
    tensor is placed in the image).
    ``tiles``: ``{"k", "c", "xo", "yo"}`` L3 tile sizes; by default the whole layer in one
    tile (the planner, ``host.compiler.planner.layer_tiles``, chooses better ones: the
    driver runs what it is given and plans nothing).
    ``window``: the DMA window ``(base, size)`` in image addresses; by default the image,
    ``[base, top)``. Raises :class:`QuantError` for what the accelerator cannot run,
    :class:`schedule.BufferOverflow` for tiles that do not fit and :class:`DriverError`
    for a layer outside the window, before any hardware access.
    """
    x_u8 = np.asarray(x_u8)
    if x_u8.dtype != np.uint8 or x_u8.ndim != 4 or x_u8.shape[0] != 1:
        raise QuantError(f"input must be u8 (1, C, H, W), got {x_u8.dtype} {x_u8.shape}")
    _, c, h, w = x_u8.shape
    if c != conv.in_channels:
        raise QuantError(f"input has {c} channels, the layer expects {conv.in_channels}")
    out_shape = conv.output_shape(h, w)
    if conv.groups != 1 and not runs_depthwise(conv):
        raise QuantError(f"a grouped layer (groups={conv.groups}) other than a 3x3 depthwise one "
                         f"runs as one layer per group (QuantConv.group); the accelerator runs "
                         f"3x3 depthwise layers whole")
    dram = DramImage(base=base)
    desc = layer_descriptor(conv, x_u8.shape, dram, tiles, residual)
    schedule.check_fits(cfg, desc)
    dram.write("input", x_u8)
    table_addr = dram.place("table", TABLE_BYTES, conv.table)
    if dram.top > 1 << cfg.axi_addr_width:
        raise QuantError(f"the layer needs {dram.top} bytes of DRAM, beyond the "
                         f"{cfg.axi_addr_width}-bit address space")
    window = (dram.base, dram.top - dram.base) if window is None else tuple(window)
    check_window(desc, table_addr, window)
    return LayerRun(dram=dram, descriptor=desc,
                    writes=register_writes(cfg, desc, table_addr, conv.input_zero_point, window),
                    output_addr=desc["output_addr"],
                    output_shape=(conv.out_channels,) + out_shape,
                    table_addr=table_addr, zero_point=conv.input_zero_point, window=window)


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


def command_record(desc, table_addr, zero_point):
    """The :class:`hw.contract.CommandRecord` (``COMMAND_BYTES`` u8) of one layer: its
    descriptor dict, activation table address and input zero point."""
    return pack_record(CommandRecord, {**desc, "table_addr": table_addr, "zero_point": zero_point,
                                       "op": CommandOp.CONV})


def pool_record(p):
    """The :class:`hw.contract.CommandRecord` (op POOL) of a pooling pass: a dict of
    :class:`hw.contract.PoolDescriptor` fields (``multiplier`` a float, or its bits)."""
    fields = dict(p)
    multiplier = fields.pop("multiplier", 0)
    if isinstance(multiplier, float) or isinstance(multiplier, np.floating):
        multiplier = float32_bits(multiplier)
    fields["multiplier"] = int(multiplier)
    fields["kernel_size"] = fields.pop("kernel", 0)
    fields["pool_mode"] = int(fields.pop("mode"))
    return pack_record(CommandRecord, {**fields, "op": CommandOp.POOL})


def command_fields(raw):
    """``(desc, table_addr, zero_point, op)`` of a packed command record."""
    fields = unpack_record(CommandRecord, raw)
    desc = {name: fields[name] for name, _ in descriptor_layout()}
    return desc, fields["table_addr"], fields["zero_point"], fields["op"]


def rebase_command(raw, offset):
    """A packed command record with ``offset`` added to every DRAM address it holds (the
    descriptor's ``*_addr`` fields and ``table_addr``)."""
    fields = unpack_record(CommandRecord, raw)
    for name in fields:
        if name.endswith("_addr"):
            fields[name] += int(offset)
    return pack_record(CommandRecord, fields)


def queue_writes(cfg, list_addr, length, trace_addr):
    """(offset, value) writes that describe a command queue run: the list's address and
    length and the trace address (``TRACE_BYTES`` per command)."""
    rm = register_map(cfg)
    return [(rm["QUEUE_ADDR_LO"].offset, list_addr & 0xFFFFFFFF), (rm["QUEUE_ADDR_HI"].offset, list_addr >> 32),
            (rm["QUEUE_LENGTH"].offset, length),
            (rm["TRACE_ADDR_LO"].offset, trace_addr & 0xFFFFFFFF), (rm["TRACE_ADDR_HI"].offset, trace_addr >> 32)]


def queue_start_sequence(cfg: AccelConfig = AccelConfig()):
    """(offset, value) writes that start a queue once its :func:`queue_writes` are in:
    enable the interrupt, then START_QUEUE."""
    rm = register_map(cfg)
    return [(rm["IRQ_ENABLE"].offset, 1), (rm["CONTROL"].offset, CONTROL_START_QUEUE)]


def trace_records(raw):
    """The :class:`hw.contract.TraceRecord` dicts of a trace area's bytes (``TRACE_BYTES``
    each)."""
    raw = np.asarray(raw, dtype=np.uint8).reshape(-1, TRACE_BYTES)
    return [unpack_record(TraceRecord, row) for row in raw]


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
    (descriptor ``*_addr`` fields, the activation table address and the window base)."""
    rm = register_map(cfg)
    pairs = {}
    for reg in rm.descriptor_registers():
        if reg.field_name.endswith("_addr"):
            pairs.setdefault(reg.field_name, [None, None])[reg.half] = reg.offset
    pairs["table_addr"] = [rm["TABLE_ADDR_LO"].offset, rm["TABLE_ADDR_HI"].offset]
    pairs["window_base"] = [rm["WINDOW_BASE_LO"].offset, rm["WINDOW_BASE_HI"].offset]
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
