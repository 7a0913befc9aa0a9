"""Random layers through the simulated RTL, checked bit for bit against the golden model
and against PyTorch.

Each case is a random quint8 convolution built as a real PyTorch quantized module
(``torch.ao.nn.quantized.Conv2d`` or ``ConvReLU2d``, engine qnnpack): random C, K, H, W,
kernel 1 or 3 (a fifth of the 3x3 ones depthwise), stride 1 or 2, padding 0 .. kernel - 1,
input zero point and scale,
per-tensor or per-channel weight scales, an output scale from a calibration-like range
(sometimes much smaller, so outputs clamp), ReLU, or a quantized activation module
(ReLU6, LeakyReLU, Hardswish, ELU) that becomes the accelerator's activation table, or a
random permutation table (applied to PyTorch's output by lookup).
Most cases get random explicit L3 tiles ``{"k", "c", "xo", "yo"}`` (1, 2, the whole
dimension, beyond it, or anything between; a 1x1 layer's channel tile a multiple of 9, a
depthwise layer's equal to its kernel tile); tiles the host refuses
(:class:`host.golden.schedule.BufferOverflow`, :class:`host.golden.quant.QuantError`) are redrawn and
counted. The rest use the planner's tiles.

The layer goes through :func:`host.compiler.torch_frontend.conv_from_torch` and runs on the
accelerator in Verilator; several layers share one simulation (one DRAM image, one
start-up), run back to back without a reset. Each output must equal both
``conv(x)`` (golden model) and PyTorch's output (the module, then the activation module
applied in NCHW order); the layer must end with its interrupt, no error code, DRAM
traffic counters equal to the layer's transfers, and nothing outside the outputs may
change in DRAM.

``python -m host.tools.fuzz -n 500 --seed 1`` prints the counts (cases run, refused tilings,
exact, mismatched, hung, errors) and, for every failure, the case and a line that
reproduces it. Everything here runs without pytest; torch comes with the test extra.
"""

import argparse
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from hw.config import CHANNEL_BLOCK, AccelConfig

from host.golden import tiling
from host.compiler.planner import layer_tiles
from host.runtime.driver import prepare_layer
from host.compiler.torch_frontend import conv_from_torch
from host.golden.quant import QuantConv, QuantError
from host.golden.schedule import BufferOverflow

__all__ = ["Case", "draw_case", "build_layer", "prepare_case", "run_cases", "fuzz",
           "minimize", "FuzzReport", "ACTIVATIONS"]

# PyTorch activation modules (each becomes the table), and "table": a random permutation
# table, applied to PyTorch's conv output by lookup
ACTIVATIONS = ("relu6", "leaky", "hardswish", "elu", "table")


@dataclass
class Case:
    """One random layer. ``tiles`` None means the planner's tiles."""
    seed: int
    c: int
    k: int
    h: int
    w: int
    kernel: int
    stride: int
    padding: int
    z_x: int
    s_x: float
    per_channel: bool
    relu: bool
    activation: str = None
    out_scale_factor: float = 1.0
    tiles: dict = None
    groups: int = 1             # C: a depthwise layer (C = K)

    @property
    def out_shape(self):
        return (tiling.output_size(self.h, self.kernel, self.stride, self.padding),
                tiling.output_size(self.w, self.kernel, self.stride, self.padding))

    def describe(self):
        act = "relu" if self.relu else (self.activation or "none")
        return (f"C={self.c} K={self.k} {self.h}x{self.w} {self.kernel}x{self.kernel} "
                f"{'depthwise ' if self.groups > 1 else ''}"
                f"stride {self.stride} padding {self.padding} z_x={self.z_x} "
                f"{'per-channel' if self.per_channel else 'per-tensor'} {act} "
                f"tiles={self.tiles}")

    def repro(self):
        """A Python line that rebuilds and runs this case alone."""
        return f"from host.tools.fuzz import Case, run_cases; print(run_cases([Case(**{asdict(self)!r})]))"


def _log_int(rng, lo, hi):
    """An integer in [lo, hi], log-uniform (small values as likely as large ones)."""
    return int(min(hi, max(lo, math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))))


