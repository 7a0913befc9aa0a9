"""L3 tiling planner and the analytic cycle / DRAM-traffic model of a layer.

``model(cfg, desc)`` predicts what the accelerator's performance counters report for a
layer descriptor (``host.golden.tiling.descriptor``):

* DRAM bytes are exact: the sum of the Tiler's transfers (``host.golden.tiling.transfers``) plus
  the 256-byte activation table, computed in closed form per class of equal tiles.
* Cycles: the array consumes one window beat per cycle, a step (one channel tile of one
  output tile) takes ``ceil(tk / KP) * tc * txo * ceil(tyo / YP)`` beats. The next step's
  iAct / weight load overlaps the current step's compute (ping-pong), the output drain of
  a tile overlaps the next tile. The model adds the non-overlapped parts: a fixed start
  (activation table), the first step's load, per step ``max(compute, next load)``, a
  drain that outlasts the next tile, and the last tile's drain. Constants in ``TIMING``
  were fitted to Verilator runs of the generated accelerator (DRAM latency 50 cycles).

``plan(cfg, layer)`` searches L3 tiles ``(T_K, T_C, T_XO, T_YO)`` for the fewest modelled
cycles (DRAM bytes break ties), never exceeding a buffer (``host.golden.schedule.buffer_needs``,
the bound the hardware checks). A layer no tile fits raises
:class:`host.golden.schedule.BufferOverflow` naming the buffer and the size it needs.
"""

from dataclasses import dataclass, field, asdict

from hw.config import AccelConfig
from hw.datapath.line_buffer import word_bytes_for
from hw.contract import PARAM_BYTES, TABLE_BYTES, DmaKind

from host.golden import schedule, tiling
from host.golden.tiling import ceil_div

__all__ = ["ConvShape", "Plan", "model", "plan", "candidates", "exhaustive_plan", "TIMING",
           "layer_bytes", "descriptor_for"]

# Fitted timing constants (cycles; DRAM read latency 50, 16-byte bus).
TIMING = {
    "start": 334.16,          # descriptor checks, activation table load, first request
    "end": 33.65,             # last write response
    "load_latency": 32.62,    # per step: first beat of a step's loads
    "word": 0.99,             # per iAct word written to the streaming buffer
    "bus_bytes_per_cycle": 16 * 0.98,
    "slice": 1.08,            # per 3x3 weight slice written to the stationary buffer
    "param": 2.33,            # per kernel parameter block
    "transfer": 1.62,         # per DMA transfer (command issue, realignment)
    "step": 2.3,             # per step: compute pipeline switch
    "transfer_issue": 4.99,   # per DMA transfer when transfers outpace data (latency / outstanding)
    "out_issue": 0.0,        # per output transfer, delaying the next tile's loads
    "drain_row": 6.01,        # per output transfer (write response latency / outstanding)
    "drain_tail": 15.67,      # requantizer and write pipeline
}


@dataclass(frozen=True)
class ConvShape:
    """A convolution's shape as the accelerator sees it (NCHW, square kernel)."""
    channels: int
    kernels: int
    height: int
    width: int
    kernel_size: int = 3
    stride: int = 1
    padding: int = 1
    name: str = ""

    @property
    def out_height(self):
        return tiling.output_size(self.height, self.kernel_size, self.stride, self.padding)

    @property
    def out_width(self):
        return tiling.output_size(self.width, self.kernel_size, self.stride, self.padding)

    @property
    def macs(self):
        return (self.channels * self.kernels * self.kernel_size ** 2 * self.out_height *
                self.out_width)

    @classmethod
    def from_conv(cls, conv, height, width, name=""):
        """From a :class:`host.golden.quant.QuantConv` and its input size."""
        return cls(conv.in_channels, conv.out_channels, height, width, conv.kernel_size,
                   conv.stride, conv.padding, name)

    @classmethod
    def from_descriptor(cls, d, name=""):
        return cls(d["channels"], d["kernels"], d["height"], d["width"], d["kernel_size"],
                   d["stride"], d["padding"], name)


def descriptor_for(layer, tiles):
    """A descriptor (addresses 0, dense pitches) of ``layer`` with tiles {k, c, xo, yo}."""
    return tiling.descriptor(input_addr=0, weight_addr=0, params_addr=0, output_addr=0,
                             channels=layer.channels, height=layer.height, width=layer.width,
                             kernels=layer.kernels, kernel_size=layer.kernel_size,
                             stride=layer.stride, padding=layer.padding,
                             tile_k=tiles["k"], tile_c=tiles["c"], tile_xo=tiles["xo"],
                             tile_yo=tiles["yo"])


