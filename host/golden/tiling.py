"""Golden address model of the Tiler: the exact DMA command sequence of one layer.

``commands(desc)`` walks the L3 loop nest (:func:`steps`, docs/architecture.md) in this order::

    for k0 in range(0, K, T_K):
      for x0 in range(0, XO, T_XO):
        for y0 in range(0, YO, T_YO):
          for c0 in range(0, C, T_C):
            iAct tile      (kind IACT)
            weight tile    (kind WEIGHT)
            params block   (kind PARAMS, only when c0 == 0)
            output tile    (kind OUTPUT, only after the last c0)

and returns dicts ``{kind, addr, length, group_last, first_c, last_c, end}``:
``group_last`` marks the last command of its kind in that step, ``first_c`` / ``last_c``
tell whether the step is the first / last channel tile, ``end`` marks the layer's last
command. ``transfers(desc)`` is the ``(kind, addr, length)`` projection.

DRAM layouts (:class:`hw.contract.LayerDescriptor`): input u8 NCHW with row pitch
``in_pitch`` (channel stride ``height * in_pitch``); weights s8 unit-major: 3x3
channel-major (C, K, 9) (:func:`hw.contract.conv_weights`), 1x1 channel-blocked
(ceil(C / 9), K, 9) (:func:`hw.contract.pointwise_weights`), depthwise (K, 9);
params ``PARAM_BYTES`` per kernel, kernel-major; output u8 NCHW with row pitch
``out_pitch`` (channel stride ``XO * out_pitch``). Padding is produced on chip and never
read.

The descriptor layout is :class:`hw.contract.LayerDescriptor` (not redefined here);
``descriptor(...)`` fills defaults and validates, ``pack`` / ``pack_bytes`` give the integer /
little-endian bytes the hardware register block holds.
"""

from dataclasses import dataclass
from functools import lru_cache

from hw.contract import CHANNEL_BLOCK, PARAM_BYTES, DmaKind, LayerDescriptor, descriptor_layout

from host.golden.quant import output_size

__all__ = ["descriptor", "pack", "pack_bytes", "output_size", "ceil_div", "flat_tiles", "Step", "steps", "commands",
           "transfers", "transfer_summary"]

_FIELD_NAMES = [name for name, _ in descriptor_layout()]


