"""L3 tiling planner and the analytic cycle / DRAM-traffic model of a layer.

``model(cfg, desc)`` predicts what the accelerator's performance counters report for a
layer descriptor (``host.golden.tiling.descriptor``), in closed form per class of equal
output tiles:

* Exact: DRAM bytes (plus the 256-byte activation table), DMA transfers (merged as
  ``host.golden.tiling.commands`` merges them) and array-busy cycles. What a step moves
  and computes is read off the compute core's commands for it
  (``host.golden.schedule.step_commands``): 3x3 windows from the line buffer; 1x1
  windows of nine channels per DPE (``ceil(T_C / 9)`` channel blocks), a flat step
  (``tiling.flat_tiles``) running its pixels as one row; depthwise 3x3 windows of KP
  channels at once; a Linear layer is a 1x1 on a 1 x N image.
* Cycles: a step computes for the larger of its array beats and the streaming-buffer
  words it replays. A load takes its transfers in DRAM order (iAct tile, weights,
  params), each kind as slow as its bus bytes, its buffer words or beats (one per
  cycle), or the issue of its bursts when short transfers are bound by the DRAM latency
  over the reader's outstanding bursts; so a Linear layer at batch 1 is bound by its
  weight bytes on the bus. The next step's load overlaps the current step's compute
  (ping-pong halves); a tile's drain (``drain_words`` words of YP outputs of a row per
  cycle, its output bytes on the bus, or its output transfers' issue) overlaps the next tile. The model adds a fixed part, the
  first load, per step ``max(compute, next load)``, per tile the larger of that and the
  drain (with the output buffer's hand-over between halves) and the last drain. A fused
  residual addition (``ConvShape.residual``) reads each output transfer's bytes beside
  it: its bytes and transfers are counted exactly, its bus cycles delay the next tile's
  first load (``residual_bus``), and ``ResidualAdd``'s pipeline adds its latency once. The
  constants in ``TIMING`` are fitted to the RTL (``bench/model_validation.py``, which
  also checks the model on held-out layers).

``plan(cfg, layer)`` searches L3 tiles ``(T_K, T_C, T_XO, T_YO)`` for the fewest modelled
cycles (DRAM bytes break ties) among those the descriptor accepts (a 1x1 layer's T_C
whole channel blocks or all C, a depthwise layer's T_C its T_K; a fused addition's
output tiles whole rows wherever one fits, so that each residual read is a whole
row block: many short residual reads cost more than the model counts), never exceeding a buffer
(``host.golden.schedule.buffer_needs``, the bound the hardware checks); a lower bound on
the model's cycles rules out most of them unmodelled (``_search``). A layer no tile fits
raises :class:`host.golden.schedule.BufferOverflow` naming the buffer and the size it
needs.
"""

import heapq
from dataclasses import dataclass, field, asdict
from functools import lru_cache

from hw.config import CHANNEL_BLOCK, AccelConfig, word_bytes_for
from hw.contract import TABLE_BYTES, DmaKind
from hw.datapath.residual_add import ResidualAdd

from host.golden import schedule, tiling
from host.golden.tiling import ceil_div

__all__ = ["ConvShape", "Plan", "model", "plan", "layer_tiles", "candidates", "exhaustive_plan", "TIMING",
           "layer_bytes", "descriptor_for", "min_array_beats"]

# Fitted timing constants, in cycles, for a DRAM read latency of 50 cycles
# (bench/model_validation.py --fit). The data rates are the hardware's: a bus word, a
# streaming-buffer row word and a stationary-buffer beat per cycle.
TIMING = {
    "fixed": 455.008,     # per layer: checks, activation table, first load latency, last write
    "read_slot": 52.863,   # a read burst holds one of the reader's outstanding slots
    "write_slot": 58.092,  # an output transfer holds one of the writer's outstanding slots
    "step": 4.313,        # per step: the compute pipeline's switch
    "drain_tile": 5.74,  # per output tile: hand-over from accumulation to drain and back
    "residual_bus": 0.991,  # share of a fused addition's residual bus cycles the next tile's first load waits
}


