"""Golden model of the whole accelerator as a driver sees it: registers, DRAM, the queue.

:class:`GoldenAccelerator` answers the register map of :func:`hw.contract.register_map`
over a byte-addressed DRAM (a u8 numpy array) and runs what a START or a START_QUEUE asks
for at once, with the golden arithmetic (:mod:`host.golden.quant`): each command's
descriptor is checked with the hardware's own rules (:func:`descriptor_error`, in the
contract's order) before its DRAM is touched, its input, weights (in their DRAM layouts),
parameter records and table are read from DRAM and its output is written there. The
queue's checks (``BAD_QUEUE``, ``QUEUE_OUTSIDE_WINDOW``, ``BAD_COMMAND``), its trace
records and the interrupt at the end follow the contract (``hw/contract.py``). It has no
notion of time: the cycle counters of its trace records are 0; the DRAM byte counters
are the layer's transfers (``host.golden.tiling.transfers``) plus the table.

It proves a command list without RTL, and stands in for the board in the PYNQ backend's
tests. Nothing here imports torch.
"""

import numpy as np

from hw.config import CHANNEL_BLOCK, AccelConfig
from hw.contract import (COMMAND_BYTES, COUNTERS, CONTROL_SOFT_RESET, CONTROL_START, CONTROL_START_QUEUE,
                         PARAM_BYTES, STATUS_BUSY, STATUS_DONE, STATUS_ERROR, TABLE_BYTES, TRACE_BYTES,
                         CommandOp, CommandRecord, ErrorCode, KernelParams, LayerDescriptor,
                         PoolDescriptor, PoolMode, layer_extents, pack_record, pool_extents, register_map,
                         unpack_record, TraceRecord, weight_size)
from amaranth.lib import data

from host.golden import tiling
from host.golden.quant import add_fixed, conv_accumulate, output_size, pad_input, requantize, wrap_int32
from host.golden.schedule import buffer_limit, buffer_needs

__all__ = ["GoldenAccelerator", "descriptor_error", "execute_layer", "pool_error", "execute_pool",
           "pool_output_shape", "ZERO_FIELDS"]

ZERO_FIELDS = ("channels", "height", "width", "kernels", "tile_k", "tile_c", "tile_xo", "tile_yo")


def descriptor_error(cfg, d, table_addr, window):
    """The :class:`hw.contract.ErrorCode` the controller gives descriptor ``d`` (a dict of
    :class:`hw.contract.LayerDescriptor` fields) with the table at ``table_addr`` and the
    DMA window ``(base, size)``: the first failing rule in the contract's order."""
    R, S, P = d["kernel_size"], d["stride"], d["padding"]
    if R not in (1, 3):
        return ErrorCode.BAD_KERNEL
    if S not in (1, 2):
        return ErrorCode.BAD_STRIDE
    if P > R - 1:
        return ErrorCode.BAD_PADDING
    if any(d[f] == 0 for f in ZERO_FIELDS) or min(d["height"], d["width"]) + 2 * P < R:
        return ErrorCode.ZERO_SIZE
    if d["in_pitch"] < d["width"] or d["out_pitch"] < output_size(d["width"], R, S, P):
        return ErrorCode.BAD_PITCH
    if R == 1 and d["channels"] > d["tile_c"] and d["tile_c"] % CHANNEL_BLOCK:
        return ErrorCode.BAD_CHANNEL_TILE
    if d.get("depthwise") and (R != 3 or d["channels"] != d["kernels"] or d["tile_c"] != d["tile_k"]
                               or d["tile_k"] > cfg.max_depthwise_tile_k):
        return ErrorCode.BAD_DEPTHWISE
    needs = buffer_needs(cfg, d)
    for code, name in ((ErrorCode.LINE_BUFFER_OVERFLOW, "line_buffer_depth"),
                       (ErrorCode.TILE_ROWS_OVERFLOW, "max_tile_rows"),
                       (ErrorCode.STREAMING_BUFFER_OVERFLOW, "streaming_buffer_words"),
                       (ErrorCode.STATIONARY_BUFFER_OVERFLOW, "stationary_buffer_depth"),
                       (ErrorCode.OUTPUT_BUFFER_OVERFLOW, "output_buffer_depth"),
                       (ErrorCode.OUTPUT_BUFFER_OVERFLOW, "max_output_dim")):
        if needs[name] > buffer_limit(cfg, name):
            return code
    return _extents_error(cfg, layer_extents(d, table_addr).values(), window)


