"""The hardware/software contract, defined once and imported by ``hw``, ``host`` and ``gen``.

* :class:`LayerDescriptor`: one layer as the host writes it into the registers;
* :class:`KernelParams`: the per-kernel quantization parameters in DRAM
  (:data:`PARAM_BYTES` each, kernel-major), packed by :func:`pack_params`;
* :class:`DmaKind`: what a DMA transfer carries;
* :class:`ErrorCode`, :data:`COUNTERS`, the control and status bits and
  :func:`register_map`: the AXI4-Lite register map, exported by ``gen`` as JSON and as a
  C header (``dpegen_regs.h``);
* :data:`TABLE_BYTES`: the activation table's size in DRAM;
* :func:`layer_extents`: the DRAM byte ranges a layer reads and writes, which the
  hardware checks against the address space and the DMA window;
* :class:`CommandRecord` (:data:`COMMAND_BYTES` each) and :class:`TraceRecord`
  (:data:`TRACE_BYTES` each): the command queue's list in DRAM and the per-command trace
  the accelerator writes back, packed and unpacked by :func:`pack_record` /
  :func:`unpack_record`.

The command queue (register map 1.4): the host writes ``QUEUE_ADDR``, ``QUEUE_LENGTH``
and ``TRACE_ADDR`` and sets ``CONTROL_START_QUEUE``. The accelerator checks the list and
the trace area against the address space and the DMA window (``QUEUE_OUTSIDE_WINDOW``)
and the length against ``max_queue_length`` (``BAD_QUEUE``), then for each command in
order: reads its :class:`CommandRecord`, runs it as a single layer (validated with every
descriptor rule before any DRAM access for it), and once the layer's last B response is
in writes its :class:`TraceRecord` to ``TRACE_ADDR + index * TRACE_BYTES``. The next
command starts only then, so a command that reads an earlier one's output reads it
written. One interrupt comes at the end. An error stops the queue: ``ERROR_CODE`` holds
it and ``QUEUE_INDEX`` the failing command; ``CONTROL_SOFT_RESET`` stops it at any point.
A single layer (``CONTROL_START``, the descriptor registers) runs as a one-command queue
whose command comes from the registers and which writes no trace.

The DMA window: the driver programs, once per buffer allocation, the DRAM range
``[WINDOW_BASE, WINDOW_BASE + WINDOW_SIZE)`` the accelerator may touch. Every layer whose
extents leave it is refused with ``OUTSIDE_WINDOW`` before any DRAM access. The window
registers reset to 0, an empty window: nothing runs until a driver sets it.

All registers are 32 bits wide at 4-byte aligned offsets of the AXI4-Lite slave.
64-bit quantities are split into ``_LO`` / ``_HI`` registers (low word first).
"""

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from amaranth import signed, unsigned
from amaranth.lib import data, enum

from hw.config import CHANNEL_BLOCK, AccelConfig

__all__ = ["LayerDescriptor", "descriptor_layout", "KernelParams", "PARAM_BYTES", "pack_params",
           "CommandRecord", "COMMAND_BYTES", "CommandOp", "PoolMode", "PoolDescriptor", "pool_extents", "TraceRecord", "TRACE_BYTES", "pack_record",
           "unpack_record", "CONTROL_START_QUEUE",
           "DmaKind", "CHANNEL_BLOCK", "conv_weights", "pointwise_weights", "weight_size", "TABLE_BYTES", "layer_extents", "COUNTERS", "Register", "RegisterMap", "register_map",
           "ErrorCode", "MAGIC", "VERSION", "CONTROL_START", "CONTROL_SOFT_RESET", "STATUS_BUSY",
           "STATUS_DONE", "STATUS_ERROR"]


ADD_MULTIPLIER_BITS = 22    # QNNPACK's add multipliers are below 2**22 (host.golden.quant.add_parameters)