@dataclass(frozen=True)
class ConvShape:
    """A convolution's shape as the accelerator sees it (NCHW, square kernel). A
    ``depthwise`` layer (3x3, channels == kernels) convolves each channel with its own
    kernel; its tiles have ``T_C == T_K``. A ``residual`` layer adds a residual tensor
    to its output (a fused addition: its bytes read beside each output transfer)."""
    channels: int
    kernels: int
    height: int
    width: int
    kernel_size: int = 3
    stride: int = 1
    padding: int = 1
    name: str = ""
    depthwise: bool = False
    residual: bool = False

    @property
    def out_height(self):
        return tiling.output_size(self.height, self.kernel_size, self.stride, self.padding)

    @property
    def out_width(self):
        return tiling.output_size(self.width, self.kernel_size, self.stride, self.padding)

    @property
    def macs(self):
        per_kernel = 1 if self.depthwise else self.channels
        return per_kernel * self.kernels * self.kernel_size ** 2 * self.out_height * self.out_width

    @classmethod
    def from_conv(cls, conv, height, width, name="", residual=False):
        """From a :class:`host.golden.quant.QuantConv` (groups 1, or depthwise) and its
        input size."""
        return cls(conv.in_channels, conv.out_channels, height, width, conv.kernel_size,
                   conv.stride, conv.padding, name, bool(conv.depthwise), residual)

    @classmethod
    def from_descriptor(cls, d, name=""):
        return cls(d["channels"], d["kernels"], d["height"], d["width"], d["kernel_size"],
                   d["stride"], d["padding"], name, bool(d.get("depthwise", 0)),
                   bool(d.get("residual", 0)))


def descriptor_for(layer, tiles):
    """A descriptor (addresses 0, dense pitches) of ``layer`` with tiles {k, c, xo, yo}
    (a depthwise layer's ``c`` is its ``k``; a residual layer's addition parameters 0)."""
    residual = dict.fromkeys(("addr", "ma", "mb", "shift", "za", "zb", "zo", "lo"), 0) if layer.residual else None
    return tiling.descriptor(input_addr=0, weight_addr=0, params_addr=0, output_addr=0,
                             channels=layer.channels, height=layer.height, width=layer.width,
                             kernels=layer.kernels, kernel_size=layer.kernel_size,
                             stride=layer.stride, padding=layer.padding,
                             tile_k=tiles["k"], tile_c=tiles["k"] if layer.depthwise else tiles["c"],
                             tile_xo=tiles["xo"], tile_yo=tiles["yo"],
                             depthwise=int(layer.depthwise), residual=residual)


@lru_cache(maxsize=4096)
def _axis_classes(size_in, size_out, tile, kernel, stride, padding):
    """Output tiles along one axis grouped by (output size, input extent, spans the whole
    input): {(t, extent, whole): count}. Extents are ``tiling.iact_tile``'s."""
    d = {"stride": stride, "padding": padding, "kernel_size": kernel,
         "height": size_in, "width": size_in}
    out = {}
    for o0 in range(0, size_out, tile):
        t = min(tile, size_out - o0)
        lo, hi, _, _ = tiling.iact_tile(d, o0, o0, t, t)
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