def _extents_error(cfg, extents, window):
    """``ADDRESS_OVERFLOW`` for a ``(start, end)`` byte range past the address space,
    ``OUTSIDE_WINDOW`` for one outside ``window`` (base, size), else ``NONE``."""
    if any(end > 1 << cfg.axi_addr_width for _, end in extents):
        return ErrorCode.ADDRESS_OVERFLOW
    base, size = window
    if any(start < base or end > base + size for start, end in extents):
        return ErrorCode.OUTSIDE_WINDOW
    return ErrorCode.NONE


def _weights(view, d):
    """The layer's s8 weights (K, C or 1, R, R) from their DRAM layout."""
    k, c, r = d["kernels"], d["channels"], d["kernel_size"]
    raw = view(d["weight_addr"], weight_size(k, c, r, d["depthwise"])).view(np.int8)
    if d["depthwise"]:
        return raw.reshape(k, 1, 3, 3)
    if r == 1:      # channel-blocked (ceil(C / 9), K, 9): hw.contract.pointwise_weights
        w = raw.reshape(-1, k, CHANNEL_BLOCK).transpose(1, 0, 2).reshape(k, -1)[:, :c]
        return w.reshape(k, c, 1, 1)
    return raw.reshape(c, k, r, r).transpose(1, 0, 2, 3)   # (C, K, 9): hw.contract.conv_weights


def _params(view, d):
    """Per-kernel fields of the :class:`hw.contract.KernelParams` records."""
    k = d["kernels"]
    raw = view(d["params_addr"], k * PARAM_BYTES).reshape(k, PARAM_BYTES)
    fields = {}
    for name, fld in data.Layout.cast(KernelParams):
        start, size = fld.offset // 8, fld.shape.width // 8
        if name == "reserved":
            continue
        dtype = {"bias": "<i4", "multiplier": "<f4"}.get(name, np.uint8)
        fields[name] = np.ascontiguousarray(raw[:, start:start + size]).view(dtype).reshape(k)
    return fields


def execute_layer(view, d, table_addr, zero_point):
    """Run one validated layer with the golden arithmetic on DRAM seen through ``view(addr,
    size)`` (a writable u8 array of ``size`` bytes at ``addr``): read its input (rows
    ``in_pitch`` apart, channels ``height * in_pitch`` apart), weights, parameter records
    and table, write its output (rows ``out_pitch`` apart, channels ``XO * out_pitch``
    apart), adding the residual when the descriptor fuses one (``add_fixed``)."""
    c, h, w, k = d["channels"], d["height"], d["width"], d["kernels"]
    r, s, p = d["kernel_size"], d["stride"], d["padding"]
    xo, yo = output_size(h, r, s, p), output_size(w, r, s, p)
    pitch, out_pitch = d["in_pitch"], d["out_pitch"]
    x = view(d["input_addr"], c * h * pitch).reshape(1, c, h, pitch)[..., :w]
    weight = _weights(view, d)
    if d["depthwise"]:      # kernel i on channel i: the nine taps' products summed
        xp = pad_input(x, p, zero_point).astype(np.int64)
        acc = np.zeros((1, k, xo, yo), dtype=np.int64)
        for i in range(3):
            for j in range(3):
                acc += xp[:, :, i:i + s * (xo - 1) + 1:s, j:j + s * (yo - 1) + 1:s] * \
                    weight[None, :, 0, i, j, None, None].astype(np.int64)
    else:
        acc = conv_accumulate(x, weight, s, p, zero_point)
    params = _params(view, d)
    acc = wrap_int32(acc + params["bias"].astype(np.int64)[None, :, None, None])
    table = view(table_addr, TABLE_BYTES)
    y = requantize(acc, params["multiplier"], params["zero_point"], params["lo"], params["hi"], table)[0]
    if d.get("residual"):       # the fused addition, with the residual laid out as the output
        b = view(d["residual_addr"], k * xo * out_pitch).reshape(k, xo, out_pitch)[..., :yo]
        y = add_fixed(y, b, d["add_ma"], d["add_mb"], d["add_shift"], d["add_za"], d["add_zb"],
                      d["add_zo"], d["add_lo"])
    view(d["output_addr"], k * xo * out_pitch).reshape(k, xo, out_pitch)[..., :yo] = y