def _axis_classes(size_in, size_out, tile, kernel, stride, padding):
    """Tiles along one output axis grouped by (output size, input extent, starts at 0,
    covers the whole input): {(t, extent, first, whole): count}."""
    out = {}
    for o0 in range(0, size_out, tile):
        t = min(tile, size_out - o0)
        lo = max(0, o0 * stride - padding)
        hi = min(size_in, (o0 + t - 1) * stride - padding + kernel)
        key = (t, hi - lo, lo == 0 and hi == size_in)
        out[key] = out.get(key, 0) + 1
    return out


def _dim_classes(size, tile):
    """{tile size: count} of splitting ``size`` into tiles of ``tile``."""
    full, rem = divmod(size, tile)
    out = {tile: full} if full else {}
    if rem:
        out[rem] = out.get(rem, 0) + 1
    return out


def _bursts(length):
    return ceil_div(length, 4096)


def _parts(cfg, d, timing):
    """Per output-tile class: its count and the cycle/byte terms of its steps."""
    C, K, R = d["channels"], d["kernels"], d["kernel_size"]
    X, Y = d["height"], d["width"]
    XO = tiling.output_size(X, R, d["stride"], d["padding"])
    YO = tiling.output_size(Y, R, d["stride"], d["padding"])
    word = word_bytes_for(cfg.yp)
    dense_in = d["in_pitch"] == Y
    dense_out = d["out_pitch"] == YO
    xs = _axis_classes(X, XO, d["tile_xo"], R, d["stride"], d["padding"])
    ys = _axis_classes(Y, YO, d["tile_yo"], R, d["stride"], d["padding"])
    ks = _dim_classes(K, d["tile_k"])
    cs = _dim_classes(C, d["tile_c"])
    tc_full, tc_rem = d["tile_c"], C % d["tile_c"]
    n_cfull = C // d["tile_c"]
    bus = timing["bus_bytes_per_cycle"]
    tiles = []
    for tk, nk in ks.items():
        for (txo, rows, xall), nx in xs.items():
            for (tyo, cols, yall), ny in ys.items():
                merge_rows = yall and dense_in
                merge_all = merge_rows and xall

                out_n = 1 if (xall and yall and dense_out and txo == XO) else (
                    tk if (yall and dense_out and tyo == YO) else tk * txo)

                def load(tc, first):
                    nbytes = tc * rows * cols
                    words = tc * rows * ceil_div(cols, word)
                    n_iact = 1 if merge_all else tc if merge_rows else tc * rows
                    w_len = tk * C * R * R if tc == C else tc * R * R
                    n_w = 1 if tc == C else tk
                    transfers = n_iact + n_w + _bursts(nbytes) + _bursts(w_len) + (1 if first else 0)
                    serial = max(words * timing["word"], nbytes / bus) + tk * tc * timing["slice"]
                    cyc = (timing["load_latency"] + transfers * timing["transfer"] +
                           max(serial, transfers * timing["transfer_issue"]))
                    if first:
                        # the previous tile's output commands go first in the Tiler's order
                        cyc += tk * timing["param"] + out_n * timing["out_issue"]
                    return cyc

                def compute(tc):
                    return ceil_div(tk, cfg.kp) * tc * txo * ceil_div(tyo, cfg.yp)

                beats = sum(compute(tc) * n for tc, n in cs.items())
                # steps of one tile: c-tiles tc_full x n_cfull, then tc_rem if any
                seq = [tc_full] * n_cfull + ([tc_rem] if tc_rem else [])
                # sum over steps of max(compute(step), load(next step)); the next step of
                # a tile's last step is the next tile's first step (same class assumed)
                body = 0.0
                if len(seq) > 1:
                    body += (n_cfull - 1) * max(compute(tc_full) + timing["step"], load(tc_full, False))
                    if tc_rem:
                        body += max(compute(tc_full) + timing["step"], load(tc_rem, False))
                last = compute(seq[-1]) + timing["step"]
                wrap = max(last, load(seq[0], True))
                drain = max(tk * txo * ceil_div(tyo, cfg.yp), out_n * timing["drain_row"])
                n = nk * nx * ny
                in_bytes = C * rows * cols
                tiles.append({
                    "count": n, "beats": beats, "body": body, "wrap": wrap, "last": last,
                    "first_load": load(seq[0], True), "drain": drain,
                    "read": in_bytes + tk * C * R * R + tk * PARAM_BYTES,
                    "write": tk * txo * tyo,
                })
    return tiles


def model(cfg: AccelConfig, desc, timing=None):
    """Modelled counters of a layer: cycles, DRAM bytes, MACs and utilization."""
    tiling.validate(desc)
    return _model(cfg, desc, TIMING if timing is None else timing)