def ceil_div(a, b):
    return -(-a // b)


def descriptor(*, input_addr, weight_addr, params_addr, output_addr, channels, height, width,
               kernels, kernel_size=3, stride=1, padding=1, tile_k=None, tile_c=None,
               tile_xo=None, tile_yo=None, in_pitch=None, out_pitch=None, depthwise=0,
               residual=None):
    """A validated descriptor dict; pitches default to the row widths, tiles to the layer
    (a depthwise layer's ``tile_c`` to its ``tile_k``). ``residual``: None, or a fused
    residual addition ``{"addr", "ma", "mb", "shift", "za", "zb", "zo", "lo"}``
    (:func:`host.golden.quant.add_fixed`'s parameters)."""
    def default_output(size):           # 1 where there is no output: validate() names it
        return output_size(size, kernel_size, stride, padding) if size + 2 * padding >= kernel_size else 1
    xo, yo = default_output(height), default_output(width)
    if depthwise and tile_c is None:
        tile_c = kernels if tile_k is None else tile_k
    d = {
        "input_addr": input_addr, "weight_addr": weight_addr, "params_addr": params_addr,
        "output_addr": output_addr, "channels": channels, "height": height, "width": width,
        "kernels": kernels, "kernel_size": kernel_size, "stride": stride, "padding": padding,
        "tile_k": kernels if tile_k is None else tile_k,
        "tile_c": channels if tile_c is None else tile_c,
        "tile_xo": xo if tile_xo is None else tile_xo,
        "tile_yo": yo if tile_yo is None else tile_yo,
        "in_pitch": width if in_pitch is None else in_pitch,
        "out_pitch": yo if out_pitch is None else out_pitch,
        "depthwise": int(depthwise),
        "residual": int(residual is not None), "residual_addr": 0,
        **{f"add_{n}": 0 for n in ("ma", "mb", "shift", "za", "zb", "zo", "lo")},
    }
    if residual is not None:
        d["residual_addr"] = residual["addr"]
        d.update({f"add_{n}": residual[n] for n in ("ma", "mb", "shift", "za", "zb", "zo", "lo")})
    validate(d)
    return d


# descriptor fields a dict may leave out (their default, 0: no fused residual)
OPTIONAL_FIELDS = ("residual", "residual_addr", "add_ma", "add_mb", "add_shift", "add_za", "add_zb",
                   "add_zo", "add_lo")


def validate(d):
    layout = descriptor_layout()
    for name in OPTIONAL_FIELDS:
        d.setdefault(name, 0)
    for name, field in layout:
        value = d[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << field.shape.width:
            raise ValueError(f"{name} must be an integer in [0, 2**{field.shape.width}), got {value!r}")
    if d["kernel_size"] not in (1, 3):
        raise ValueError(f"kernel_size must be 1 or 3, got {d['kernel_size']}")
    if d["stride"] not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {d['stride']}")
    if not 0 <= d["padding"] <= 2:
        raise ValueError(f"padding must be in [0, 2], got {d['padding']}")
    for name in ("channels", "height", "width", "kernels", "tile_k", "tile_c", "tile_xo", "tile_yo"):
        if d[name] < 1:
            raise ValueError(f"{name} must be at least 1, got {d[name]}")
    for size in ("height", "width"):
        if d[size] + 2 * d["padding"] < d["kernel_size"]:
            raise ValueError(f"{size} + 2 * padding must be at least the kernel size")
    if d["depthwise"] and (d["kernel_size"] != 3 or d["channels"] != d["kernels"]
                           or d["tile_c"] != d["tile_k"]):
        raise ValueError("a depthwise layer needs kernel_size 3, channels == kernels and "
                         f"tile_c == tile_k, got kernel_size {d['kernel_size']}, channels "
                         f"{d['channels']}, kernels {d['kernels']}, tile_c {d['tile_c']}, "
                         f"tile_k {d['tile_k']}")
    if d["kernel_size"] == 1 and d["tile_c"] < d["channels"] and d["tile_c"] % CHANNEL_BLOCK:
        raise ValueError(f"tile_c of a 1x1 layer must be a multiple of {CHANNEL_BLOCK} or cover "
                         f"all {d['channels']} channels, got {d['tile_c']}")
    if d["in_pitch"] < d["width"]:
        raise ValueError(f"in_pitch ({d['in_pitch']}) must be at least width ({d['width']})")
    yo = output_size(d["width"], d["kernel_size"], d["stride"], d["padding"])
    if d["out_pitch"] < yo:
        raise ValueError(f"out_pitch ({d['out_pitch']}) must be at least the output width ({yo})")


def pack(d):
    """The descriptor as the integer a ``LayerDescriptor`` signal carries."""
    validate(d)
    return LayerDescriptor.const({name: d[name] for name in _FIELD_NAMES}).as_value().value


def pack_bytes(d):
    """Little-endian bytes of :func:`pack`, padded to whole 32-bit words."""
    size = descriptor_layout().size
    return pack(d).to_bytes(-(-size // 32) * 4, "little")


def iact_tile(d, x0, y0, txo, tyo):
    """Input rows / columns [lo, hi) an output tile reads, clipped to the tensor: those its
    windows need; a 1x1 kernel's tile reads ``stride`` rows (columns) per output row
    (column), so that a stride-2 tile spans whole rows."""
    s, p, r = d["stride"], d["padding"], d["kernel_size"]

    def span(origin, count, size):
        top = origin * s - p
        end = top + count * s if r == 1 else top + (count - 1) * s + r
        return max(0, top), min(size, end)
    return (*span(x0, txo, d["height"]), *span(y0, tyo, d["width"]))


def flat_tiles(d):
    """Whether the layer's 1x1 tiles run flattened: stride 1 and full-width output tiles
    of contiguous rows, so a tile's pixels are one row of ``T_XO * YO`` in DRAM."""
    yo = output_size(d["width"], d["kernel_size"], d["stride"], d["padding"])
    return (d["kernel_size"] == 1 and d["stride"] == 1 and d["tile_yo"] >= yo
            and d["in_pitch"] == d["width"] and d["out_pitch"] == yo)


@dataclass(frozen=True)
class Step:
    """One channel tile ``c0`` of one output tile ``(k0, x0, y0)``: the tile sizes (clipped
    at the layer's edges), the input rows / columns it reads from ``(xi_lo, yi_lo)``, the
    padding rows / columns above and left of them, and whether it is the first / last
    channel tile of its output tile. ``blocks``: ``ceil(tc / 9)``, the 9-channel blocks a
    1x1 kernel packs into the DPE lanes; ``flat``: :func:`flat_tiles`. A depthwise layer's
    output tile has one step, with the channels of its kernels: ``c0 = k0``, ``tc = tk``."""
    k0: int
    x0: int
    y0: int
    c0: int
    tk: int
    tc: int
    txo: int
    tyo: int
    xi_lo: int
    yi_lo: int
    rows_in: int
    cols_in: int
    pad_top: int
    pad_left: int
    first_c: bool
    last_c: bool
    blocks: int
    flat: bool


def steps(d):
    """The L3 loop nest, the one walk of it on the host: output tiles ``k0, x0, y0``, then
    channel tiles ``c0`` innermost. :func:`commands` (the DMA transfers) and
    ``host.golden.schedule.core_commands`` (the compute core's commands) both consume it,
    as the Tiler and the Sequencer consume ``hw.control.steps.StepWalker``'s steps."""
    R, S, P = d["kernel_size"], d["stride"], d["padding"]
    XO = output_size(d["height"], R, S, P)
    YO = output_size(d["width"], R, S, P)
    flat = flat_tiles(d)
    for k0 in range(0, d["kernels"], d["tile_k"]):
        tk = min(d["tile_k"], d["kernels"] - k0)
        channel_tiles = [(k0, tk, True)] if d["depthwise"] else \
            [(c0, min(d["tile_c"], d["channels"] - c0), c0 + d["tile_c"] >= d["channels"])
             for c0 in range(0, d["channels"], d["tile_c"])]
        for x0 in range(0, XO, d["tile_xo"]):
            for y0 in range(0, YO, d["tile_yo"]):
                txo, tyo = min(d["tile_xo"], XO - x0), min(d["tile_yo"], YO - y0)
                xi_lo, xi_hi, yi_lo, yi_hi = iact_tile(d, x0, y0, txo, tyo)
                for c0, tc, last_c in channel_tiles:
                    yield Step(k0=k0, x0=x0, y0=y0, c0=c0, tk=tk, tc=tc, txo=txo, tyo=tyo,
                               xi_lo=xi_lo, yi_lo=yi_lo,
                               rows_in=xi_hi - xi_lo, cols_in=yi_hi - yi_lo,
                               pad_top=xi_lo - (x0 * S - P), pad_left=yi_lo - (y0 * S - P),
                               first_c=c0 == k0 if d["depthwise"] else c0 == 0, last_c=last_c,
                               blocks=ceil_div(tc, CHANNEL_BLOCK), flat=flat)


def commands(d):
    validate(d)
    C, X, Y = d["channels"], d["height"], d["width"]
    R, pitch, opitch = d["kernel_size"], d["in_pitch"], d["out_pitch"]
    RS = R * R
    XO = output_size(X, R, d["stride"], d["padding"])
    YO = output_size(Y, R, d["stride"], d["padding"])
    out = []

    def group(kind, items, first_c, last_c):
        for i, (addr, length) in enumerate(items):
            out.append({"kind": kind, "addr": addr, "length": length,
                        "group_last": int(i == len(items) - 1), "first_c": int(first_c),
                        "last_c": int(last_c), "end": 0})

    for st in steps(d):
        rows, cols = st.rows_in, st.cols_in
        merge_rows = st.yi_lo == 0 and cols == Y and pitch == Y
        merge_all = merge_rows and st.xi_lo == 0 and rows == X
        iact = []
        if rows > 0 and cols > 0:
            base = d["input_addr"] + st.c0 * X * pitch + st.xi_lo * pitch + st.yi_lo
            if merge_all:
                iact = [(base, st.tc * X * Y)]
            elif merge_rows:
                iact = [(base + c * X * pitch, rows * Y) for c in range(st.tc)]
            else:
                iact = [(base + c * X * pitch + r * pitch, cols)
                        for c in range(st.tc) for r in range(rows)]
        group(DmaKind.IACT, iact, st.first_c, st.last_c)
        K = d["kernels"]
        if d["depthwise"]:  # (K, 1, 3, 3)
            weights = [(d["weight_addr"] + st.k0 * RS, st.tk * RS)]
        elif R == 1:          # (ceil(C / 9), K, 9): T_K kernels' 9 bytes per channel block
            wbase = d["weight_addr"] + st.c0 * K + st.k0 * CHANNEL_BLOCK   # c0 % 9 == 0
            if st.tk == K:
                weights = [(wbase, st.blocks * K * CHANNEL_BLOCK)]
            else:
                weights = [(wbase + b * K * CHANNEL_BLOCK, st.tk * CHANNEL_BLOCK)
                           for b in range(st.blocks)]
        else:                 # (C, K, 9): T_K kernels' 9 taps per channel
            wbase = d["weight_addr"] + (st.c0 * K + st.k0) * RS
            if st.tk == K:
                weights = [(wbase, st.tc * K * RS)]
            else:
                weights = [(wbase + c * K * RS, st.tk * RS) for c in range(st.tc)]
        group(DmaKind.WEIGHT, weights, st.first_c, st.last_c)
        if st.first_c:
            group(DmaKind.PARAMS, [(d["params_addr"] + st.k0 * PARAM_BYTES, st.tk * PARAM_BYTES)],
                  st.first_c, st.last_c)
        if st.last_c:
            obase = d["output_addr"] + st.k0 * XO * opitch + st.x0 * opitch + st.y0
            orow = st.y0 == 0 and st.tyo == YO and opitch == YO
            oall = orow and st.x0 == 0 and st.txo == XO
            if oall:
                outs = [(obase, st.tk * XO * YO)]
            elif orow:
                outs = [(obase + k * XO * opitch, st.txo * YO) for k in range(st.tk)]
            else:
                outs = [(obase + k * XO * opitch + x * opitch, st.tyo)
                        for k in range(st.tk) for x in range(st.txo)]
            group(DmaKind.OUTPUT, outs, st.first_c, st.last_c)
    out[-1]["end"] = 1
    for c in out:
        if c["length"] >= 1 << 32:
            raise ValueError(f"transfer of {c['length']} bytes does not fit the 32-bit length")
    return out


def transfer_summary(d, bus_bytes=16):
    """``(read bytes, written bytes, transfers, bus beats)`` of :func:`transfers` of
    ``d`` (reads: every kind but OUTPUT; beats: ``ceil(length / bus_bytes)`` each). The
    lengths do not depend on the addresses, so the sums are kept per descriptor without
    them."""
    key = tuple(sorted((k, v) for k, v in d.items() if not k.endswith("_addr")))
    return _transfer_summary(key, bus_bytes)


@lru_cache(maxsize=4096)
def _transfer_summary(key, bus_bytes):
    d = dict(key)
    d.update(input_addr=0, weight_addr=0, params_addr=0, output_addr=0, residual_addr=0)
    read = written = count = beats = 0
    for kind, _, length in transfers(d):
        count += 1
        beats += ceil_div(length, bus_bytes)
        if kind == DmaKind.OUTPUT:
            written += length
        else:
            read += length
    return read, written, count, beats


def transfers(d):
    """The exact ``(kind, addr, length)`` sequence of DMA transfers of descriptor ``d``:
    the Tiler's commands, and before each output transfer of a layer with a fused
    residual the residual read the controller issues with it (the same offset from
    ``residual_addr``, the same length)."""
    out = []
    for c in commands(d):
        if c["kind"] == DmaKind.OUTPUT and d.get("residual"):
            out.append((DmaKind.RESIDUAL, c["addr"] - d["output_addr"] + d["residual_addr"], c["length"]))
        out.append((c["kind"], c["addr"], c["length"]))
    return out