def pool_output_shape(p):
    """``(rows, columns)`` a pooling pass writes per channel."""
    if p["mode"] == PoolMode.COPY:
        return p["height"], p["width"]
    if p["mode"] == PoolMode.GLOBAL:
        return 1, 1
    return p["out_height"], p["out_width"]


def pool_error(cfg, p, window):
    """The :class:`hw.contract.ErrorCode` the pooling engine gives pass ``p`` (a dict of
    :class:`hw.contract.PoolDescriptor` fields) in the DMA window ``(base, size)``: the
    first failing rule in the contract's order (``hw.datapath.pool_engine``)."""
    mode, k = p["mode"], p["kernel"]
    rows, cols = pool_output_shape(p)
    windowed = mode in (PoolMode.MAX, PoolMode.AVG)
    exponent = (p["multiplier"] >> 23) & 0xFF
    row_bytes = p["width"] if mode == PoolMode.COPY else cols
    if (0 in (p["channels"], p["height"], p["width"]) or
            windowed and (k == 0 or p["stride"] == 0 or p["padding"] >= k or 0 in (rows, cols)
                          or cols > cfg.line_buffer_depth) or
            mode != PoolMode.COPY and p["width"] > cfg.line_buffer_depth or
            p["in_pitch"] < p["width"] or p["out_pitch"] < row_bytes or
            mode in (PoolMode.AVG, PoolMode.GLOBAL) and (p["multiplier"] >> 31 or exponent in (0, 0xFF))):
        return ErrorCode.BAD_POOL
    return _extents_error(cfg, pool_extents(p).values(), window)


def execute_pool(view, p):
    """Run one checked pooling pass on DRAM seen through ``view`` (see
    :class:`hw.contract.PoolDescriptor`): copies, window maxima, QNNPACK's window and global
    averages (``sum - zero_point * count``, requantized with the float ``multiplier``)."""
    mode, c_n, h, w = p["mode"], p["channels"], p["height"], p["width"]
    k, s, pad, zp = p["kernel"], p["stride"], p["padding"], p["zero_point"]
    m = np.array([p["multiplier"]], dtype=np.uint32).view(np.float32)[0]
    rows, cols = pool_output_shape(p)
    row_bytes = w if mode == PoolMode.COPY else cols
    for c in range(c_n):
        x = view(p["input_addr"] + c * p["in_channel_pitch"], (h - 1) * p["in_pitch"] + w)
        x = np.lib.stride_tricks.as_strided(x, shape=(h, w), strides=(p["in_pitch"], 1)).astype(np.int64)
        if mode == PoolMode.COPY:
            y = x
        elif mode == PoolMode.GLOBAL:
            y = requantize(np.array([x.sum() - zp * h * w]), m, zp, 0, 255).reshape(1, 1)
        else:
            y = np.zeros((rows, cols), dtype=np.int64)
            for r in range(rows):
                r0, r1 = max(0, r * s - pad), min(h, r * s - pad + k)
                for o in range(cols):
                    c0, c1 = max(0, o * s - pad), min(w, o * s - pad + k)
                    window = x[r0:r1, c0:c1]
                    if mode == PoolMode.MAX:
                        y[r, o] = window.max() if window.size else 0
                    else:
                        y[r, o] = window.sum() - zp * window.size
            if mode == PoolMode.AVG:
                y = requantize(y.reshape(-1), m, zp, 0, 255).reshape(rows, cols)
        out = view(p["output_addr"] + c * p["out_channel_pitch"], (rows - 1) * p["out_pitch"] + row_bytes)
        np.lib.stride_tricks.as_strided(out, shape=(rows, row_bytes), strides=(p["out_pitch"], 1),
                                        writeable=True)[...] = y.astype(np.uint8)