def _model(cfg, desc, timing):
    parts = _parts(cfg, desc, timing)
    count = sum(p["count"] for p in parts)
    beats = sum(p["beats"] * p["count"] for p in parts)
    body = sum(max(p["body"] + p["wrap"], p["drain"]) * p["count"] for p in parts)
    # the layer's last step has no next load to wait for; its last tile drains at the end
    lastp = parts[-1]
    body -= max(lastp["body"] + lastp["wrap"], lastp["drain"]) - (lastp["body"] + lastp["last"])
    first = parts[0]["first_load"]
    cycles = timing["start"] + first + body + lastp["drain"] + timing["drain_tail"] + timing["end"]
    d = desc
    macs = (d["channels"] * d["kernels"] * d["kernel_size"] ** 2 *
            tiling.output_size(d["height"], d["kernel_size"], d["stride"], d["padding"]) *
            tiling.output_size(d["width"], d["kernel_size"], d["stride"], d["padding"]))
    read = TABLE_BYTES + sum(p["read"] * p["count"] for p in parts)
    write = sum(p["write"] * p["count"] for p in parts)
    cycles = int(round(max(cycles, beats)))
    return {"cycles": cycles, "array_busy_cycles": beats, "dram_read_bytes": read,
            "dram_write_bytes": write, "macs": macs,
            "utilization": macs / (cycles * cfg.macs_per_cycle), "steps": count}


def layer_bytes(desc):
    """DRAM bytes of a layer summed from the Tiler's transfers (the reference for the
    closed form in :func:`model`)."""
    read = TABLE_BYTES
    write = 0
    for kind, _, length in tiling.transfers(desc):
        if kind == DmaKind.OUTPUT:
            write += length
        else:
            read += length
    return read, write


@dataclass
class Plan:
    """The chosen tiles of a layer and the model's prediction for them."""
    layer: ConvShape
    tiles: dict
    cycles: int
    dram_read_bytes: int
    dram_write_bytes: int
    macs: int
    utilization: float
    buffers: dict = field(default_factory=dict)
    searched: int = 0

    def to_dict(self):
        d = asdict(self)
        d["layer"] = asdict(self.layer)
        return d


def _as_shape(layer):
    if isinstance(layer, ConvShape):
        return layer
    if isinstance(layer, dict):
        return ConvShape.from_descriptor(layer)
    raise TypeError(f"layer must be a ConvShape or a descriptor dict, got {type(layer).__name__}")


def _axis_candidates(size, unit=1):
    """Tile sizes along an axis: every size up to 8, and for each tile count n the
    smallest tile giving n tiles and that rounded up to a multiple of ``unit`` (whole
    array groups)."""
    out = set(range(1, min(size, 8) + 1))
    n = 1
    while n <= size:
        t = ceil_div(size, n)
        out.add(t)
        out.add(min(size, ceil_div(t, unit) * unit))
        n = ceil_div(size, t - 1) if t > 1 else size + 1
    return sorted(out)


def _channel_candidates(size):
    """Balanced channel tiles: ``ceil(C / n)`` for n = 1, 2, 3, 4, 6, 8, 12, 16, ... and
    every value once ``C`` is small (the per-step cost is nearly linear in T_C, so
    finer steps change the modelled cycles by little)."""
    if size <= 32:
        return _axis_candidates(size)
    out, n = set(), 1
    while n <= size:
        out.add(ceil_div(size, n))
        n = n * 3 // 2 if n >= 2 and n & (n - 1) == 0 else (n + 1 if n < 2 else n * 4 // 3)
    out.add(1)
    return sorted(out)


def candidates(cfg, layer):
    """The tile values :func:`plan` searches, per axis: {"k", "c", "xo", "yo"}."""
    layer = _as_shape(layer)
    return {"k": _axis_candidates(layer.kernels, cfg.kp),
            "c": _channel_candidates(layer.channels),
            "xo": _axis_candidates(layer.out_height),
            "yo": _axis_candidates(layer.out_width, cfg.yp)}


def _needs(cfg, layer, tk, tc, txo, tyo):
    """``schedule.buffer_needs`` without building a descriptor (same formulas)."""
    word = word_bytes_for(cfg.yp)
    R, S = layer.kernel_size, layer.stride
    rows = min((txo - 1) * S + R, layer.height)
    cols = min((tyo - 1) * S + R, layer.width)
    groups_k = ceil_div(tk, cfg.kp)
    return {
        "line_buffer_depth": cols,
        "max_tile_rows": max(rows, txo),
        "streaming_buffer_depth": tc * rows * ceil_div(cols, word) * word,
        "stationary_buffer_depth": groups_k * cfg.kp * tc,
        "output_buffer_depth": groups_k * txo * ceil_div(tyo, cfg.yp) * cfg.kp * cfg.yp,
    }