class LayerDescriptor(data.Struct):
    """One convolution layer as the Tiler (and the register map) sees it.

    Addresses are byte addresses of: ``input_addr`` (u8 NCHW, rows ``in_pitch`` bytes apart,
    channels ``height * in_pitch`` apart), ``weight_addr`` (s8, unit-major: 3x3 channel-major
    (C, K, 9) (:func:`conv_weights`); for ``kernel_size`` 1, channel-blocked (ceil(C / 9),
    K, 9) (:func:`pointwise_weights`); depthwise (K, 9)),
    ``params_addr`` (``PARAM_BYTES`` per kernel), ``output_addr`` (u8 NCHW, rows
    ``out_pitch`` bytes apart, channels ``XO * out_pitch`` apart). ``channels`` C,
    ``height`` X, ``width`` Y, ``kernels`` K; ``kernel_size`` 1 or 3, ``stride`` 1 or 2,
    ``padding`` 0..2; tile sizes ``tile_k`` T_K, ``tile_c`` T_C, ``tile_xo`` T_XO (output
    rows), ``tile_yo`` T_YO (output columns), all >= 1. A 1x1 layer's ``tile_c`` is a
    multiple of :data:`CHANNEL_BLOCK` or covers all channels. ``depthwise`` 1: a 3x3
    depthwise layer (groups = C = K, weights (K, 1, 3, 3)): kernel ``k`` reads channel
    ``k`` only, and ``tile_c`` equals ``tile_k``.

    ``residual`` 1 (register map 1.5): a residual addition fused into the output: each
    output byte ``a`` (after the requantization and the table) becomes QNNPACK's
    fixed-point sum with the byte ``b`` at the same offset from ``residual_addr`` (a
    tensor laid out as the output): ``acc = add_ma * (a - add_za) + add_mb * (b - add_zb)``,
    ``y = acc >> add_shift`` rounded half away from zero, ``clamp(y + add_zo, add_lo,
    255)`` (``host.golden.quant.add_fixed``).
    """

    input_addr: unsigned(64)
    weight_addr: unsigned(64)
    params_addr: unsigned(64)
    output_addr: unsigned(64)
    in_pitch: unsigned(32)
    out_pitch: unsigned(32)
    channels: unsigned(16)
    height: unsigned(16)
    width: unsigned(16)
    kernels: unsigned(16)
    tile_k: unsigned(16)
    tile_c: unsigned(16)
    tile_xo: unsigned(16)
    tile_yo: unsigned(16)
    kernel_size: unsigned(2)
    stride: unsigned(2)
    padding: unsigned(2)
    depthwise: unsigned(1)
    residual: unsigned(1)
    residual_addr: unsigned(64)
    add_ma: unsigned(ADD_MULTIPLIER_BITS)
    add_mb: unsigned(ADD_MULTIPLIER_BITS)
    add_shift: unsigned(5)
    add_za: unsigned(8)
    add_zb: unsigned(8)
    add_zo: unsigned(8)
    add_lo: unsigned(8)


def descriptor_layout():
    return data.Layout.cast(LayerDescriptor)


class KernelParams(data.Struct):
    """One kernel's quantization parameters in DRAM (little-endian, kernel-major):
    ``bias`` int32 (zero-point term folded in), ``multiplier`` float32 bits of M,
    ``zero_point`` z_o, clamp ``lo`` and ``hi``, then reserved zero bytes."""

    bias: signed(32)
    multiplier: unsigned(32)
    zero_point: unsigned(8)
    lo: unsigned(8)
    hi: unsigned(8)
    reserved: unsigned(40)


PARAM_BYTES = data.Layout.cast(KernelParams).size // 8


def conv_weights(weight):
    """A 3x3 layer's weights as the accelerator reads them (register map 1.6): s8 (K, C, 3,
    3) -> (C, K, 9) bytes, channel-major: channel ``c`` of kernel ``k`` holds its 9 taps at
    ``(c * K + k) * 9``. One channel of ``T_K`` kernels is then one contiguous run, written
    into the stationary buffer a whole ``KP x 9`` word per beat, as 1x1 weights are."""
    weight = np.asarray(weight, dtype=np.int8)
    k, c = weight.shape[:2]
    return weight.reshape(k, c, -1).transpose(1, 0, 2).reshape(-1).view(np.uint8)


