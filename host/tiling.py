"""Golden address model of the Tiler: the exact DMA command sequence of one layer.

``commands(desc)`` walks DESIGN.md section 1's L3 loop nest, in this order::

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

DRAM layouts: input u8 NCHW with row pitch ``in_pitch`` (channel stride
``height * in_pitch``); weights s8 (K, C, R, S) contiguous; params ``PARAM_BYTES`` per
kernel, kernel-major; output u8 NCHW with row pitch ``out_pitch`` (channel stride
``XO * out_pitch``). Padding is produced on chip and never read.

The descriptor layout is :class:`hw.contract.LayerDescriptor` (not redefined here);
``descriptor(...)`` fills defaults and validates, ``pack`` / ``pack_bytes`` give the integer /
little-endian bytes the hardware register block holds.
"""

from hw.contract import PARAM_BYTES, DmaKind, LayerDescriptor, descriptor_layout

__all__ = ["descriptor", "pack", "pack_bytes", "output_size", "commands", "transfers"]

_FIELD_NAMES = [name for name, _ in descriptor_layout()]


def output_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def descriptor(*, input_addr, weight_addr, params_addr, output_addr, channels, height, width,
               kernels, kernel_size=3, stride=1, padding=1, tile_k=None, tile_c=None,
               tile_xo=None, tile_yo=None, in_pitch=None, out_pitch=None):
    """A validated descriptor dict; pitches default to the row widths, tiles to the layer."""
    xo = output_size(height, kernel_size, stride, padding)
    yo = output_size(width, kernel_size, stride, padding)
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
    }
    validate(d)
    return d


def validate(d):
    layout = descriptor_layout()
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
    """Input rows / columns [lo, hi) an output tile needs, clipped to the tensor."""
    s, p, r = d["stride"], d["padding"], d["kernel_size"]
    xi_lo = max(0, x0 * s - p)
    xi_hi = min(d["height"], (x0 + txo - 1) * s - p + r)
    yi_lo = max(0, y0 * s - p)
    yi_hi = min(d["width"], (y0 + tyo - 1) * s - p + r)
    return xi_lo, xi_hi, yi_lo, yi_hi


def commands(d):
    validate(d)
    C, X, Y, K = d["channels"], d["height"], d["width"], d["kernels"]
    R, pitch, opitch = d["kernel_size"], d["in_pitch"], d["out_pitch"]
    RS = R * R
    XO = output_size(X, R, d["stride"], d["padding"])
    YO = output_size(Y, R, d["stride"], d["padding"])
    TK, TC, TXO, TYO = d["tile_k"], d["tile_c"], d["tile_xo"], d["tile_yo"]
    out = []

    def group(kind, items, first_c, last_c):
        for i, (addr, length) in enumerate(items):
            out.append({"kind": kind, "addr": addr, "length": length,
                        "group_last": int(i == len(items) - 1), "first_c": int(first_c),
                        "last_c": int(last_c), "end": 0})

    for k0 in range(0, K, TK):
        tk = min(TK, K - k0)
        for x0 in range(0, XO, TXO):
            txo = min(TXO, XO - x0)
            for y0 in range(0, YO, TYO):
                tyo = min(TYO, YO - y0)
                xi_lo, xi_hi, yi_lo, yi_hi = iact_tile(d, x0, y0, txo, tyo)
                rows, cols = xi_hi - xi_lo, yi_hi - yi_lo
                merge_rows = yi_lo == 0 and yi_hi == Y and pitch == Y
                merge_all = merge_rows and xi_lo == 0 and xi_hi == X
                for c0 in range(0, C, TC):
                    tc = min(TC, C - c0)
                    first_c, last_c = c0 == 0, c0 + TC >= C
                    iact = []
                    if rows > 0 and cols > 0:
                        base = d["input_addr"] + c0 * X * pitch + xi_lo * pitch + yi_lo
                        if merge_all:
                            iact = [(base, tc * X * Y)]
                        elif merge_rows:
                            iact = [(base + c * X * pitch, rows * Y) for c in range(tc)]
                        else:
                            iact = [(base + c * X * pitch + r * pitch, cols)
                                    for c in range(tc) for r in range(rows)]
                    group(DmaKind.IACT, iact, first_c, last_c)
                    wbase = d["weight_addr"] + k0 * C * RS + c0 * RS
                    if tc == C:
                        weights = [(wbase, tk * C * RS)]
                    else:
                        weights = [(wbase + k * C * RS, tc * RS) for k in range(tk)]
                    group(DmaKind.WEIGHT, weights, first_c, last_c)
                    if first_c:
                        group(DmaKind.PARAMS, [(d["params_addr"] + k0 * PARAM_BYTES, tk * PARAM_BYTES)],
                              first_c, last_c)
                    if last_c:
                        obase = d["output_addr"] + k0 * XO * opitch + x0 * opitch + y0
                        orow = y0 == 0 and tyo == YO and opitch == YO
                        oall = orow and x0 == 0 and txo == XO
                        if oall:
                            outs = [(obase, tk * XO * YO)]
                        elif orow:
                            outs = [(obase + k * XO * opitch, txo * YO) for k in range(tk)]
                        else:
                            outs = [(obase + k * XO * opitch + x * opitch, tyo)
                                    for k in range(tk) for x in range(txo)]
                        group(DmaKind.OUTPUT, outs, first_c, last_c)
    out[-1]["end"] = 1
    for c in out:
        if c["length"] >= 1 << 32:
            raise ValueError(f"transfer of {c['length']} bytes does not fit the 32-bit length")
    return out


def transfers(d):
    """The exact ``(kind, addr, length)`` sequence the Tiler issues for descriptor ``d``."""
    return [(c["kind"], c["addr"], c["length"]) for c in commands(d)]