def _step_work(cfg, d, memo, flat, tk, tc, txo, tyo, rows, cols, first_c=True, last_c=True):
    """What one step of ``d`` moves and computes, read off the compute core's commands of
    a step of these sizes (``schedule.step_commands``): array beats, output-buffer drain
    beats (``drain_words`` words of a row per beat), iAct bytes and streaming-buffer row
    words, weight bytes and stationary-buffer beats (the weight repacker's ``KP x
    9``-byte words), params and output bytes.
    ``memo``: a dict of earlier answers for the same layer; ``flat``:
    ``tiling.flat_tiles(d)``."""
    key = (tk, tc, txo, tyo, rows, cols, first_c, last_c, flat)
    work = memo.get(key)
    if work is not None:
        return work
    st = tiling.Step(k0=0, x0=0, y0=0, c0=0, tk=tk, tc=tc, txo=txo, tyo=tyo, xi_lo=0, yi_lo=0,
                     rows_in=rows, cols_in=cols, pad_top=0, pad_left=0, first_c=first_c,
                     last_c=last_c, blocks=ceil_div(tc, CHANNEL_BLOCK), flat=flat)
    cmds = schedule.step_commands(cfg, d, st, 0)
    word = word_bytes_for(cfg.yp)
    out, iact, weights = cmds["out_cmd"], cmds["iact_rows"], cmds["weight_rows"]
    params = cmds.get("params_rows", {"rows": 0, "row_bytes": 0})
    replay = cmds["iact_replay"]
    replay_pass = (replay["blocks"] * replay["rows"] * replay["row_words"] if replay["pointwise"]
                   else replay["words"])
    work = memo[key] = {
        "beats": out["kernel_groups"] * out["channels"] * out["out_rows"] * out["groups"],
        "replay_words": replay_pass * replay["replays"],
        "drain": out["kernels"] * out["out_rows"] * ceil_div(out["groups"], cfg.drain_words),
        "iact_bytes": iact["rows"] * iact["row_bytes"],
        "iact_words": cmds["iact_load"]["words"],
        "row_word_bytes": min(iact["row_bytes"], word),
        "weight_bytes": weights["rows"] * weights["row_bytes"],
        "weight_beats": weights["rows"] * ceil_div(weights["row_bytes"], CHANNEL_BLOCK * cfg.kp),
        "params_bytes": params["rows"] * params["row_bytes"],
        "out_bytes": out["kernels"] * out["out_rows"] * out["out_cols"],
    }
    return work


def _array_beats(cfg, d, memo):
    """Array beats of layer ``d``: the sum of its steps' beats, which depend on the
    steps' tile sizes only (so one step of each size at the origin stands for all)."""
    XO = tiling.output_size(d["height"], d["kernel_size"], d["stride"], d["padding"])
    YO = tiling.output_size(d["width"], d["kernel_size"], d["stride"], d["padding"])
    flat = tiling.flat_tiles(d)
    total = 0
    for tk, nk in _dim_classes(d["kernels"], d["tile_k"]).items():
        for txo, nx in _dim_classes(XO, d["tile_xo"]).items():
            for tyo, ny in _dim_classes(YO, d["tile_yo"]).items():
                lo, hi, left, right = tiling.iact_tile(d, 0, 0, txo, tyo)
                channels = {tk: 1} if d["depthwise"] else _dim_classes(d["channels"], d["tile_c"])
                for tc, nc in channels.items():
                    work = _step_work(cfg, d, memo, flat, tk, tc, txo, tyo, hi - lo, right - left)
                    total += nk * nx * ny * nc * work["beats"]
    return total


def _channel_runs(channels, tile_c):
    """The channel tiles of one output tile as runs of equal steps:
    ``[(tc, first_c, last_c, count)]`` in loop order (a depthwise tile: ``tile_c`` is
    its ``T_K``, one step)."""
    n = ceil_div(channels, tile_c)
    last_tc = channels - (n - 1) * tile_c
    runs = [(min(tile_c, channels), True, n == 1, 1)]
    if n > 2:
        runs.append((tile_c, False, False, n - 2))
    if n > 1:
        runs.append((last_tc, False, True, 1))
    return runs


def min_array_beats(cfg, layer):
    """Array beats of ``layer`` run as one tile: no tiling takes fewer (ceilings of sums
    are at most sums of ceilings), so a lower bound on its cycles under ``cfg``."""
    layer = _as_shape(layer)
    whole = {"k": layer.kernels, "c": layer.channels, "xo": layer.out_height, "yo": layer.out_width}
    return _array_beats(cfg, descriptor_for(layer, whole), {})


def _reads(d, tk, tc, rows, merge_rows, merge_all):
    """iAct and weight transfers of one step of ``d`` (``tk`` kernels, ``tc`` channels,
    ``rows`` input rows), merged as ``host.golden.tiling.commands`` merges them: an iAct
    tile of whole rows (``merge_rows``) as one transfer per channel, or of the whole
    image (``merge_all``) as one."""
    n_iact = 1 if merge_all else tc if merge_rows else tc * rows
    if d["depthwise"]:
        n_weight = 1
    elif d["kernel_size"] == 1:
        n_weight = 1 if tk == d["kernels"] else ceil_div(tc, CHANNEL_BLOCK)
    else:
        n_weight = 1 if tk == d["kernels"] else tc
    return n_iact, n_weight