def _pool_counters(p):
    rows, cols = pool_output_shape(p)
    span = p["height"] if p["mode"] in (PoolMode.COPY, PoolMode.GLOBAL) else sum(
        max(0, min(p["height"], r * p["stride"] - p["padding"] + p["kernel"]) - max(0, r * p["stride"] - p["padding"]))
        for r in range(rows))
    counters = dict.fromkeys(COUNTERS, 0)
    counters.update(dram_read_bytes=p["channels"] * span * p["width"],
                    dram_write_bytes=p["channels"] * rows * (p["width"] if p["mode"] == PoolMode.COPY else cols))
    return counters


def _layer_counters(d):
    read, written, _, _ = tiling.transfer_summary(d)
    counters = dict.fromkeys(COUNTERS, 0)
    counters.update(dram_read_bytes=TABLE_BYTES + read, dram_write_bytes=written)
    return counters


class GoldenAccelerator:
    """The accelerator's registers over DRAM, running each START / START_QUEUE to its end
    at once.

    ``memory``: a u8 array, DRAM address ``a`` being ``memory[a]``; or ``view(addr,
    size)``, a writable u8 array of ``size`` bytes at ``addr`` that raises ``IndexError``
    outside the memory (a DMA error). ``read(offset)`` / ``write(offset, value)``: 32-bit
    register accesses. ``irq``: the interrupt line (IRQ_ENABLE bit 0 and IRQ_STATUS bit
    0). ``fail_with``: an :class:`hw.contract.ErrorCode` every command (layer or pool pass)
    ends with once its checks pass (a fault, for drivers' tests).
    """

    def __init__(self, cfg: AccelConfig, memory=None, *, view=None, fail_with=ErrorCode.NONE):
        self.cfg = cfg
        self.memory = memory
        self.view = view or self._memory_view
        self.fail_with = ErrorCode(fail_with)
        self.rm = register_map(cfg)
        self.values = {reg.offset: reg.reset for reg in self.rm}
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.layers_run = 0

    def _memory_view(self, addr, size):
        if addr < 0 or addr + size > self.memory.size:
            raise IndexError(f"DRAM access [{addr:#x}, {addr + size:#x}) outside the memory")
        return self.memory[addr:addr + size]

    def _reg(self, name):
        return self.values[self.rm[name].offset]

    def _pair(self, name):
        return self._reg(f"{name}_LO") | self._reg(f"{name}_HI") << 32

    def _set(self, name, value):
        self.values[self.rm[name].offset] = value & 0xFFFFFFFF

    def _set_pair(self, name, value):
        self._set(f"{name}_LO", value)
        self._set(f"{name}_HI", value >> 32)

    @property
    def irq(self):
        return bool(self._reg("IRQ_ENABLE") & 1 and self._reg("IRQ_STATUS") & 1)

    def read(self, offset):
        reg = next((r for r in self.rm if r.offset == offset), None)
        if reg is None or reg.access == "wo":
            return 0
        return self.values[offset]

    def write(self, offset, value):
        reg = next((r for r in self.rm if r.offset == offset), None)
        value = int(value) & 0xFFFFFFFF
        if reg is None or reg.access == "ro":
            return
        if reg.access == "w1c":
            self.values[offset] &= ~value
            return
        self.values[offset] = value
        if reg.name == "CONTROL":
            if value & CONTROL_SOFT_RESET:
                self._finish(None)
            elif value & CONTROL_START:
                self._run_single()
            elif value & CONTROL_START_QUEUE:
                self._run_queue()

    def _finish(self, code):
        """End a run with ``code`` (None: a soft reset, no interrupt)."""
        if code is None:
            self._set("STATUS", 0)
            self._set("ERROR_CODE", 0)
            return
        self._set("STATUS", STATUS_DONE | (STATUS_ERROR if code else 0))
        self._set("ERROR_CODE", int(code))
        self._set("IRQ_STATUS", self._reg("IRQ_STATUS") | 1)

    def _window(self):
        return self._pair("WINDOW_BASE"), self._pair("WINDOW_SIZE")

    def _descriptor(self):
        d = {}
        for reg in self.rm.descriptor_registers():
            d[reg.field_name] = d.get(reg.field_name, 0) | self.values[reg.offset] << (32 * reg.half)
        return d

    def _layer(self, d, table_addr, zero_point):
        """Run one layer: its ErrorCode."""
        code = descriptor_error(self.cfg, d, table_addr, self._window()) or self.fail_with
        if code:
            return code
        try:
            execute_layer(self.view, d, table_addr, zero_point)
        except IndexError:
            return ErrorCode.DMA_READ_ERROR
        self.counters = _layer_counters(d)
        for name, value in self.counters.items():
            self._set_pair(name.upper(), value)
        self.layers_run += 1
        return ErrorCode.NONE

    def _pool(self, fields):
        """Run one op POOL command: its ErrorCode."""
        if fields["pool_mode"] > 3:
            return ErrorCode.BAD_COMMAND
        p = {name: fields[name] for name, _ in data.Layout.cast(PoolDescriptor) if name in fields}
        p.update(kernel=fields["kernel_size"], mode=PoolMode(fields["pool_mode"]))
        code = pool_error(self.cfg, p, self._window()) or self.fail_with
        if code:
            return code
        try:
            execute_pool(self.view, p)
        except IndexError:
            return ErrorCode.DMA_READ_ERROR
        self.counters = _pool_counters(p)
        self.layers_run += 1
        return ErrorCode.NONE

    def _run_single(self):
        d = self._descriptor()
        widths = dict(data.Layout.cast(LayerDescriptor))
        if any(d[name] >> fld.shape.width for name, fld in widths.items()):
            return self._finish(ErrorCode.BAD_COMMAND)
        self._set("STATUS", STATUS_BUSY)
        self._finish(self._layer(d, self._pair("TABLE_ADDR"), self._reg("INPUT_ZERO_POINT") & 0xFF))

    def _run_queue(self):
        length, addr, trace = self._reg("QUEUE_LENGTH"), self._pair("QUEUE_ADDR"), self._pair("TRACE_ADDR")
        self._set("QUEUE_INDEX", 0)
        if not 1 <= length <= self.cfg.max_queue_length:
            return self._finish(ErrorCode.BAD_QUEUE)
        base, size = self._window()
        top = 1 << self.cfg.axi_addr_width
        for start, n in ((addr, length * COMMAND_BYTES), (trace, length * TRACE_BYTES)):
            if start + n > top or start < base or start + n > base + size:
                return self._finish(ErrorCode.QUEUE_OUTSIDE_WINDOW)
        widths = dict(data.Layout.cast(LayerDescriptor))
        for index in range(length):
            self._set("QUEUE_INDEX", index)
            try:
                fields = unpack_record(CommandRecord, self.view(addr + index * COMMAND_BYTES, COMMAND_BYTES))
            except IndexError:
                return self._finish(ErrorCode.DMA_READ_ERROR)
            if fields["op"] == CommandOp.POOL:
                code = self._pool(fields)
            else:
                d = {name: fields[name] for name in widths}
                if fields["op"] != CommandOp.CONV or any(d[n] >> f.shape.width for n, f in widths.items()):
                    return self._finish(ErrorCode.BAD_COMMAND)
                code = self._layer(d, fields["table_addr"], fields["zero_point"])
            if code:
                return self._finish(code)
            try:
                self.view(trace + index * TRACE_BYTES, TRACE_BYTES)[:] = \
                    pack_record(TraceRecord, {**self.counters, "index": index})
            except IndexError:
                return self._finish(ErrorCode.DMA_WRITE_ERROR)
        self._set("QUEUE_INDEX", length)
        self._finish(ErrorCode.NONE)