def pointwise_weights(weight):
    """A 1x1 layer's weights as the accelerator reads them: s8 (K, C) (or (K, C, 1, 1)) ->
    (ceil(C / 9), K, 9) bytes, block ``b`` of kernel ``k`` holding channels ``9b .. 9b + 8``,
    zero past C. One channel block of ``T_K`` kernels is then one contiguous run."""
    weight = np.asarray(weight, dtype=np.int8)
    k = weight.shape[0]
    weight = weight.reshape(k, -1)
    blocks = -(-weight.shape[1] // CHANNEL_BLOCK)
    padded = np.zeros((k, blocks * CHANNEL_BLOCK), dtype=np.int8)
    padded[:, :weight.shape[1]] = weight
    return padded.reshape(k, blocks, CHANNEL_BLOCK).transpose(1, 0, 2).reshape(-1).view(np.uint8)


def weight_size(kernels, channels, kernel_size, depthwise=0):
    """Bytes of a layer's weights in DRAM."""
    if depthwise:
        return kernels * kernel_size * kernel_size
    if kernel_size == 1:
        return -(-channels // CHANNEL_BLOCK) * kernels * CHANNEL_BLOCK
    return kernels * channels * kernel_size * kernel_size


def pack_params(bias, multiplier, zero_point, lo, hi):
    """``PARAM_BYTES`` per kernel as u8 bytes, each field at its :class:`KernelParams`
    offset: ``bias`` int32 per kernel, ``multiplier`` float32 per kernel, ``zero_point``,
    ``lo`` and ``hi`` u8 (per kernel or scalars)."""
    bias = np.asarray(bias, dtype="<i4").reshape(-1)
    k = bias.size
    block = np.zeros((k, PARAM_BYTES), dtype=np.uint8)
    values = {"bias": bias.view(np.uint8).reshape(k, 4),
              "multiplier": np.asarray(multiplier, dtype="<f4").reshape(k).view(np.uint8).reshape(k, 4),
              "zero_point": np.broadcast_to(np.asarray(zero_point, dtype=np.uint8), (k,))[:, None],
              "lo": np.broadcast_to(np.asarray(lo, dtype=np.uint8), (k,))[:, None],
              "hi": np.broadcast_to(np.asarray(hi, dtype=np.uint8), (k,))[:, None]}
    for name, fld in data.Layout.cast(KernelParams):
        if name in values:
            start = fld.offset // 8
            block[:, start:start + fld.shape.width // 8] = values[name]
    return block.reshape(-1)


class DmaKind(enum.IntEnum, shape=3):
    """What a DMA transfer of the loop nest carries. RESIDUAL: the residual bytes a fused
    addition reads for an output transfer (issued with it)."""
    IACT = 0
    WEIGHT = 1
    PARAMS = 2
    OUTPUT = 3
    RESIDUAL = 4


TABLE_BYTES = 256           # the activation table: one u8 per u8 input

COUNTERS = ("cycles", "array_busy_cycles", "dram_read_bytes", "dram_write_bytes",
            "stall_input_cycles", "stall_weights_cycles", "stall_output_cycles")

MAGIC = 0x44504547          # "DPEG"
VERSION = 0x00010007        # 1.7 (1.1: TILE_ROWS_OVERFLOW; 1.2: DMA window, OUTSIDE_WINDOW, CFG_* of every field;
                            # 1.3: channel-packed 1x1 layers, their weight layout, BAD_CHANNEL_TILE,
                            # depthwise layers: DESC_DEPTHWISE, BAD_DEPTHWISE;
                            # 1.4: the command queue: QUEUE_*, TRACE_ADDR, CONTROL_START_QUEUE,
                            # BAD_QUEUE, QUEUE_OUTSIDE_WINDOW, BAD_COMMAND, CFG_MAX_QUEUE_LENGTH;
                            # 1.5: a fused residual addition: DESC_RESIDUAL, DESC_RESIDUAL_ADDR,
                            # DESC_ADD_*, the RESIDUAL DMA kind; queued pooling passes: op POOL,
                            # BAD_POOL;
                            # 1.6: 3x3 weights channel-major (C, K, 9), whole KP x 9 words per beat;
                            # CFG_DSP_PACKING (two products per DSP);
                            # 1.7: depthwise layers on every KP, min(KP, max_depthwise_lanes)
                            # channels at once; CFG_MAX_DEPTHWISE_LANES)

CONTROL_START = 1 << 0      # write 1: start the layer described by the descriptor registers
CONTROL_SOFT_RESET = 1 << 1  # write 1: abort everything and return to idle
CONTROL_START_QUEUE = 1 << 2  # write 1: run the QUEUE_LENGTH commands at QUEUE_ADDR
STATUS_BUSY = 1 << 0
STATUS_DONE = 1 << 1        # set when a layer or a queue ends (successfully or not), cleared by a start
STATUS_ERROR = 1 << 2       # ERROR_CODE is not NONE


class ErrorCode(IntEnum):
    """Values of ERROR_CODE. Descriptor errors are found before any DRAM access."""
    NONE = 0
    BAD_KERNEL = 1          # kernel_size not 1 or 3
    BAD_STRIDE = 2          # stride not 1 or 2
    BAD_PADDING = 3         # padding > kernel_size - 1
    ZERO_SIZE = 4           # a tensor or tile dimension is 0, or the output is empty
    LINE_BUFFER_OVERFLOW = 5
    STREAMING_BUFFER_OVERFLOW = 6
    STATIONARY_BUFFER_OVERFLOW = 7
    OUTPUT_BUFFER_OVERFLOW = 8
    ADDRESS_OVERFLOW = 9    # a tensor runs past the top of the address space
    BAD_PITCH = 10          # in_pitch < width or out_pitch < output width
    DMA_READ_ERROR = 11     # SLVERR / DECERR on a read
    DMA_WRITE_ERROR = 12    # SLVERR / DECERR on a write
    TILE_ROWS_OVERFLOW = 13  # a tile has more input or output rows than max_tile_rows
    OUTSIDE_WINDOW = 14     # a read or write of the layer leaves [WINDOW_BASE, WINDOW_BASE + WINDOW_SIZE)
    BAD_CHANNEL_TILE = 15   # a 1x1 layer's tile_c is below C and not a multiple of CHANNEL_BLOCK
    BAD_DEPTHWISE = 16      # depthwise with kernel_size != 3, channels != kernels, tile_c != tile_k,
                            # or tile_k > max_depthwise_tile_k (the depthwise lanes when they are
                            # fewer than kp)
    BAD_QUEUE = 17          # QUEUE_LENGTH is 0 or above max_queue_length
    QUEUE_OUTSIDE_WINDOW = 18  # the command list or the trace area leaves the DMA window
                               # or the address space
    BAD_COMMAND = 19        # a command's op is unknown, or a field does not fit the descriptor
    BAD_POOL = 20           # a pooling pass's mode, sizes, window or pitches are invalid, or a
                            # pooled row is wider than line_buffer_depth


def layer_extents(desc, table_addr):
    """``{name: (start, end)}``: the DRAM byte ranges a layer touches, as the hardware
    validation computes them (``end`` exclusive): ``input`` channels * height * in_pitch
    bytes from input_addr, ``weights`` :func:`weight_size`, ``params`` K * PARAM_BYTES,
    ``table`` TABLE_BYTES, with a fused residual ``residual`` K * XO * out_pitch (all read)
    and ``output`` K * XO * out_pitch (written).
    ``desc``: a dict of :class:`LayerDescriptor` fields."""
    d = desc
    r = d["kernel_size"]
    span = d["height"] + 2 * d["padding"] - r
    xo = (span >> 1 if d["stride"] == 2 else span) + 1       # as the hardware computes it
    sizes = {"input": (d["input_addr"], d["channels"] * d["height"] * d["in_pitch"]),
             "weights": (d["weight_addr"], weight_size(d["kernels"], d["channels"], r,
                                                       d.get("depthwise", 0))),
             "params": (d["params_addr"], d["kernels"] * PARAM_BYTES),
             "table": (table_addr, TABLE_BYTES),
             "output": (d["output_addr"], d["kernels"] * xo * d["out_pitch"])}
    if d.get("residual"):       # read, laid out as the output
        sizes["residual"] = (d["residual_addr"], d["kernels"] * xo * d["out_pitch"])
    return {name: (start, start + size) for name, (start, size) in sizes.items()}


class CommandOp(enum.IntEnum, shape=8):
    """What a queued command runs."""
    CONV = 0        # one layer: the descriptor fields, the table address and zero point
    POOL = 1        # a pooling or copy pass (register map 1.5): the PoolDescriptor fields


class PoolMode(enum.IntEnum, shape=2):
    """What a :class:`PoolDescriptor` computes."""
    COPY = 0        # each input row to the output row of the same index
    MAX = 1         # the maximum of each window
    AVG = 2         # QNNPACK's average of each window (its float multiplier)
    GLOBAL = 3      # QNNPACK's average of each channel's whole image


class PoolDescriptor(data.Struct):
    """One pass of the pooling engine (``hw.datapath.pool_engine``), from a
    :class:`CommandRecord` of op POOL (its fields of the same names). Channel ``c``'s input
    row ``i`` is ``width`` bytes at ``input_addr + c * in_channel_pitch + i * in_pitch``;
    output row ``r`` is ``out_width`` bytes at ``output_addr + c * out_channel_pitch + r *
    out_pitch`` (``out_height`` rows; a copy: ``height`` rows of ``width`` bytes; global
    pooling: one byte per channel). A window is ``kernel`` x ``kernel`` positions,
    ``stride`` apart, starting ``padding`` before the tensor; ``zero_point`` and
    ``multiplier`` (float32 bits) requantize averages."""

    input_addr: unsigned(64)
    output_addr: unsigned(64)
    in_channel_pitch: unsigned(32)
    out_channel_pitch: unsigned(32)
    in_pitch: unsigned(32)
    out_pitch: unsigned(32)
    multiplier: unsigned(32)
    channels: unsigned(16)
    height: unsigned(16)
    width: unsigned(16)
    out_height: unsigned(16)
    out_width: unsigned(16)
    kernel: unsigned(8)
    stride: unsigned(8)
    padding: unsigned(8)
    zero_point: unsigned(8)
    mode: PoolMode


class CommandRecord(data.Struct):
    """One command of the queue in DRAM: :data:`COMMAND_BYTES`, little-endian, every field
    at a multiple of its own size. The :class:`LayerDescriptor` fields (each widened to
    whole bytes), ``table_addr`` and ``zero_point`` (the ``TABLE_ADDR`` and
    ``INPUT_ZERO_POINT`` registers of a single layer), ``op`` (:class:`CommandOp`), then
    reserved zero bytes. A field whose value does not fit the descriptor's width (e.g. a
    ``kernel_size`` of 4) or an unknown ``op`` is refused with ``BAD_COMMAND``. An op POOL
    command is a :class:`PoolDescriptor`: the fields of the same names, ``kernel_size``
    its ``kernel``, ``zero_point``, ``pool_mode`` its ``mode``; its rules are
    ``BAD_POOL``'s, then the address space and the window."""

    input_addr: unsigned(64)
    weight_addr: unsigned(64)
    params_addr: unsigned(64)
    output_addr: unsigned(64)
    table_addr: unsigned(64)
    residual_addr: unsigned(64)
    in_pitch: unsigned(32)
    out_pitch: unsigned(32)
    add_ma: unsigned(32)
    add_mb: unsigned(32)
    in_channel_pitch: unsigned(32)
    out_channel_pitch: unsigned(32)
    multiplier: unsigned(32)
    channels: unsigned(16)
    height: unsigned(16)
    width: unsigned(16)
    kernels: unsigned(16)
    tile_k: unsigned(16)
    tile_c: unsigned(16)
    tile_xo: unsigned(16)
    tile_yo: unsigned(16)
    out_height: unsigned(16)
    out_width: unsigned(16)
    kernel_size: unsigned(8)
    stride: unsigned(8)
    padding: unsigned(8)
    depthwise: unsigned(8)
    zero_point: unsigned(8)
    op: unsigned(8)
    residual: unsigned(8)
    add_shift: unsigned(8)
    add_za: unsigned(8)
    add_zb: unsigned(8)
    add_zo: unsigned(8)
    add_lo: unsigned(8)
    pool_mode: unsigned(8)
    reserved: unsigned(152)


COMMAND_BYTES = data.Layout.cast(CommandRecord).size // 8


class TraceRecord(data.Struct):
    """What the accelerator writes back per queued command (:data:`TRACE_BYTES`,
    little-endian): the performance counters of :data:`COUNTERS` as the layer ended, the
    command's ``index`` in the list and its ``error_code`` (always ``NONE``: a failing
    command stops the queue without a trace record), then reserved zero bytes."""

    cycles: unsigned(64)
    array_busy_cycles: unsigned(64)
    dram_read_bytes: unsigned(64)
    dram_write_bytes: unsigned(64)
    stall_input_cycles: unsigned(64)
    stall_weights_cycles: unsigned(64)
    stall_output_cycles: unsigned(64)
    index: unsigned(32)
    error_code: unsigned(8)
    reserved: unsigned(24)


TRACE_BYTES = data.Layout.cast(TraceRecord).size // 8


def pack_record(layout, values):
    """A record of ``layout`` (e.g. :class:`CommandRecord`) as little-endian u8 bytes:
    each field of ``values`` (a dict; missing fields are 0) at its bit offset. Raises
    ``ValueError`` for a value that does not fit its field."""
    layout = data.Layout.cast(layout)
    word = 0
    for name, fld in layout:
        value = int(values.get(name, 0))
        if not 0 <= value < 1 << fld.shape.width:
            raise ValueError(f"{name} = {value} does not fit the record's {fld.shape.width} bits")
        word |= value << fld.offset
    unknown = set(values) - {name for name, _ in layout}
    if unknown:
        raise ValueError(f"fields {sorted(unknown)} are not in the record")
    return np.frombuffer(word.to_bytes(layout.size // 8, "little"), dtype=np.uint8).copy()


def unpack_record(layout, raw):
    """The fields of a record of ``layout`` from its little-endian bytes ``raw``."""
    layout = data.Layout.cast(layout)
    word = int.from_bytes(np.asarray(raw, dtype=np.uint8).tobytes(), "little")
    return {name: (word >> fld.offset) & ((1 << fld.shape.width) - 1) for name, fld in layout}


def pool_extents(p):
    """``{"input": (start, end), "output": (start, end)}``: the DRAM bytes a pooling pass
    reads and writes (a dict of :class:`PoolDescriptor` fields), from the first channel's
    first row to the last channel's last row."""
    rows_out, cols_out = ((p["height"], p["width"]) if p["mode"] == PoolMode.COPY else
                          (1, 1) if p["mode"] == PoolMode.GLOBAL else (p["out_height"], p["out_width"]))
    last_in = (p["channels"] - 1) * p["in_channel_pitch"] + (p["height"] - 1) * p["in_pitch"] + p["width"]
    last_out = (p["channels"] - 1) * p["out_channel_pitch"] + (rows_out - 1) * p["out_pitch"] + cols_out
    return {"input": (p["input_addr"], p["input_addr"] + last_in),
            "output": (p["output_addr"], p["output_addr"] + last_out)}


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str             # "ro", "rw", "wo" (reads 0), "w1c" (write 1 to clear)
    doc: str
    reset: int = 0
    field_name: str = ""    # descriptor field this register (or its half) holds
    half: int = 0           # 0: bits 0..31 of the field, 1: bits 32..63


@dataclass
class RegisterMap:
    registers: list = field(default_factory=list)

    def add(self, name, access, doc, **kw):
        offset = 4 * len(self.registers)
        self.registers.append(Register(name, offset, access, doc, **kw))

    def __getitem__(self, name):
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(name)

    def __iter__(self):
        return iter(self.registers)

    @property
    def size(self):
        return 4 * len(self.registers)

    def descriptor_registers(self):
        return [r for r in self.registers if r.field_name]

    def to_json(self):
        return {"registers": [{"name": r.name, "offset": r.offset, "access": r.access,
                               "doc": r.doc, "reset": r.reset} for r in self.registers],
                "error_codes": {e.name: int(e) for e in ErrorCode},
                "bits": {"CONTROL_START": CONTROL_START, "CONTROL_SOFT_RESET": CONTROL_SOFT_RESET,
                         "CONTROL_START_QUEUE": CONTROL_START_QUEUE,
                         "STATUS_BUSY": STATUS_BUSY, "STATUS_DONE": STATUS_DONE,
                         "STATUS_ERROR": STATUS_ERROR},
                "records": {name: _record_json(layout) for name, layout in
                            (("command", CommandRecord), ("trace", TraceRecord))}}

    def c_header(self, prefix="DPEGEN"):
        lines = ["/* dpegen register map (generated; do not edit). */",
                 f"#ifndef {prefix}_REGS_H", f"#define {prefix}_REGS_H", ""]
        for r in self.registers:
            lines.append(f"#define {prefix}_{r.name:<32} 0x{r.offset:03x}u  /* {r.access}: {r.doc} */")
        lines.append("")
        for name, value in self.to_json()["bits"].items():
            lines.append(f"#define {prefix}_{name:<32} 0x{value:x}u")
        lines.append("")
        for e in ErrorCode:
            lines.append(f"#define {prefix}_ERROR_{e.name:<26} {int(e)}u")
        lines += ["", "#include <stdint.h>", ""]
        for name, record in self.to_json()["records"].items():
            lines.append(f"/* the {name} record in DRAM, little-endian, {record['bytes']} bytes */")
            lines.append("typedef struct {")
            for fld in record["fields"]:
                size = fld["bytes"]
                if size in (1, 2, 4, 8):
                    lines.append(f"    uint{8 * size}_t {fld['name']};")
                else:
                    lines.append(f"    uint8_t {fld['name']}[{size}];")
            lines.append(f"}} {prefix.lower()}_{name}_t;")
            lines.append(f"_Static_assert(sizeof({prefix.lower()}_{name}_t) == {record['bytes']}, "
                         f"\"{name} record size\");")
            lines.append("")
        lines += [f"#endif /* {prefix}_REGS_H */", ""]
        return "\n".join(lines)


def _record_json(layout):
    layout = data.Layout.cast(layout)
    return {"bytes": layout.size // 8,
            "fields": [{"name": name, "offset": fld.offset // 8, "bytes": fld.shape.width // 8}
                       for name, fld in layout]}


def _descriptor_registers(rm, names):
    """One register per descriptor field of ``names`` (``_LO`` / ``_HI`` above 32 bits)."""
    fields = dict(data.Layout.cast(LayerDescriptor))
    for name in names:
        if fields[name].shape.width > 32:
            rm.add(f"DESC_{name.upper()}_LO", "rw", f"descriptor {name} bits 0..31", field_name=name)
            rm.add(f"DESC_{name.upper()}_HI", "rw", f"descriptor {name} bits 32..63", field_name=name, half=1)
        else:
            rm.add(f"DESC_{name.upper()}", "rw", f"descriptor {name}", field_name=name)


def _counter(rm, name, doc):
    rm.add(f"{name}_LO", "ro", f"{doc} (bits 0..31)")
    rm.add(f"{name}_HI", "ro", f"{doc} (bits 32..63)")


def register_map(cfg: AccelConfig = AccelConfig()):
    rm = RegisterMap()
    # identification
    rm.add("MAGIC", "ro", "0x44504547, 'DPEG'", reset=MAGIC)
    rm.add("VERSION", "ro", "register map version, major << 16 | minor", reset=VERSION)
    for name in ("kp", "yp", "line_buffer_depth", "streaming_buffer_depth",
                 "stationary_buffer_depth", "output_buffer_depth", "axi_data_width",
                 "axi_addr_width", "max_outstanding_reads"):
        rm.add(f"CFG_{name.upper()}", "ro", f"generated configuration: {name}", reset=getattr(cfg, name))
    # control and status
    rm.add("CONTROL", "wo", "bit 0 START, bit 1 SOFT_RESET, bit 2 START_QUEUE (1.4)")
    rm.add("STATUS", "ro", "bit 0 BUSY, bit 1 DONE, bit 2 ERROR")
    rm.add("ERROR_CODE", "ro", "ErrorCode of the last layer")
    rm.add("IRQ_ENABLE", "rw", "bit 0: raise irq when a layer ends")
    rm.add("IRQ_STATUS", "w1c", "bit 0: a layer or a queue ended; write 1 to clear (and drop irq)")
    # layer descriptor (the fields of register map 1.1 and 1.2; later ones follow below)
    _descriptor_registers(rm, [name for name, _ in data.Layout.cast(LayerDescriptor)
                               if name not in DESCRIPTOR_FIELDS_1_3 + DESCRIPTOR_FIELDS_1_5])
    rm.add("TABLE_ADDR_LO", "rw", "DRAM address of the 256-byte activation table (bits 0..31)")
    rm.add("TABLE_ADDR_HI", "rw", "DRAM address of the 256-byte activation table (bits 32..63)")
    rm.add("INPUT_ZERO_POINT", "rw", "bits 0..7: input zero point, the value of padded positions")
    # performance counters, cleared by START
    _counter(rm, "CYCLES", "cycles from START to the end of the layer")
    _counter(rm, "ARRAY_BUSY_CYCLES", "cycles in which the DPE array took a window beat")
    _counter(rm, "DRAM_READ_BYTES", "bytes read from DRAM")
    _counter(rm, "DRAM_WRITE_BYTES", "bytes written to DRAM")
    _counter(rm, "STALL_INPUT_CYCLES", "array idle: no window from the line buffer")
    _counter(rm, "STALL_WEIGHTS_CYCLES", "array idle: window waits for weights")
    _counter(rm, "STALL_OUTPUT_CYCLES", "array stalled by the output buffer")
    # 1.2, after every 1.1 register so that their offsets stay: the DMA window ...
    for name, doc in (("BASE", "first DRAM byte the accelerator may touch"),
                      ("SIZE", "bytes of the DMA window (0, the reset value: nothing runs)")):
        rm.add(f"WINDOW_{name}_LO", "rw", f"{doc} (bits 0..31)")
        rm.add(f"WINDOW_{name}_HI", "rw", f"{doc} (bits 32..63)")
    # ... and the identification of the configuration fields added in 1.2
    for name in CFG_FIELDS_1_2:
        rm.add(f"CFG_{name.upper()}", "ro", f"generated configuration: {name}", reset=getattr(cfg, name))
    # 1.3: descriptor fields and configuration fields added since, after every earlier register
    _descriptor_registers(rm, DESCRIPTOR_FIELDS_1_3)
    for name in CFG_FIELDS_1_3:
        rm.add(f"CFG_{name.upper()}", "ro", f"generated configuration: {name}", reset=getattr(cfg, name))
    # 1.4: the command queue
    rm.add("QUEUE_ADDR_LO", "rw", "DRAM address of the command list (bits 0..31)")
    rm.add("QUEUE_ADDR_HI", "rw", "DRAM address of the command list (bits 32..63)")
    rm.add("QUEUE_LENGTH", "rw", "commands in the list (1 .. max_queue_length)")
    rm.add("TRACE_ADDR_LO", "rw", "DRAM address of the trace, TRACE_BYTES per command (bits 0..31)")
    rm.add("TRACE_ADDR_HI", "rw", "DRAM address of the trace, TRACE_BYTES per command (bits 32..63)")
    rm.add("QUEUE_INDEX", "ro", "commands of the queue completed; on an error, the failing command")
    _counter(rm, "QUEUE_CYCLES", "cycles from START_QUEUE to the end of the queue")
    for name in CFG_FIELDS_1_4:
        rm.add(f"CFG_{name.upper()}", "ro", f"generated configuration: {name}", reset=getattr(cfg, name))
    # 1.5: the descriptor's fused residual addition
    _descriptor_registers(rm, DESCRIPTOR_FIELDS_1_5)
    # 1.6: configuration fields added since, after every 1.5 register (a flag reads 0 / 1)
    for name in CFG_FIELDS_1_6:
        rm.add(f"CFG_{name.upper()}", "ro", f"generated configuration: {name}", reset=int(getattr(cfg, name)))
    # 1.7: after every 1.6 register
    for name in CFG_FIELDS_1_7:
        rm.add(f"CFG_{name.upper()}", "ro", f"generated configuration: {name}", reset=getattr(cfg, name))
    return rm


# descriptor fields added in register map 1.3 (their registers follow every 1.2 register)
DESCRIPTOR_FIELDS_1_3 = ("depthwise",)
# ... and in 1.5 (after every 1.4 register): the fused residual addition
DESCRIPTOR_FIELDS_1_5 = ("residual", "residual_addr", "add_ma", "add_mb", "add_shift", "add_za",
                         "add_zb", "add_zo", "add_lo")

# configuration fields identified since register map 1.2
CFG_FIELDS_1_2 = ("max_outstanding_writes", "read_buffer_depth", "read_route_depth",
                  "write_queue_depth", "sequencer_queue_depth", "line_buffer_slots",
                  "csr_addr_width")
# ... since 1.3
CFG_FIELDS_1_3 = ("drain_words",)
# ... since 1.4
CFG_FIELDS_1_4 = ("max_queue_length",)
# ... since 1.6
CFG_FIELDS_1_6 = ("dsp_packing",)
# ... and since 1.7
CFG_FIELDS_1_7 = ("max_depthwise_lanes",)