def _load(cfg, timing, w, n_iact, n_weight, first_c):
    """Cycles of the load of a step that does ``w`` (:func:`_step_work`) in ``n_iact`` iAct
    and ``n_weight`` weight transfers: its transfers in DRAM order (the iAct tile, the
    weights, the params of a first channel tile), each kind as slow as its bus bytes, its
    words or beats into the buffer, or its bursts' issue (DRAM latency over the outstanding
    reads). The iAct repacker still holds a row word and the last transfer's last beat as
    the weights pass."""
    bus, word = cfg.axi_data_width // 8, word_bytes_for(cfg.yp)
    issue = timing["read_slot"] / cfg.max_outstanding_reads
    last_beat = (w["iact_bytes"] // n_iact - 1) % bus + 1
    held = (word + last_beat) // w["row_word_bytes"]
    iact = max(w["iact_words"] - held, w["iact_bytes"] / bus,
               max(n_iact, _bursts(w["iact_bytes"])) * issue)
    weights = max(w["weight_beats"], w["weight_bytes"] / bus,
                  max(n_weight, _bursts(w["weight_bytes"])) * issue)
    params = max(w["params_bytes"] / bus, issue) if first_c else 0
    return max(w["iact_words"], iact + weights) + params


def _parts(cfg, d, timing, memo):
    """Per output-tile class: its count and the cycle / byte / transfer terms of its steps."""
    C, K, R, S, P = d["channels"], d["kernels"], d["kernel_size"], d["stride"], d["padding"]
    X, Y = d["height"], d["width"]
    XO, YO = tiling.output_size(X, R, S, P), tiling.output_size(Y, R, S, P)
    dense_in, dense_out = d["in_pitch"] == Y, d["out_pitch"] == YO
    flat = tiling.flat_tiles(d)
    xs = _axis_classes(X, XO, d["tile_xo"], R, S, P)
    ys = _axis_classes(Y, YO, d["tile_yo"], R, S, P)
    depthwise = d["depthwise"]
    residual = bool(d.get("residual"))
    bus = cfg.axi_data_width // 8
    write_issue = timing["write_slot"] / cfg.max_outstanding_writes
    tiles = []
    for tk, nk in _dim_classes(K, d["tile_k"]).items():
        runs = _channel_runs(tk, tk) if depthwise else _channel_runs(C, d["tile_c"])
        for (txo, rows, xall), nx in xs.items():
            for (tyo, cols, yall), ny in ys.items():
                # transfers, merged as host.golden.tiling.commands merges them
                merge_rows = yall and dense_in
                merge_all = merge_rows and xall
                out_rows_whole = dense_out and tyo == YO
                out_n = (1 if txo == XO else tk) if out_rows_whole else tk * txo
                steps = []
                for tc, first_c, last_c, count in runs:
                    w = _step_work(cfg, d, memo, flat, tk, tc, txo, tyo, rows, cols, first_c, last_c)
                    n_iact, n_weight = _reads(d, tk, tc, rows, merge_rows, merge_all)
                    n_reads = n_iact + n_weight + (1 if first_c else 0)
                    load = _load(cfg, timing, w, n_iact, n_weight, first_c)
                    compute = max(w["beats"], w["replay_words"]) + timing["step"]
                    steps.append((w, compute, load, n_reads, count))
                # per step max(compute, load of the next step); the next step of a tile's
                # last step is the next tile's first (of the same class, as modelled)
                body = 0.0
                for i, (_, compute, load, _, count) in enumerate(steps[:-1]):
                    body += (count - 1) * max(compute, load) + max(compute, steps[i + 1][2])
                last_w, last_compute = steps[-1][0], steps[-1][1]
                read = sum((w["iact_bytes"] + w["weight_bytes"] + w["params_bytes"]) * n
                           for w, _, _, _, n in steps)
                # a fused addition reads the tile's output bytes beside its output transfers,
                # in the read stream between the tile's last load and the next tile's first
                res_bytes, res_n = (last_w["out_bytes"], out_n) if residual else (0, 0)
                res_bus = timing["residual_bus"] * res_bytes / bus
                tiles.append({
                    "count": nk * nx * ny, "body": body,
                    "wrap": max(last_compute, steps[0][2] + res_bus), "last": last_compute,
                    "first_load": steps[0][2],
                    "drain": max(last_w["drain"], out_n * write_issue, last_w["out_bytes"] / bus),
                    "drain_beats": last_w["drain"],
                    "beats": sum(w["beats"] * n for w, _, _, _, n in steps),
                    "read": read + res_bytes,
                    "write": last_w["out_bytes"],
                    "transfers": sum(reads * n for _, _, _, reads, n in steps) + out_n + res_n,
                })
    return tiles


def _tile_cycles(part, compute, timing):
    """Cycles of one output tile of ``part`` whose steps take ``compute``: the output
    buffer's two halves let a tile accumulate while the previous one drains (at one beat
    per cycle, or as fast as its output transfers are written), and a tile waits for the
    drain of the tile before the previous one, plus the hand-over between them."""
    return max(compute, part["drain"], (compute + part["drain_beats"] + timing["drain_tile"]) / 2)


def model(cfg: AccelConfig, desc, timing=None):
    """Modelled counters of a layer: cycles, DRAM bytes and transfers, MACs, utilization."""
    tiling.validate(desc)
    return _model(cfg, desc, TIMING if timing is None else timing, {})


def _model(cfg, desc, timing, memo):
    parts = _parts(cfg, desc, timing, memo)
    tiles = sum(p["count"] for p in parts)
    beats = sum(p["beats"] * p["count"] for p in parts)
    body = sum(_tile_cycles(p, p["body"] + p["wrap"], timing) * p["count"] for p in parts)
    # the layer's last step has no next load to wait for; its last tile drains at the end
    lastp = parts[-1]
    body -= (_tile_cycles(lastp, lastp["body"] + lastp["wrap"], timing) -
             (lastp["body"] + lastp["last"]))
    first = parts[0]["first_load"]
    cycles = timing["fixed"] + first + body + lastp["drain"]
    if desc.get("residual"):        # the addition's pipeline on the last output beat
        cycles += ResidualAdd.LATENCY
    macs = _as_shape(desc).macs
    read = TABLE_BYTES + sum(p["read"] * p["count"] for p in parts)
    write = sum(p["write"] * p["count"] for p in parts)
    cycles = int(round(max(cycles, beats)))
    return {"cycles": cycles, "array_busy_cycles": beats, "dram_read_bytes": read,
            "dram_write_bytes": write, "dma_transfers": sum(p["transfers"] * p["count"] for p in parts),
            "macs": macs, "utilization": macs / (cycles * cfg.macs_per_cycle), "output_tiles": tiles,
            "steps": tiles * (1 if desc["depthwise"] else ceil_div(desc["channels"], desc["tile_c"])),
            }


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
    smallest tile giving n tiles and that rounded up and down to a multiple of ``unit``
    (whole array groups)."""
    out = set(range(1, min(size, 8) + 1))
    n = 1
    while n <= size:
        t = ceil_div(size, n)
        out.add(t)
        out.add(min(size, ceil_div(t, unit) * unit))
        out.add(max(1, t // unit * unit))
        n = ceil_div(size, t - 1) if t > 1 else size + 1
    return sorted(out)


def _balanced_tiles(size):
    """``ceil(size / n)`` for n = 1, 2, 3, 4, 6, 8, 12, 16, ... down to 1."""
    out, n = set(), 1
    while n <= size:
        out.add(ceil_div(size, n))
        n = n * 3 // 2 if n >= 2 and n & (n - 1) == 0 else (n + 1 if n < 2 else n * 4 // 3)
    out.add(1)
    return sorted(out)


def _channel_candidates(size, kernel_size):
    """Channel tiles. 3x3: balanced tiles ``ceil(C / n)``, every value once ``C`` is
    small (the per-step cost is nearly linear in T_C, so finer steps change the modelled
    cycles by little). 1x1: whole channel blocks, the same balanced choice over the
    ``ceil(C / 9)`` blocks, and ``C`` itself (the tiles ``tiling.validate`` accepts)."""
    if kernel_size == 1:
        blocks = ceil_div(size, CHANNEL_BLOCK)
        values = _axis_candidates(blocks) if blocks <= 32 else _balanced_tiles(blocks)
        return sorted({min(size, b * CHANNEL_BLOCK) for b in values})
    return _axis_candidates(size) if size <= 32 else _balanced_tiles(size)


def candidates(cfg, layer):
    """The tile values :func:`plan` searches, per axis: {"k", "c", "xo", "yo"} (a
    depthwise layer's ``c`` are its ``k``)."""
    layer = _as_shape(layer)
    k = _axis_candidates(layer.kernels, cfg.kp)
    if layer.depthwise:         # whole groups of depthwise lanes, at most max_depthwise_tile_k
        limit = min(layer.kernels, cfg.max_depthwise_tile_k)
        k = sorted({t for t in _axis_candidates(layer.kernels, cfg.depthwise_lanes) if t <= limit} | {limit})
    c = k if layer.depthwise else _channel_candidates(layer.channels, layer.kernel_size)
    return {"k": k, "c": c, "xo": _axis_candidates(layer.out_height),
            "yo": _axis_candidates(layer.out_width, cfg.yp)}


def _bound_classes(cfg, d, timing, memo):
    """The output-tile classes of ``d`` (``_parts``' classes, in its order), each with the
    terms of :func:`_cycles_bound` read off one step that does the whole output tile (its
    T_K kernels and all C channels; a depthwise tile its T_K channels): ``(count, tk, txo,
    tyo, rows, cols, merge_rows, merge_all, compute, iAct bus cycles, iAct bursts, iAct
    words, weight cycles, weight bursts, params)``.

    Every quantity of a step (``_step_work``: beats, replayed words, iAct bytes and words,
    weight bytes and beats, params bytes) is a sum of ceilings of non-negative multiples of
    its kernels, channels or channel blocks, or does not depend on them (an iAct tile is
    read once per kernel tile), so steps that split the tile's kernels or channels
    together do at least as much as that one step (ceilings of sums are at most sums of
    ceilings)."""
    C, K, R, S, P = d["channels"], d["kernels"], d["kernel_size"], d["stride"], d["padding"]
    X, Y = d["height"], d["width"]
    XO, YO = tiling.output_size(X, R, S, P), tiling.output_size(Y, R, S, P)
    dense_in = d["in_pitch"] == Y
    flat = tiling.flat_tiles(d)
    bus = cfg.axi_data_width // 8
    issue = timing["read_slot"] / cfg.max_outstanding_reads
    xs = _axis_classes(X, XO, d["tile_xo"], R, S, P)
    ys = _axis_classes(Y, YO, d["tile_yo"], R, S, P)
    out = []
    for tk, nk in _dim_classes(K, d["tile_k"]).items():
        tc = tk if d["depthwise"] else C
        for (txo, rows, xall), nx in xs.items():
            for (tyo, cols, yall), ny in ys.items():
                w = _step_work(cfg, d, memo, flat, tk, tc, txo, tyo, rows, cols)
                merge_rows = yall and dense_in
                out.append((nk * nx * ny, tk, txo, tyo, rows, cols, merge_rows, merge_rows and xall,
                            max(w["beats"], w["replay_words"]), w["iact_bytes"] / bus,
                            _bursts(w["iact_bytes"]), w["iact_words"],
                            max(w["weight_beats"], w["weight_bytes"] / bus),
                            _bursts(w["weight_bytes"]), max(w["params_bytes"] / bus, issue)))
    return out


def _cycles_bound(cfg, d, classes, tc, timing):
    """A lower bound on ``_model``'s cycles (before rounding) of ``d`` with channel tile
    ``tc`` (``classes``: :func:`_bound_classes` of ``d``); with ``d``'s kernel tile all K
    kernels, or ``tc`` all C channels, also of every smaller kernel or channel tile.

    ``_model`` takes per output tile ``body + wrap``, the sum over its steps of
    ``max(compute, next load)`` (the last step's next load is the tile's first): at least
    the sum of their computes and the sum of their loads. The layer's last tile takes at
    least its computes; the first load and the last drain come on top (:func:`_ends`). A
    step computes for at least its beats or replayed words plus the switch; a load takes
    at least its iAct words, or its iAct and weight terms (each at least its bus bytes and
    its transfers' or bursts' issue) plus the first channel tile's params. Summed over a
    tile's steps, these are at least those of the one step of ``classes`` with the tile's
    count of steps and transfers, which are fewest with ``tc`` = C."""
    runs = _channel_runs(d["channels"], tc)
    issue = timing["read_slot"] / cfg.max_outstanding_reads
    total = compute = tile = 0.0
    for (count, tk, _, _, rows, _, merge_rows, merge_all, work, iact_bus, iact_bursts, words,
         weights, weight_bursts, params) in classes:
        n_steps = n_iact = n_weight = 0
        for rtc, _, _, n in (_channel_runs(tk, tk) if d["depthwise"] else runs):
            i, w = _reads(d, tk, rtc, rows, merge_rows, merge_all)
            n_steps += n
            n_iact += i * n
            n_weight += w * n
        compute = work + n_steps * timing["step"]
        load = max(words, max(iact_bus, max(n_iact, iact_bursts) * issue) +
                   max(weights, max(n_weight, weight_bursts) * issue)) + params
        tile = max(compute, load)
        total += count * tile
    return timing["fixed"] + total - tile + compute


def _ends(cfg, d, timing, memo, classes):
    """What ``_model`` adds to the tiles of ``d`` (``classes``: its
    :func:`_bound_classes`): the load of the first step, and at least the drain of the
    last (its drain beats)."""
    flat = tiling.flat_tiles(d)

    def step(cls, i):       # the i-th step of an output tile of class cls
        _, tk, txo, tyo, rows, cols, merge_rows, merge_all = cls[:8]
        tile_c = tk if d["depthwise"] else d["tile_c"]
        tc, first_c, last_c, _ = _channel_runs(tk if d["depthwise"] else d["channels"], tile_c)[i]
        w = _step_work(cfg, d, memo, flat, tk, tc, txo, tyo, rows, cols, first_c, last_c)
        return w, _reads(d, tk, tc, rows, merge_rows, merge_all), first_c
    w, (n_iact, n_weight), first_c = step(classes[0], 0)
    return _load(cfg, timing, w, n_iact, n_weight, first_c) + step(classes[-1], -1)[0]["drain"]


def _search(cfg, layer, values, timing=None):
    """The tiles among ``values`` (per axis) with the fewest modelled cycles, DRAM bytes
    breaking ties (then the larger tiles): ``((tiles, model, buffer needs), searched)``,
    or ``(None, 0)`` if none fits; ``searched`` counts the tiles modelled.

    A best-first branch and bound. Its nodes are output tiles ``(T_XO, T_YO)``, bounded
    by :func:`_cycles_bound` with one kernel tile of all K kernels and all C channels;
    their kernel tiles, bounded with all C channels; their channel tiles; and the same
    with :func:`_ends` added. Each bound holds for every tile below its node, so stopping
    at the first node whose bound exceeds the best cycles by more than a cycle (the
    rounding) leaves out only tiles with more cycles: the result is the best of all tiles
    of ``values`` that fit the buffers, as modelling each of them would find (for timing
    constants >= 0)."""
    timing = TIMING if timing is None else timing
    best, best_key, searched = None, None, 0
    K, C, depthwise = layer.kernels, layer.channels, layer.depthwise
    base = descriptor_for(layer, {"k": K, "c": C, "xo": 1, "yo": 1})
    memo, limits, bounds = {}, {}, {}

    def fits(d):
        """``d``'s buffer needs if they fit the buffers, else None."""
        needs = schedule.buffer_needs(cfg, d)
        for name, value in needs.items():
            limit = limits.get(name)
            if limit is None:
                limit = limits[name] = schedule.buffer_limit(cfg, name)
            if value > limit:
                return None
        return needs

    def channel_tiles(tk):      # a depthwise tile's channels are its kernels
        return [tk] if depthwise else values["c"]

    def tiles(tk, tc, txo, tyo):
        return dict(base, tile_k=tk, tile_c=tk if depthwise else tc, tile_xo=txo, tile_yo=tyo)

    def bound(tk, tc, txo, tyo):
        """:func:`_cycles_bound` of kernel tile ``tk`` with channel tile ``tc``."""
        d = tiles(tk, C, txo, tyo)
        classes = bounds.get((tk, txo, tyo))
        if classes is None:
            classes = bounds[tk, txo, tyo] = _bound_classes(cfg, d, timing, memo)
        return _cycles_bound(cfg, d, classes, tc, timing)

    # nodes: (bound, level, T_XO, T_YO, T_K, T_C); level 0: output tile, 1: kernel tile,
    # 2: channel tile, 3: channel tile with its first load and last drain
    heap = []
    for txo in values["xo"]:
        for tyo in values["yo"]:
            if fits(tiles(1, min(channel_tiles(1)), txo, tyo)):  # else no larger tile fits
                heap.append((bound(K, C, txo, tyo), 0, txo, tyo, K, C))
    heapq.heapify(heap)
    while heap:
        node = heapq.heappop(heap)
        if best_key is not None and node[0] > best_key[0] + 1:
            break
        _, level, txo, tyo, tk, tc = node
        if level == 0:
            for tk in values["k"]:
                if fits(tiles(tk, min(channel_tiles(tk)), txo, tyo)):
                    heapq.heappush(heap, (bound(tk, C, txo, tyo), 1, txo, tyo, tk, C))
        elif level == 1:
            for tc in channel_tiles(tk):
                heapq.heappush(heap, (bound(tk, tc, txo, tyo), 2, txo, tyo, tk, tc))
        elif level == 2:
            ends = _ends(cfg, tiles(tk, tc, txo, tyo), timing, memo, bounds[tk, txo, tyo])
            heapq.heappush(heap, (node[0] + ends, 3, txo, tyo, tk, tc))
        else:
            d = tiles(tk, tc, txo, tyo)
            needs = fits(d)
            if needs is None:
                continue
            searched += 1
            m = _model(cfg, d, timing, memo)
            key = (m["cycles"], m["dram_read_bytes"] + m["dram_write_bytes"], -tk, -tc, -txo, -tyo)
            if best_key is None or key < best_key:
                best, best_key = ({"k": tk, "c": tc, "xo": txo, "yo": tyo}, m, needs), key
    return best, searched


def _overflow(cfg, layer):
    """The BufferOverflow of the smallest tile (1, smallest channel tile, 1, 1)."""
    c = min(_channel_candidates(layer.channels, layer.kernel_size))
    desc = descriptor_for(layer, {"k": 1, "c": c, "xo": 1, "yo": 1})
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
    best, searched = _search_layer(cfg, layer, values)
    if best is None:
        _overflow(cfg, layer)
    return _make_plan(cfg, layer, best, searched)


def _search_layer(cfg, layer, values):
    """:func:`_search`; a fused addition's tiles first with whole output rows."""
    if layer.residual and layer.out_width in values["yo"]:
        best, searched = _search(cfg, layer, {**values, "yo": [layer.out_width]})
        if best is not None:
            return best, searched
    return _search(cfg, layer, values)


def _valid_channel_tile(layer, tc):
    try:
        descriptor_for(layer, {"k": 1, "c": tc, "xo": 1, "yo": 1})
    except ValueError:
        return False
    return True


def exhaustive_plan(cfg: AccelConfig, layer):
    """:func:`plan` over every integer tile the descriptor accepts (reference for small
    layers)."""
    layer = _as_shape(layer)
    values = {"k": range(1, layer.kernels + 1),
              "c": [tc for tc in range(1, layer.channels + 1) if _valid_channel_tile(layer, tc)],
              "xo": range(1, layer.out_height + 1), "yo": list(range(1, layer.out_width + 1))}
    best, searched = _search_layer(cfg, layer, values)
    if best is None:
        _overflow(cfg, layer)
    return _make_plan(cfg, layer, best, searched)


def layer_tiles(cfg: AccelConfig, conv, height, width, residual=False):
    """The planned tiles ``{k, c, xo, yo}`` of a :class:`host.golden.quant.QuantConv` (groups 1,
    or depthwise) on a ``height`` x ``width`` input (``residual``: with a fused addition),
    for the single-layer drivers (``host.runtime.driver.prepare_layer``, ``run_conv``)."""
    return dict(plan(cfg, ConvShape.from_conv(conv, height, width, residual=residual)).tiles)