def _shape(rng):
    kernel = int(rng.choice([1, 3]))
    stride = int(rng.choice([1, 2]))
    padding = int(rng.integers(0, kernel))
    shape = rng.random()
    if shape < 0.06:        # tall and narrow: many rows per tile (the line buffer's row counters)
        c, k = _log_int(rng, 1, 3), _log_int(rng, 1, 4)
        h, w = int(rng.integers(200, 1100)), _log_int(rng, 1, 6)
    elif shape < 0.12:      # wide rows: near the line buffer's depth
        c, k = _log_int(rng, 1, 4), _log_int(rng, 1, 6)
        h, w = _log_int(rng, 1, 6), int(rng.integers(150, 300))
    elif shape < 0.2 and kernel == 1:   # many channel blocks, FC-like 1 x N images
        c, k = _log_int(rng, 1, 400), _log_int(rng, 1, 80)
        h, w = (1, _log_int(rng, 1, 12)) if rng.random() < 0.5 else (_log_int(rng, 1, 12),) * 2
    else:
        c, k = _log_int(rng, 1, 96), _log_int(rng, 1, 64)
        h, w = _log_int(rng, 1, 40), _log_int(rng, 1, 40)
    h = max(h, kernel - 2 * padding)
    w = max(w, kernel - 2 * padding)
    return c, k, h, w, kernel, stride, padding


def _tile(rng, n):
    """A tile size for a dimension of ``n``: edge values often, anything otherwise."""
    r = rng.random()
    if r < 0.15:
        return 1
    if r < 0.25:
        return min(2, n) if rng.random() < 0.5 else 2
    if r < 0.45:
        return n
    if r < 0.52:
        return n + int(rng.integers(1, 6))     # beyond the layer: clipped by the hardware
    return int(rng.integers(1, n + 1))


def channel_tile(kernel, c, tile):
    """``tile`` made a valid channel tile: a 1x1 layer's is a multiple of CHANNEL_BLOCK
    or covers all ``c`` channels (``host.golden.tiling.validate``)."""
    if kernel == 1 and tile < c and tile % CHANNEL_BLOCK:
        return min(c, tiling.ceil_div(tile, CHANNEL_BLOCK) * CHANNEL_BLOCK)
    return tile


def draw_tiles(rng, case):
    xo, yo = case.out_shape
    k = _tile(rng, case.k)
    c = k if case.groups > 1 else channel_tile(case.kernel, case.c, _tile(rng, case.c))
    return {"k": k, "c": c, "xo": _tile(rng, xo), "yo": _tile(rng, yo)}


def draw_case(rng):
    """A random layer (no tiles yet: see :func:`draw_tiles`)."""
    c, k, h, w, kernel, stride, padding = _shape(rng)
    groups = 1
    if kernel == 3 and rng.random() < 0.2:      # depthwise
        k = groups = c
    relu = bool(rng.random() < 0.25)
    activation = None
    if not relu and rng.random() < 0.35:
        activation = str(rng.choice(ACTIVATIONS))
    factor = 1.0 if rng.random() < 0.8 else float(math.exp(rng.uniform(math.log(0.05), math.log(0.7))))
    return Case(seed=int(rng.integers(0, 1 << 31)), c=c, k=k, h=h, w=w, kernel=kernel, groups=groups,
                stride=stride, padding=padding, z_x=int(rng.integers(0, 256)),
                s_x=float(math.exp(rng.uniform(math.log(0.003), math.log(0.2)))),
                per_channel=bool(rng.random() < 0.5), relu=relu, activation=activation,
                out_scale_factor=factor)


# ---- PyTorch side (torch is imported only here) --------------------------------------

def _torch():
    import torch
    torch.backends.quantized.engine = "qnnpack"
    return torch


def _activation_module(case, rng):
    import torch.ao.nn.quantized as nnq
    if case.activation in (None, "table"):
        return None
    # output qparams of the activation: its own range, as a calibrated model would have
    scale = float(math.exp(rng.uniform(math.log(0.005), math.log(0.1))))
    zero_point = int(rng.integers(0, 256))
    if case.activation == "relu6":
        return nnq.ReLU6()
    if case.activation == "leaky":
        return nnq.LeakyReLU(scale, zero_point, negative_slope=float(rng.uniform(0.01, 0.3)))
    if case.activation == "hardswish":
        return nnq.Hardswish(scale, zero_point)
    if case.activation == "elu":
        return nnq.ELU(scale, zero_point, alpha=float(rng.uniform(0.5, 1.5)))
    raise ValueError(f"unknown activation {case.activation!r}")