def _fits(cfg, needs):
    return all(v <= schedule.buffer_limit(cfg, n) for n, v in needs.items())


def _search(cfg, layer, values, timing=None):
    timing = TIMING if timing is None else timing
    best, best_key, searched = None, None, 0
    base = {"input_addr": 0, "weight_addr": 0, "params_addr": 0, "output_addr": 0,
            "channels": layer.channels, "height": layer.height, "width": layer.width,
            "kernels": layer.kernels, "kernel_size": layer.kernel_size, "stride": layer.stride,
            "padding": layer.padding, "in_pitch": layer.width, "out_pitch": layer.out_width}
    combos = []
    for txo in values["xo"]:
        for tyo in values["yo"]:
            if _needs(cfg, layer, 1, 1, txo, tyo)["line_buffer_depth"] > cfg.line_buffer_depth:
                continue
            for tk in values["k"]:
                if not _fits(cfg, _needs(cfg, layer, tk, 1, txo, tyo)):
                    continue
                # compute beats do not depend on T_C: a lower bound on the cycles
                beats = sum(ceil_div(k, cfg.kp) * n for k, n in _dim_classes(layer.kernels, tk).items()) * \
                    sum(t * n for t, n in _dim_classes(layer.out_height, txo).items()) * \
                    sum(ceil_div(t, cfg.yp) * n for t, n in _dim_classes(layer.out_width, tyo).items()) * \
                    layer.channels
                combos.append((beats, txo, tyo, tk))
    combos.sort()
    for beats, txo, tyo, tk in combos:
        if best_key is not None and beats + timing["start"] > best_key[0]:
            break
        for tc in values["c"]:
            needs = _needs(cfg, layer, tk, tc, txo, tyo)
            if not _fits(cfg, needs):
                continue
            searched += 1
            tiles = {"k": tk, "c": tc, "xo": txo, "yo": tyo}
            d = dict(base, tile_k=tk, tile_c=tc, tile_xo=txo, tile_yo=tyo)
            m = _model(cfg, d, timing)
            key = (m["cycles"], m["dram_read_bytes"] + m["dram_write_bytes"], -tk, -tc, -txo, -tyo)
            if best_key is None or key < best_key:
                best, best_key = (tiles, m, needs), key
    return best, searched


def _overflow(cfg, layer):
    """The BufferOverflow of the smallest tile (1, 1, 1, 1) or of the line buffer."""
    desc = descriptor_for(layer, {"k": 1, "c": 1, "xo": 1, "yo": 1})
    schedule.check_fits(cfg, desc)
    # the smallest tile fits, so no searched tile did: impossible unless values are empty
    raise schedule.BufferOverflow(f"no tile of layer {layer} fits the configuration")


def _make_plan(cfg, layer, best, searched):
    tiles, m, needs = best
    return Plan(layer=layer, tiles=tiles, cycles=m["cycles"], dram_read_bytes=m["dram_read_bytes"],
                dram_write_bytes=m["dram_write_bytes"], macs=m["macs"],
                utilization=m["utilization"], buffers=needs, searched=searched)


def _coarse(values, ratio=1.5):
    """Values spaced by at least ``ratio`` from the largest down, plus the smallest."""
    kept = [values[-1]]
    for v in reversed(values[:-1]):
        if v * ratio <= kept[-1]:
            kept.append(v)
    return sorted(set(kept) | {values[0]})


def plan(cfg: AccelConfig, layer, coarse=False):
    """Tiles of ``layer`` (ConvShape or descriptor dict) with the fewest modelled cycles.

    Searches :func:`candidates`; raises :class:`host.golden.schedule.BufferOverflow` if no tile
    fits (the message names the buffer and the size the smallest tile needs).
    ``coarse`` searches values spaced by 1.5x per axis (for design-space exploration)."""
    layer = _as_shape(layer)
    values = candidates(cfg, layer)
    if coarse:   # design-space exploration: fewer tile values per axis
        values = {n: _coarse(v) for n, v in values.items()}
    best, searched = _search(cfg, layer, values)
    if best is None:
        _overflow(cfg, layer)
    return _make_plan(cfg, layer, best, searched)


def exhaustive_plan(cfg: AccelConfig, layer):
    """:func:`plan` over every integer tile (reference for small layers)."""
    layer = _as_shape(layer)
    values = {"k": range(1, layer.kernels + 1), "c": range(1, layer.channels + 1),
              "xo": range(1, layer.out_height + 1), "yo": range(1, layer.out_width + 1)}
    best, searched = _search(cfg, layer, values)
    if best is None:
        _overflow(cfg, layer)
    return _make_plan(cfg, layer, best, searched)