def build_layer(case):
    """``(conv, x, expected_torch)``: the case as a PyTorch quantized module, converted
    with :func:`conv_from_torch`, a random input and PyTorch's own output (1, K, XO, YO).
    Raises :class:`QuantError` for layers the front end refuses."""
    import warnings
    torch = _torch()
    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    from host.runtime.sim.torch_layers import output_qparams, quantized_input

    rng = np.random.default_rng(case.seed)
    c, k, r = case.c, case.k, case.kernel
    w = torch.from_numpy(rng.normal(0, 1, size=(k, c // case.groups, r, r)).astype(np.float32))
    if case.per_channel:
        scales = torch.from_numpy(np.exp(rng.uniform(np.log(0.002), np.log(0.03), size=k)))
        wq = torch.quantize_per_channel(w * scales.float().view(-1, 1, 1, 1) * 40, scales,
                                        torch.zeros(k, dtype=torch.long), 0, torch.qint8)
    else:
        wq = torch.quantize_per_tensor(w, float(w.abs().max()) / 127 or 1.0, 0, torch.qint8)
    cls = nniq.ConvReLU2d if case.relu else nnq.Conv2d
    module = cls(c, k, r, stride=case.stride, padding=case.padding, groups=case.groups)
    bias = torch.from_numpy(rng.normal(0, 2, size=k).astype(np.float32))
    module.set_weight_bias(wq, bias)

    x = rng.integers(0, 256, size=(1, c, case.h, case.w), dtype=np.uint8)
    xq = quantized_input(x, case.s_x, case.z_x)
    # output qparams like a calibration of this layer's float output, scaled by the factor
    module.scale, module.zero_point = output_qparams(rng, module, x, case.s_x, case.z_x,
                                                     case.out_scale_factor)
    act = _activation_module(case, rng)
    conv = conv_from_torch(module, case.s_x, case.z_x, activation=act)
    out = module(xq)
    if act is not None:
        out = act(out.contiguous())       # NCHW (see README: ReLU6 on channels_last)
    out = out.int_repr().numpy()
    if case.activation == "table":
        conv.table = rng.permutation(256).astype(np.uint8)
        out = conv.table[out]
    return conv, x, out


# ---- preparing and running ------------------------------------------------------------

@dataclass
class Prepared:
    case: Case
    conv: QuantConv
    x: np.ndarray
    golden: np.ndarray
    torch_out: np.ndarray
    run: object = None          # host.runtime.driver.LayerRun, placed at its own base


def estimated_cycles(cfg, desc, latency):
    """Rough cycles of a layer in simulation (to keep cases quick): MACs, steps, transfers."""
    R, S, P = desc["kernel_size"], desc["stride"], desc["padding"]
    xo = tiling.output_size(desc["height"], R, S, P)
    yo = tiling.output_size(desc["width"], R, S, P)
    channels = math.ceil(desc["channels"] / CHANNEL_BLOCK) if R == 1 else desc["channels"]
    beats = math.ceil(desc["kernels"] / cfg.kp) * channels * xo * math.ceil(yo / cfg.yp)
    steps = (math.ceil(desc["kernels"] / desc["tile_k"]) * math.ceil(xo / desc["tile_xo"]) *
             math.ceil(yo / desc["tile_yo"]) * math.ceil(desc["channels"] / desc["tile_c"]))
    transfers = len(tiling.transfers(desc))
    return beats + 30 * steps + transfers * (latency + 8) / cfg.max_outstanding_reads


@dataclass
class FuzzReport:
    cases: int = 0              # cases run through the RTL
    refused_tilings: int = 0    # explicit tilings the host refused (redrawn)
    refused_layers: int = 0     # layers the PyTorch front end refused (redrawn)
    over_budget: int = 0        # tilings redrawn because they would simulate too long
    exact: int = 0
    mismatched: int = 0
    hung: int = 0
    errors: int = 0
    failures: list = field(default_factory=list)    # (kind, Case, detail)
    simulations: int = 0
    seconds: float = 0.0

    @property
    def ok(self):
        return self.exact == self.cases and not self.failures

    def counts(self):
        return {name: getattr(self, name) for name in (
            "cases", "refused_tilings", "refused_layers", "over_budget", "exact", "mismatched",
            "hung", "errors", "simulations")}

    def summary(self):
        lines = [" ".join(f"{n}={v}" for n, v in self.counts().items()) +
                 f" seconds={self.seconds:.0f}"]
        for kind, case, detail in self.failures:
            lines.append(f"{kind}: {case.describe()}: {detail}")
            lines.append(f"  repro: {case.repro()}")
        return "\n".join(lines)

    def merge(self, other):
        for name in ("cases", "refused_tilings", "refused_layers", "over_budget", "exact",
                     "mismatched", "hung", "errors", "simulations"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures += other.failures


def prepare_case(cfg, case, rng=None, *, tries=20, budget=None, latency=20, report=None):
    """Build ``case`` and lay it out; draw explicit tiles with ``rng`` (up to ``tries``
    times, counting refusals in ``report``) unless ``case.tiles`` is set or ``rng`` is
    None (planner tiles). Returns a :class:`Prepared` or None if no tiling was accepted."""
    report = report if report is not None else FuzzReport()
    conv, x, torch_out = build_layer(case)
    golden = conv(x)
    for _ in range(tries if rng is not None and case.tiles is None else 1):
        tiles = case.tiles
        if tiles is None and rng is not None:
            tiles = draw_tiles(rng, case)
        try:
            run = prepare_layer(cfg, conv, x, tiles if tiles is not None else layer_tiles(cfg, conv, *x.shape[2:]))
        except (BufferOverflow, QuantError):
            report.refused_tilings += 1
            continue
        if budget is not None and estimated_cycles(cfg, run.descriptor, latency) > budget:
            report.over_budget += 1
            continue
        case.tiles = {n: run.descriptor["tile_" + n] for n in ("k", "c", "xo", "yo")} \
            if tiles is None else dict(tiles)
        return Prepared(case, conv, x, golden, torch_out, run)
    return None


def _place(cfg, items):
    """Lay out prepared cases one after another in one DRAM image; returns the image."""
    from host.runtime.sim import prepare_batch
    runs, memory = prepare_batch(cfg, [(i.conv, i.x, i.case.tiles) for i in items])
    for item, run in zip(items, runs):
        item.run = run
    return memory


def _check(item, layer):
    """(kind, detail) of a failed layer, or None."""
    from hw.contract import ErrorCode
    run = item.run
    if not layer["irq"]:
        return "hung", "no interrupt before the timeout"
    if layer["error_code"]:
        return "error", f"accelerator error {ErrorCode(layer['error_code']).name}"
    got = np.asarray(layer["output"], dtype=np.uint8).reshape(run.output_shape)
    golden, torch_out = item.golden[0], item.torch_out[0]
    details = []
    if (got != golden).any():
        details.append(f"{int((got != golden).sum())} of {got.size} outputs differ from the golden model")
    if (got != torch_out).any():
        details.append(f"{int((got != torch_out).sum())} of {got.size} outputs differ from PyTorch")
    if (golden != torch_out).any():
        details.append(f"golden model differs from PyTorch in {int((golden != torch_out).sum())}")
    if details:
        return "mismatch", "; ".join(details)
    c = layer["counters"]
    if c["dram_read_bytes"] != run.read_bytes() or c["dram_write_bytes"] != got.size:
        return "error", (f"counters: read {c['dram_read_bytes']} (expected {run.read_bytes()}), "
                         f"written {c['dram_write_bytes']} (expected {got.size})")
    return None


def _simulate(cfg, items, latency, pause, seed):
    """Run ``items`` in one simulation; returns ({index: (kind, detail) or None}, rest):
    results of the cases up to and including the first hang, and the cases after it."""
    from host.runtime.sim import run_layers
    memory = _place(cfg, items)
    result = run_layers(cfg, [{"run": item.run} for item in items], latency=latency,
                        pause=pause, seed=seed, memory=memory)
    outcomes = {}
    for index, (item, layer) in enumerate(zip(items, result["layers"])):
        outcomes[index] = _check(item, layer)
        if outcomes[index] and outcomes[index][0] == "hung":
            return outcomes, items[index + 1:]
    # nothing outside the outputs may change
    regions = [(i.run.output_addr, i.run.output_addr + int(np.prod(i.run.output_shape))) for i in items]
    outside = [o for o in result["changed_offsets"] if not any(lo <= o < hi for lo, hi in regions)]
    if result["changed"] is not None:
        lo, hi, _ = result["changed"]
        if not any(a <= lo < b for a, b in regions) or not any(a <= hi < b for a, b in regions):
            outside.append(lo if not any(a <= lo < b for a, b in regions) else hi)
    if outside:
        for index in outcomes:
            outcomes[index] = outcomes[index] or ("error", f"DRAM bytes outside the outputs changed "
                                                           f"in this simulation: {outside[:4]}")
    return outcomes, []


def run_cases(cases, cfg=AccelConfig(), *, latency=20, pause=0.0, seed=1, report=None):
    """Run fully specified cases (tiles set or None for the planner's) in one simulation
    (more after a hang). Returns a :class:`FuzzReport`."""
    report = report if report is not None else FuzzReport()
    items = []
    for case in cases:
        try:
            item = prepare_case(cfg, case, None, report=report)
        except QuantError as exc:
            report.refused_layers += 1
            report.failures.append(("refused", case, str(exc)))
            continue
        if item is None:
            report.failures.append(("refused", case, "the host refuses this tiling"))
        else:
            items.append(item)
    _run_items(cfg, items, latency, pause, seed, report)
    return report


def _run_items(cfg, items, latency, pause, seed, report):
    while items:
        report.simulations += 1
        try:
            outcomes, rest = _simulate(cfg, items, latency, pause, seed)
        except Exception as exc:                          # the simulation itself failed
            for item in items:
                report.cases += 1
                report.errors += 1
                report.failures.append(("error", item.case, f"simulation failed: {exc}"[:2000]))
            return
        for index, outcome in outcomes.items():
            report.cases += 1
            if outcome is None:
                report.exact += 1
                continue
            kind, detail = outcome
            detail = f"{detail} (DRAM latency {latency}, AXI pauses {pause}, seed {seed}, " \
                     f"{index + 1} of {len(items)} layers in the simulation)"
            report.failures.append((kind, items[index].case, detail))
            if kind == "hung":
                report.hung += 1
            elif kind == "mismatch":
                report.mismatched += 1
            else:
                report.errors += 1
        items = rest


def _failure_kind(cfg, case, latency, pause):
    """The kind of failure of ``case`` run alone ("hung", "mismatch", "error"), or None
    if it passes or cannot run (the host or the front end refuses it)."""
    report = run_cases([Case(**{**asdict(case), "tiles": dict(case.tiles) if case.tiles else None})],
                       cfg, latency=latency, pause=pause)
    kinds = [kind for kind, _, _ in report.failures if kind != "refused"]
    return kinds[0] if kinds else None


def _shrinks(case):
    """Smaller variants of ``case``, simplest first: one field changed at a time."""
    def smaller(v):
        return [x for x in dict.fromkeys([1, v // 2, 3 * v // 4, 7 * v // 8, v - 1]) if 1 <= x < v]

    out = []
    depthwise = case.groups > 1
    for name in ("k", "c", "h", "w"):
        if depthwise and name in ("k", "c"):        # C = K = groups together
            out += [{"k": v, "c": v, "groups": v} for v in smaller(case.c)] if name == "c" else []
        else:
            out += [{name: v} for v in smaller(getattr(case, name))]
    if depthwise:
        out.append({"groups": 1})
    if case.tiles:
        xo, yo = case.out_shape
        limits = {"k": case.k, "c": case.c, "xo": xo, "yo": yo}
        for name, v in case.tiles.items():
            values = ([limits[name]] if v > limits[name] else []) + smaller(min(v, limits[name]))
            if depthwise and name in ("k", "c"):
                out += [{"tiles": {**case.tiles, "k": t, "c": t}} for t in values] if name == "k" else []
            else:
                out += [{"tiles": {**case.tiles, name: t}} for t in values]
    if case.kernel == 3 and not depthwise:
        out.append({"kernel": 1, "padding": 0})
    if case.stride == 2:
        out.append({"stride": 1})
    if case.padding:
        out.append({"padding": case.padding - 1})
    for name, plain in (("activation", None), ("relu", False), ("per_channel", False),
                        ("out_scale_factor", 1.0)):
        if getattr(case, name) != plain:
            out.append({name: plain})
    for change in out:
        candidate = Case(**{**asdict(case), **change})
        if candidate.tiles and candidate.tiles["c"] != channel_tile(candidate.kernel, candidate.c,
                                                                    candidate.tiles["c"]):
            continue
        if candidate.h + 2 * candidate.padding >= candidate.kernel and \
                candidate.w + 2 * candidate.padding >= candidate.kernel:
            yield candidate


def minimize(case, cfg=AccelConfig(), *, latency=20, pause=0.0, max_runs=300, log=None):
    """The smallest variant of a failing ``case`` (shape, tiles, options) that still
    fails the same way, found greedily one field at a time (one simulation per try)."""
    kind = _failure_kind(cfg, case, latency, pause)
    if kind is None:
        return case
    runs, changed = 1, True
    while changed and runs < max_runs:
        changed = False
        for candidate in _shrinks(case):
            runs += 1
            if _failure_kind(cfg, candidate, latency, pause) == kind:
                case, changed = candidate, True
                if log:
                    log(f"  still {kind}: {case.describe()}")
                break
            if runs >= max_runs:
                break
    return case


def draw_batch(rng, cfg, count, *, budget, latency, explicit_tiles=0.85, report):
    """``count`` prepared random cases."""
    items = []
    while len(items) < count:
        case = draw_case(rng)
        try:
            item = prepare_case(cfg, case, rng if rng.random() < explicit_tiles else None,
                                budget=budget, latency=latency, report=report)
        except QuantError:
            report.refused_layers += 1
            continue
        if item is not None:
            items.append(item)
    return items


def fuzz(n, seed=1, cfg=AccelConfig(), *, batch=10, jobs=1, latency=None, pause=None,
         budget=300_000, explicit_tiles=0.85, progress=None):
    """Run ``n`` random cases, ``batch`` per simulation, ``jobs`` simulations at a time.
    ``latency`` (DRAM cycles) and ``pause`` (random AXI pause probability) are drawn per
    simulation when None. ``budget``: estimated cycles per case above which a tiling is
    redrawn (an eighth of it in simulations with pauses, which run on the slower cocotb
    engine). Returns a :class:`FuzzReport`."""
    from host.runtime.sim import accelerator_verilog
    start = time.perf_counter()
    report = FuzzReport()
    rng = np.random.default_rng(seed)
    accelerator_verilog(cfg)            # convert once, before the workers start

    def draw(index):
        """Batch ``index`` (drawn in order from ``rng``, so a seed gives the same cases)."""
        lat = int(rng.choice([5, 20, 50])) if latency is None else latency
        pse = (0.0 if rng.random() < 0.75 else 0.2) if pause is None else pause
        count = min(batch, n - index * batch)
        items = draw_batch(rng, cfg, count, budget=budget if not pse else budget // 8,
                           latency=lat, explicit_tiles=explicit_tiles, report=report)
        return items, lat, pse

    def work(index, items, lat, pse):
        part = FuzzReport()
        _run_items(cfg, items, lat, pse, seed + index, part)
        return part

    # draw the next batch while at most ``jobs`` simulations run
    pending = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for index in range(-(-n // batch)):
            pending.append(pool.submit(work, index, *draw(index)))
            while len(pending) >= max(1, jobs) + 1 or (index == -(-n // batch) - 1 and pending):
                report.merge(pending.pop(0).result())
                if progress:
                    progress(report)
    report.seconds = time.perf_counter() - start
    return report


def main(argv=None):
    """``python -m host.tools.fuzz``: random layers through the RTL; exit status 1 on a failure."""
    parser = argparse.ArgumentParser(prog="python -m host.tools.fuzz", description=main.__doc__)
    parser.add_argument("-n", type=int, default=100, help="cases (default 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=10, help="cases per simulation (default 10)")
    parser.add_argument("--jobs", type=int, default=1, help="simulations at a time (default 1)")
    parser.add_argument("--latency", type=int, default=None,
                        help="DRAM latency, cycles (default: 5, 20 or 50 per simulation)")
    parser.add_argument("--pause", type=float, default=None,
                        help="random AXI pause probability (default: 0, or 0.2 in a quarter "
                             "of the simulations)")
    parser.add_argument("--budget", type=int, default=300_000,
                        help="redraw tilings estimated above this many cycles (default 300000)")
    parser.add_argument("--minimize", type=int, default=3, metavar="N",
                        help="shrink the first N failures to the smallest case that still "
                             "fails (default 3)")
    import gen
    gen.add_config_arguments(parser)        # --kp, --yp, --dsp-packing, every buffer depth
    args = parser.parse_args(argv)
    cfg = gen.config_from_arguments(parser, args)

    def progress(report):
        print(f"  {report.cases} cases, {report.exact} exact, {len(report.failures)} failures",
              file=sys.stderr, flush=True)

    report = fuzz(args.n, args.seed, cfg, batch=args.batch, jobs=args.jobs, latency=args.latency,
                  pause=args.pause, budget=args.budget, progress=progress)
    print(report.summary())
    for kind, case, detail in report.failures[:args.minimize]:
        # each failure's own DRAM latency and pauses are in its detail; minimize at 20 / 0
        print(f"minimizing ({kind}): {case.describe()}", flush=True)
        small = minimize(case, cfg, latency=20, pause=0.0,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
        print(f"  smallest: {small.describe()}\n  repro: {small.repro()}")
    print(f"{report.seconds / max(1, report.cases):.2f} s per case")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
