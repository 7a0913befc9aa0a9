"""``python -m host.tools.dse``: design-space exploration of the accelerator for a network.

Searches KP, YP and buffer depths for the fewest modelled network cycles
(``host.compiler.planner``: the best L3 tiles of every layer under each configuration) among
configurations whose modelled resources fit the device (``gen.report.BUDGET``).
Layers run as the compiler places them: square kernels other than 1 and 3 (up to 9) as
the 3x3 convolution it decomposes them into, 3x3 depthwise layers whole
(``AccelConfig.depthwise_lanes`` channels at once), other grouped layers one group at a
time; layers the accelerator cannot run (strides other than 1 and 2, larger kernels) are
listed as CPU layers, their MACs apart: network utilization and frames per second count
the accelerator layers. The resource model (:func:`resources`) is calibrated on yosys
estimates of the blocks and of three whole accelerators.

Writes ``<out>/dse_<model>.json`` and ``<out>/dse_<model>.png`` (per-layer utilization
and a roofline; needs matplotlib). ``--summary`` compares ResNet-18, ResNet-50 and
MobileNetV2 on the default configuration, the search's pick for ResNet-50 and each
network's own pick, beside the Xilinx DPU's published frames per second
(``<out>/dse_summary.json``). Their frames per second are at each configuration's clock:
its estimate (``gen.timing``, the synthesized whole accelerator) capped at the board's
``pl_clk0`` (``CLOCK_MHZ``). The estimates measured on this design ship in
``host/tools/clock_estimates.json``, a run's own go to ``<out>/clock_estimates.json``;
``--estimate-clock`` synthesizes the configurations that have none (about ten minutes
each for the default configuration on two cores, longer for larger arrays); without one
a configuration's fps are at ``CLOCK_MHZ``, marked ``"clock": "assumed"``.
"""

import argparse
import bisect
import dataclasses
import itertools
import json
import math
import sys
import time
from pathlib import Path

from gen.report import BUDGET
from hw.config import CHANNEL_BLOCK, AccelConfig
from hw.datapath.line_buffer import word_bytes_for

from host.tools import networks
from host.compiler.planner import ConvShape, min_array_beats, plan
from host.compiler.pool_model import global_in_one_row, pool_model, pool_pass
from hw.contract import PoolMode
from host.golden.schedule import BufferOverflow

__all__ = ["resources", "accelerator_layers", "pool_passes", "pool_report", "layer_macs", "evaluate",
           "network_report",
           "search", "exhaustive_search", "summary", "config_key", "load_clock_estimates",
           "estimate_clocks", "clock_for", "SPACE", "NETWORKS", "DPU_FPS", "main"]

DEVICES = {"zu7ev": BUDGET}
# the board build's pl_clk0 (boards.zcu104, ``make bitstream CLOCK_MHZ=``): the cap on
# every configuration's clock
CLOCK_MHZ = 200
# clock estimates measured with ``--estimate-clock`` on this version of the design (copied
# from a run's clock_estimates.json; re-measure after changing the hardware)
MEASURED_CLOCKS = Path(__file__).with_name("clock_estimates.json")
# The command queue's cycles per command (its record's fetch and its trace record's write,
# about two DRAM latencies), measured through the RTL at a DRAM latency of 50: 8,640 for
# ResNet-50's 65 commands on the default configuration
QUEUE_COMMAND_CYCLES = 133
# The networks ``--summary`` reports
NETWORKS = ("resnet50", "resnet18", "mobilenet_v2")
# The Xilinx DPU on the ZCU104 (2 x B4096 at 300 MHz, ZU7EV), frames per second single
# thread / multithread, from the Vitis AI 3.0 model zoo's ZCU104 tables: pt_resnet50
# (ResNet-50; tf_resnetv1_50: 96.0 / 183.3) and MobileNetV2 1.0. The zoo lists no
# ImageNet ResNet-18 for the ZCU104.
DPU_FPS = {"resnet50": (84.7, 161.9), "mobilenet_v2": (284.7, 621.0)}

# Resource model, calibrated on yosys synth_xilinx (xcup): blocks, then two whole
# accelerators.
# dpe_array (3, 4): 1,603 LUT / 3,378 FF / 108 DSP; (8, 8): 8,519 LUT / 15,878 FF / 576 DSP
# (checked: (10, 8) packed, 11,287 LUT as modelled).
LUT_PER_DPE = (8519 - 1603) / (64 - 12)
FF_PER_DPE = (15878 - 3378) / (64 - 12)
LUT_ARRAY_BASE = 1603 - LUT_PER_DPE * 12
FF_ARRAY_BASE = 3378 - FF_PER_DPE * 12
# dsp_packing (two products per DSP48E2, DPE pairs): dpe_array (3, 4): 1,699 LUT / 3,432 FF
# / 54 DSP; (8, 8): 9,031 LUT / 16,166 FF / 288 DSP
PACKED_LUT_PER_DPE = (9031 - 1699) / (64 - 12)
PACKED_FF_PER_DPE = (16166 - 3432) / (64 - 12)
PACKED_LUT_ARRAY_BASE = 1699 - PACKED_LUT_PER_DPE * 12
PACKED_FF_ARRAY_BASE = 3432 - PACKED_FF_PER_DPE * 12
# the requantizer: ``drain_words * yp`` of them
REQUANT = {"LUT": 674, "FF": 794, "DSP": 2}
# the line buffer (row ring, slots 8, rows of 256) by YP (measured: 1, 3 and 9 lanes at
# YP 4, 8 and 16; 1 and 2 at 16): one lane, and each further
# depthwise lane (its own window logic; the array's rows then select among the lanes:
# 72 LUT and 72 FF per column and lane, as dpe_array (10, 8) with 9 lanes against 1)
LINE_BUFFER = {"LUT": {4: 7_239, 8: 15_016, 16: 33_698}, "FF": {4: 3_040, 8: 5_374, 16: 10_044}}
LINE_BUFFER_LANE = {"LUT": {4: (19_652 - 7_239) / 2, 8: (124_997 - 15_016) / 8, 16: 64_174 - 33_698},
                    "FF": {4: (7_712 - 3_040) / 2, 8: (42_750 - 5_374) / 8, 16: 19_388 - 10_044}}
ARRAY_LANE_PER_COLUMN = {"LUT": 72, "FF": 72}
# the pooling engine's four max-pooled outputs a cycle and its global pools' word sums:
# the default accelerator with them against the same design without (yosys: 79,510 LUT
# and 49,528 FF against 76,846 and 48,325; the engine alone, 10,773 LUT against 7,852)
POOL_ENGINE_GROWTH = {"LUT": 79_510 - 76_846, "FF": 49_528 - 48_325, "DSP": 0}
# the whole accelerator, yosys estimates of this design: default (KP=3, YP=4, drain 2, 3
# depthwise lanes) 79,510 LUT, 49,528 FF, 256 DSP, 123.5 BRAM36; KP=24, YP=8, packed,
# output 65536, one lane, drain 4 and stationary 16384: 227,661 LUT, 127,397 FF, 1,059
# DSP, 847.5 BRAM36 (684 of them the output buffer's 4 x 2 banks of 86 x 6,144 bits, one
# RAMB18 per 36 bits: its memories are as wide as the array's KP x YP sums); drain 1 and
# stationary 4096: 138,220 LUT, 107,668 FF, 1,010 DSP, 266.5 BRAM36 (both KP=24
# estimates were synthesized before the pooling engine grew: POOL_ENGINE_GROWTH added)
WHOLE = (({"kp": 3, "yp": 4}, {"LUT": 79_510, "FF": 49_528, "DSP": 256}),
         ({"kp": 24, "yp": 8, "dsp_packing": True, "stationary_buffer_depth": 16384,
           "output_buffer_depth": 65536, "drain_words": 4, "max_depthwise_lanes": 1},
          {r: v + POOL_ENGINE_GROWTH[r] for r, v in {"LUT": 227_661, "FF": 127_397, "DSP": 1_059}.items()}),
         ({"kp": 24, "yp": 8, "dsp_packing": True, "output_buffer_depth": 65536, "drain_words": 1,
           "max_depthwise_lanes": 1},
          {r: v + POOL_ENGINE_GROWTH[r] for r, v in {"LUT": 138_220, "FF": 107_668, "DSP": 1_010}.items()}))
# FIFOs of the DMA reader (512 x 134 bit) and the controller's queues
FIXED_BRAM36 = 3.5
# block RAM aspect ratios (depth, width) and their cost in BRAM36: RAMB36E2 and RAMB18E2
BRAM_SHAPES = (tuple(((d, w), 1) for d, w in ((32768, 1), (16384, 2), (8192, 4), (4096, 9),
                                                (2048, 18), (1024, 36), (512, 72))) +
               tuple(((d, w), 0.5) for d, w in ((16384, 1), (8192, 2), (4096, 4), (2048, 9),
                                                  (1024, 18), (512, 36))))


def _by_yp(points, yp):
    """A block's measured figure at ``yp``, linear between (and beyond) the measured YPs."""
    xs = sorted(points)
    i = min(max(bisect.bisect_left(xs, yp), 1), len(xs) - 1)
    lo, hi = xs[i - 1], xs[i]
    return points[lo] + (points[hi] - points[lo]) * (yp - lo) / (hi - lo)


def _parts(cfg, resource):
    """The modelled blocks' ``resource`` (LUT, FF or DSP): the array, the requantizers,
    the line buffer and its depthwise lanes."""
    n = cfg.kp * cfg.yp
    requantizers = cfg.drain_words * cfg.yp
    if resource == "DSP":
        return 9 * n // (2 if cfg.dsp_packing else 1) + REQUANT["DSP"] * requantizers
    if cfg.dsp_packing:
        base, per_dpe = ((PACKED_LUT_ARRAY_BASE, PACKED_LUT_PER_DPE) if resource == "LUT"
                         else (PACKED_FF_ARRAY_BASE, PACKED_FF_PER_DPE))
    else:
        base, per_dpe = ((LUT_ARRAY_BASE, LUT_PER_DPE) if resource == "LUT"
                         else (FF_ARRAY_BASE, FF_PER_DPE))
    lane = _by_yp(LINE_BUFFER_LANE[resource], cfg.yp) + ARRAY_LANE_PER_COLUMN[resource] * cfg.yp
    return (base + per_dpe * n + REQUANT[resource] * requantizers
            + _by_yp(LINE_BUFFER[resource], cfg.yp) + lane * (cfg.depthwise_lanes - 1))


def _fit_rest():
    """Everything else (DMA, tiler, sequencer, controller, CSRs, pooling engine, the
    buffers' logic, the output buffer's adders and its drain, which selects ``drain_words``
    words of KP x YP sums): per resource ``(fixed, per DPE, per DPE and drained word)``,
    solved from the three whole accelerators of ``WHOLE`` (DSPs: a constant, the
    default's)."""
    import numpy as np
    cfgs = [(AccelConfig(**fields), res) for fields, res in WHOLE]
    rows = [[1, c.kp * c.yp, c.kp * c.yp * c.drain_words] for c, _ in cfgs]
    rest = {r: tuple(float(v) for v in np.linalg.solve(rows, [res[r] - _parts(c, r) for c, res in cfgs]))
            for r in ("LUT", "FF")}
    default, res = cfgs[0]
    rest["DSP"] = (res["DSP"] - _parts(default, "DSP"), 0.0, 0.0)
    return rest


REST = _fit_rest()


SPACE = {
    "kp": (2, 3, 4, 6, 8, 12, 16, 24, 32),
    "yp": (2, 4, 8, 16, 32),
    "streaming_buffer_depth": (1 << 16, 1 << 18),
    "stationary_buffer_depth": (1 << 12, 1 << 14),
    "output_buffer_depth": (1 << 14, 1 << 16, 1 << 18),
    "line_buffer_depth": (256,),
    "dsp_packing": (False, True),
    "drain_words": (1, 2, 4),
    "max_depthwise_lanes": (1, 3, 9),
}


def _memory(depth, width):
    """BRAM36 for one ``depth`` x ``width`` memory: the best of the block RAMs' aspect
    ratios (a RAMB18E2 counts half)."""
    return min(math.ceil(width / w) * math.ceil(depth / d) * cost for (d, w), cost in BRAM_SHAPES)


def resources(cfg: AccelConfig):
    """Modelled LUT / FF / DSP / BRAM36 / URAM of a configuration (the design maps no
    memory to UltraRAM)."""
    n = cfg.kp * cfg.yp
    res = {r: round(_parts(cfg, r) + REST[r][0] + (REST[r][1] + REST[r][2] * cfg.drain_words) * n)
           for r in ("LUT", "FF", "DSP")}
    word = word_bytes_for(cfg.yp)
    # the streaming buffer: both halves' words of CHANNEL_BLOCK row words; the stationary
    # buffer: KP slices of 9 weights a word (written whole)
    bram = (_memory(2 * cfg.streaming_buffer_words, CHANNEL_BLOCK * word * 8) +
            _memory(2 * (cfg.stationary_buffer_depth // cfg.kp), cfg.kp * CHANNEL_BLOCK * 8))
    # the output buffer (hw.datapath.output_buffer): per half, drain_words banks of KP x YP
    # int32 sums a word, and the parameter records (88 bits) of up to max_kernels kernels
    out_words = max(1, cfg.output_buffer_depth // n)
    max_kernels = min(cfg.max_output_dim, out_words * cfg.kp)
    bram += 2 * cfg.drain_words * _memory(math.ceil(out_words / cfg.drain_words), n * 32)
    bram += _memory(2 << max(1, (max_kernels - 1).bit_length()), 88)
    # the residual queue (hw.datapath.core): an output buffer's worth of bus beats
    bus = cfg.axi_data_width // 8
    bram += _memory(max(2, cfg.output_buffer_depth // bus), cfg.axi_data_width + 6)
    res["BRAM36"] = bram + FIXED_BRAM36
    res["URAM"] = 0
    return res


def fits(res, budget):
    return all(res[k] <= budget[k] for k in budget)


def _decomposed(l):
    """The 3x3 ConvShape a square kernel up to 9x9 runs as (``host.compiler.decompose``:
    one 3x3 conv, padding 0, over ``ceil(R / 3)**2`` shifted copies of the input)."""
    import numpy as np
    from host.compiler.decompose import LargeConv, decompose
    conv = LargeConv(weight=np.zeros((l["K"], l["C"], l["kernel"], l["kernel"]), np.int8),
                     bias_q=np.zeros(l["K"]), multiplier=1.0, input_zero_point=0,
                     output_zero_point=0, stride=l["stride"], padding=l["padding"])
    conv3, transform = decompose(conv)
    _, _, height, width = transform(np.zeros((1, l["C"], l["H"], l["W"]), np.uint8)).shape
    return ConvShape.from_conv(conv3, height, width, l["name"], residual=l.get("residual", False)), transform


def accelerator_layers(layers):
    """Split a layer table's convolutions into (accelerator ConvShapes, CPU layers with
    the reason), as the compiler places them (pooling layers: :func:`pool_passes`).

    1x1 and 3x3 convolutions run as they are; other square kernels up to 9x9 as the 3x3
    convolution the compiler decomposes them into (named as the table's layer; its MACs
    include the zero-padded taps). A 3x3 depthwise layer is one depthwise ConvShape
    (``AccelConfig.depthwise_lanes`` channels at once); other grouped 1x1 / 3x3 layers one
    ConvShape per group (named ``name[g]``). Other strides, grouped layers of other
    kernels and layers a torch layer table marks unsupported stay on the CPU. A layer
    whose ``residual`` addition follows it has it fused (``ConvShape.residual``)."""
    from host.compiler.decompose import MAX_KERNEL
    acc, cpu = [], []
    for l in layers:
        if "pool" in l:
            continue
        groups, kernel = l.get("groups", 1), l["kernel"]
        depthwise = groups > 1 and groups == l["C"] == l["K"] and kernel == 3
        reason = None
        if not isinstance(kernel, int) or not 1 <= kernel <= MAX_KERNEL:
            reason = f"{kernel} kernel (the compiler runs square kernels up to 9x9)"
        elif groups != 1 and kernel not in (1, 3):
            reason = f"grouped convolution (groups={groups}) with a {kernel}x{kernel} kernel"
        elif l["stride"] not in (1, 2):
            reason = f"stride {l['stride']}"
        elif not isinstance(l["padding"], int) or not 0 <= l["padding"] <= kernel - 1:
            reason = f"padding {l['padding']}"
        elif not l.get("supported", True):
            reason = l["reason"]
        if reason:
            cpu.append({**l, "reason": reason})
        elif depthwise:
            acc.append(ConvShape(l["C"], l["K"], l["H"], l["W"], 3, l["stride"], l["padding"],
                                 l["name"], depthwise=True))
        elif groups != 1:
            acc += [ConvShape(l["C"] // groups, l["K"] // groups, l["H"], l["W"], kernel, l["stride"],
                              l["padding"], f"{l['name']}[{g}]") for g in range(groups)]
        elif kernel in (1, 3):
            acc.append(ConvShape(l["C"], l["K"], l["H"], l["W"], kernel, l["stride"],
                                 l["padding"], l["name"], residual=l.get("residual", False)))
        else:
            acc.append(_decomposed(l)[0])
    return acc, cpu


def pool_passes(cfg, layers):
    """The pooling engine's passes of a layer table on ``cfg``, as the compiler places them:
    ``(name, PoolDescriptor fields)`` for each pooling layer and for each copy that
    rearranges a decomposed large kernel's input
    (``host.compiler.build.decomposition_copies``)."""
    from host.compiler.build import decomposition_copies
    shapes, _ = accelerator_layers(layers)
    on_chip = {s.name for s in shapes}
    out = []
    for l in layers:
        if "pool" in l:
            p = pool_pass(PoolMode[l["pool"]], l["C"], l["H"], l["W"], l["kernel"], l["stride"], l["padding"])
            out.append((l["name"], global_in_one_row(p, cfg.line_buffer_depth)))
        elif l["name"] in on_chip and l["kernel"] not in (1, 3) and l.get("groups", 1) == 1:
            _, transform = _decomposed(l)
            _, copies = decomposition_copies((1, l["C"], l["H"], l["W"]), transform)
            out += [(f"{l['name']}.input[{info['piece'][0]},{info['piece'][1]}]", fields)
                    for fields, _, _, info in copies]
    return out


def pool_report(cfg, layers):
    """Modelled cycles and DRAM bytes (``host.compiler.pool_model``) of each of
    :func:`pool_passes`."""
    return [{"name": name, "mode": PoolMode(p["mode"]).name, **pool_model(cfg, p)}
            for name, p in pool_passes(cfg, layers)]


def layer_macs(l):
    """MACs of a layer-table row as the network defines them (a grouped convolution's
    kernels see ``C / groups`` channels; no zero-padded taps)."""
    k, s, p = l["kernel"], l["stride"], l["padding"]
    kr, ks = (k, k) if isinstance(k, int) else k
    sr, ss = (s, s) if isinstance(s, int) else s
    pr, ps = (p, p) if isinstance(p, int) else p
    rows = (l["H"] + 2 * pr - kr) // sr + 1
    cols = (l["W"] + 2 * ps - ks) // ss + 1
    return l["C"] // l.get("groups", 1) * l["K"] * kr * ks * rows * cols


def _key(shape):
    return (shape.channels, shape.kernels, shape.height, shape.width, shape.kernel_size,
            shape.stride, shape.padding, shape.depthwise, shape.residual)


def _lower_bound(cfg, shapes):
    return sum(min_array_beats(cfg, s) for s in shapes)


def evaluate(cfg, shapes, limit=None, cache=None, coarse=True):
    """Total modelled cycles and per-layer plans; ``None`` if a layer does
    not fit or the running total exceeds ``limit``. ``coarse``: the planner's coarse
    search."""
    total, plans = 0, []
    for s in shapes:
        key = (cfg, _key(s), coarse)
        p = cache.get(key) if cache is not None else None
        if p is None:
            try:
                p = plan(cfg, s, coarse=coarse)
            except BufferOverflow:
                return None, None
            if cache is not None:
                cache[key] = p
        total += p.cycles
        plans.append(p)
        if limit is not None and total > limit:
            return None, None
    return total, plans


def network_report(cfg, layers, clock_mhz=CLOCK_MHZ, cache=None):
    """A network's modelled performance on ``cfg`` with the planner's full search.

    ``utilization``: the network's MACs on the accelerator (``layer_macs``: a decomposed
    layer's zero-padded taps do not count) over the accelerator's cycles times its MACs
    per cycle; ``without_depthwise`` the same over the other layers. CPU layers count in
    neither: their MACs are ``cpu_macs``, and ``fps`` at ``clock_mhz`` is the accelerator
    layers' alone (the network's, with the CPU layers' time added, is lower). The
    pooling engine's passes (:func:`pool_report`) count in ``cycles``, ``fps`` and
    ``utilization`` (``pool_cycles``: theirs), and so does the command queue's cost per
    command (``queue_cycles``: ``QUEUE_COMMAND_CYCLES`` for each layer run and pass)."""
    shapes, cpu = accelerator_layers(layers)
    conv_cycles, plans = evaluate(cfg, shapes, cache=cache, coarse=False)
    if conv_cycles is None:
        raise BufferOverflow(f"a layer does not fit {cfg}")
    pools = pool_report(cfg, layers)
    pool_cycles = sum(p["cycles"] for p in pools)
    queue_cycles = QUEUE_COMMAND_CYCLES * (len(plans) + len(pools))
    cycles = conv_cycles + pool_cycles + queue_cycles
    macs = {l["name"]: layer_macs(l) for l in layers if "pool" not in l}
    rows = [{"name": s.name, "depthwise": s.depthwise, "tiles": p.tiles, "cycles": p.cycles,
             "macs": macs.get(s.name, s.macs)}
            for s, p in zip(shapes, plans)]
    for r in rows:
        r["utilization"] = r["macs"] / (r["cycles"] * cfg.macs_per_cycle)
    dense = [r for r in rows if not r["depthwise"]]
    acc_macs = sum(r["macs"] for r in rows)
    cpu_macs = sum(macs[l["name"]] for l in cpu)

    def utilization(rs, extra=0):
        return sum(r["macs"] for r in rs) / ((sum(r["cycles"] for r in rs) + extra) * cfg.macs_per_cycle)
    return {"cycles": cycles, "pool_cycles": pool_cycles, "queue_cycles": queue_cycles,
            "accelerator_macs": acc_macs, "cpu_macs": cpu_macs,
            "cpu_layers": len(cpu), "cpu_mac_share": cpu_macs / (acc_macs + cpu_macs),
            "depthwise_macs": acc_macs - sum(r["macs"] for r in dense),
            "depthwise_cycles": conv_cycles - sum(r["cycles"] for r in dense),
            "utilization": utilization(rows, pool_cycles + queue_cycles),
            "without_depthwise": utilization(dense, pool_cycles + queue_cycles),
            "fps": clock_mhz * 1e6 / cycles, "layers": rows, "pools": pools}


def configurations(space, budget):
    """Configurations of ``space`` whose modelled resources fit ``budget``."""
    out = {}
    for kp, yp, sb, st, ob, lb, packing, drain, lanes in itertools.product(
            space["kp"], space["yp"], space["streaming_buffer_depth"],
            space["stationary_buffer_depth"], space["output_buffer_depth"], space["line_buffer_depth"],
            space.get("dsp_packing", (False,)), space.get("drain_words", (AccelConfig.drain_words,)),
            space.get("max_depthwise_lanes", (AccelConfig.max_depthwise_lanes,))):
        try:
            # lanes above KP build the same accelerator as KP lanes: one of them
            cfg = AccelConfig(kp=kp, yp=yp, streaming_buffer_depth=sb, stationary_buffer_depth=st,
                              output_buffer_depth=ob, line_buffer_depth=lb, dsp_packing=packing,
                              drain_words=drain, max_depthwise_lanes=min(lanes, kp))
        except ValueError:
            continue
        if fits(resources(cfg), budget):
            out[cfg] = None
    return list(out)


def _dominated(cfg, others):
    """A fitting configuration with the same array and every depth (and the depthwise
    lanes) at least as large (at least one larger) plans every layer at least as fast."""
    names = ("streaming_buffer_depth", "stationary_buffer_depth", "output_buffer_depth",
             "line_buffer_depth", "drain_words", "max_depthwise_lanes")
    for o in others:
        if o is cfg or (o.kp, o.yp, o.dsp_packing) != (cfg.kp, cfg.yp, cfg.dsp_packing):
            continue
        if all(getattr(o, n) >= getattr(cfg, n) for n in names) and \
                any(getattr(o, n) > getattr(cfg, n) for n in names):
            return True
    return False


def _rank(cfg, total):
    res = resources(cfg)
    return (total, res["DSP"], res["LUT"], res["BRAM36"], sorted(cfg.to_dict().items()))


def search(shapes, space=SPACE, budget=BUDGET):
    """Best configuration: fewest modelled cycles, then fewest resources. Pruned: depth
    combinations dominated by a larger fitting one are skipped (more buffer never slows
    a plan down), and configurations whose compute lower bound cannot beat the best."""
    cfgs = configurations(space, budget)
    cfgs = [c for c in cfgs if not _dominated(c, cfgs)]
    cfgs.sort(key=lambda c: _lower_bound(c, shapes))
    best, evaluated = None, 0
    cache = {}
    for cfg in cfgs:
        if best is not None and _lower_bound(cfg, shapes) > best[0]:
            break
        total, plans = evaluate(cfg, shapes, None if best is None else best[0], cache)
        evaluated += 1
        if total is not None and (best is None or _rank(cfg, total) < _rank(best[1], best[0])):
            best = (total, cfg, plans)
    if best is None:
        raise BufferOverflow("no configuration of the space runs every layer within the budget")
    return {"cycles": best[0], "config": best[1], "plans": best[2], "evaluated": evaluated,
            "configurations": len(configurations(space, budget))}


def exhaustive_search(shapes, space, budget=BUDGET):
    """Reference for :func:`search`: every fitting configuration, no pruning."""
    best = None
    for cfg in configurations(space, budget):
        total, plans = evaluate(cfg, shapes)
        if total is not None and (best is None or _rank(cfg, total) < _rank(best[1], best[0])):
            best = (total, cfg, plans)
    return {"cycles": best[0], "config": best[1], "plans": best[2]}


def _torch_layers(spec):
    import importlib
    mod, _, fn = spec.partition(":")
    if not fn:
        raise SystemExit(f"--torch-module wants pkg.mod:fn, got {spec!r}")
    model = getattr(importlib.import_module(mod), fn)()
    from host.compiler.torch_frontend import layer_table
    return layer_table(model)


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = result["layers"]
    cfg = result["config"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(14, 4.5))
    a.bar(range(len(rows)), [100 * r["utilization"] for r in rows])
    a.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=90, fontsize=5)
    a.set_ylabel("MAC utilization (%)")
    a.set_title(f"KP={cfg['kp']} YP={cfg['yp']}: per-layer utilization")
    peak = 9 * cfg["kp"] * cfg["yp"]
    bw = cfg["axi_data_width"] // 8
    xs = [r["macs"] / (r["dram_read_bytes"] + r["dram_write_bytes"]) for r in rows]
    ys = [r["macs"] / r["cycles"] for r in rows]
    lo, hi = min(xs) / 2, max(xs) * 2
    grid = [lo * (hi / lo) ** (i / 100) for i in range(101)]
    b.loglog(grid, [min(peak, bw * g) for g in grid], "k-", label=f"roofline ({bw} B/cycle bus)")
    b.loglog(xs, ys, "o", ms=3, label="layers (model)")
    b.set_xlabel("MACs per DRAM byte")
    b.set_ylabel("MACs per cycle")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def config_key(cfg):
    """A configuration's key in the clock-estimate cache: its fields as JSON."""
    return json.dumps(cfg.to_dict(), sort_keys=True)


def load_clock_estimates(path):
    """The clock estimates, ``{config_key: {"estimated_clock_mhz", ...}}``: the measured
    ones shipped with the project (``MEASURED_CLOCKS``), then the cache at ``path``
    (which wins)."""
    path = Path(path)
    return {**json.loads(MEASURED_CLOCKS.read_text()),
            **(json.loads(path.read_text()) if path.exists() else {})}


def estimate_clocks(configs, path, work_dir):
    """Synthesize each configuration of ``configs`` without a cached estimate
    (``gen.timing.estimate_clock``) and add it to the cache at ``path``; returns the cache."""
    from gen.timing import estimate_clock
    estimates = load_clock_estimates(path)
    for cfg in configs:
        key = config_key(cfg)
        if key in estimates:
            continue
        print(f"estimating the clock of KP={cfg.kp} YP={cfg.yp} ...", flush=True)
        r = estimate_clock(cfg, Path(work_dir) / f"kp{cfg.kp}_yp{cfg.yp}")
        path_ = r["critical_path"] or {}
        estimates[key] = {"estimated_clock_mhz": r["estimated_clock_mhz"],
                          "logic_levels": path_.get("logic_levels"),
                          "critical_path": f"{path_.get('start_net')} -> {path_.get('end_net')}",
                          "synth_seconds": r["synth_seconds"]}
        Path(path).write_text(json.dumps(estimates, indent=1) + "\n")
    return estimates


def clock_for(cfg, estimates, cap=CLOCK_MHZ):
    """``(clock MHz, how)``: the configuration's estimate capped at ``cap`` ("estimated"),
    or ``cap`` when there is no estimate ("assumed")."""
    estimate = estimates.get(config_key(cfg), {}).get("estimated_clock_mhz")
    if estimate is None:
        return cap, "assumed"
    return min(estimate, cap), "estimated"


def summary(device="zu7ev", clock_mhz=CLOCK_MHZ, names=NETWORKS, estimates=None, estimate=None):
    """The networks on the default configuration, on the configuration the search picks
    for ResNet-50 on ``device`` and on each network's own pick: modelled utilization and
    frames per second, each configuration at :func:`clock_for` its clock (``estimates``:
    the cache of :func:`load_clock_estimates`; ``estimate``: a callable that fills it for
    a list of configurations, run first)."""
    layers = {name: networks.network(name) for name in names}
    picks = {name: search(accelerator_layers(layers[name])[0], SPACE, DEVICES[device])["config"]
             for name in names}
    labelled = {"default": AccelConfig(), **{f"{name} pick": picks[name] for name in names}}
    if estimate is not None:
        estimates = estimate(list({config_key(c): c for c in labelled.values()}.values()))
    estimates = estimates or {}
    cache = {}
    out = {"device": device, "clock_mhz": clock_mhz, "configs": {}, "networks": {}}
    for label, cfg in labelled.items():
        mhz, how = clock_for(cfg, estimates, clock_mhz)
        out["configs"][label] = {**cfg.to_dict(), "clock_mhz": mhz, "clock": how,
                                 "estimated_clock_mhz": estimates.get(config_key(cfg), {}).get(
                                     "estimated_clock_mhz")}
    for name in names:
        configs = {"default": AccelConfig(), device: picks["resnet50"], "own": picks[name]}
        out["networks"][name] = {label: network_report(cfg, layers[name],
                                                       clock_for(cfg, estimates, clock_mhz)[0], cache)
                                 for label, cfg in configs.items()}
    return out


def print_summary(s):
    device, clock = s["device"], s["clock_mhz"]
    fields = {f.name for f in dataclasses.fields(AccelConfig)}
    for label, cfg in s["configs"].items():
        estimate = cfg["estimated_clock_mhz"]
        accel = AccelConfig(**{k: v for k, v in cfg.items() if k in fields})
        res = resources(accel)
        print(f"{label}: KP={cfg['kp']} YP={cfg['yp']} ({9 * cfg['kp'] * cfg['yp']} MACs/cycle), depths "
              f"stream {cfg['streaming_buffer_depth']} stat {cfg['stationary_buffer_depth']} "
              f"out {cfg['output_buffer_depth']}, drain words {cfg['drain_words']}, "
              f"{accel.depthwise_lanes} depthwise lanes"
              f"{', two MACs per DSP' if cfg.get('dsp_packing') else ''}; modelled "
              f"{res['DSP']} DSP, {res['LUT']} LUT, {res['BRAM36']:g} BRAM36; "
              f"clock {cfg['clock_mhz']:.0f} MHz ("
              + (f"estimate {estimate:.0f} MHz, capped at {clock}" if estimate is not None
                 else "assumed: no estimate, see --estimate-clock") + ")")
    print(f"{'':14} {'utilization (without depthwise)':^50} {'fps at each clock':^24} "
          f"{'depthwise':>10}")
    print(f"{'network':14} {'default':>16} {device + ' (R50 pick)':>16} {'own pick':>16} "
          f"{device:>7} {'own':>7} {'DPU':>7} {'GMAC':>10}")
    for name, r in s["networks"].items():
        cells = [f"{100 * r[c]['utilization']:5.1f}% ({100 * r[c]['without_depthwise']:5.1f}%)"
                 for c in ("default", device, "own")]
        print(f"{name:14} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} {r[device]['fps']:>7.1f} "
              f"{r['own']['fps']:>7.1f} {DPU_FPS.get(name, (float('nan'),))[0]:>7} "
              f"{r['default']['depthwise_macs'] / 1e9:>10.3f}")
    print("utilization: the network's MACs over the accelerator's cycles x MACs per cycle; depthwise "
          "layers run on the array (min(KP, max_depthwise_lanes) channels at once), the figure in "
          "brackets leaves them out; fps counts the accelerator's cycles. DPU: 2 x B4096 at 300 MHz, "
          "single thread (Vitis AI 3.0, ZCU104).")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m host.tools.dse", description=__doc__.split("\n")[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", choices=sorted(networks.NETWORKS))
    src.add_argument("--torch-module", help="pkg.mod:fn returning a torch.nn.Module (float or quantized)")
    src.add_argument("--summary", action="store_true",
                     help="ResNet-18, ResNet-50 and MobileNetV2 on the default configuration and "
                          "the searches' picks: utilization, fps beside the Xilinx DPU's")
    parser.add_argument("--device", choices=sorted(DEVICES), default="zu7ev")
    parser.add_argument("--out", default="build/dse")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--estimate-clock", action="store_true",
                        help="with --summary: synthesize the configurations without a cached clock "
                             "estimate (<out>/clock_estimates.json)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.summary:
        cache_path = out / "clock_estimates.json"
        estimate = ((lambda configs: estimate_clocks(configs, cache_path, out / "clock"))
                    if args.estimate_clock else None)
        s = summary(args.device, estimates=load_clock_estimates(cache_path), estimate=estimate)
        print_summary(s)
        (out / "dse_summary.json").write_text(json.dumps(s, indent=1) + "\n")
        print(f"wrote {out / 'dse_summary.json'}")
        return 0
    start = time.perf_counter()
    name = args.model or args.torch_module.replace(":", "_").replace(".", "_")
    layers = networks.network(args.model) if args.model else _torch_layers(args.torch_module)
    shapes, cpu = accelerator_layers(layers)
    r = search(shapes, SPACE, DEVICES[args.device])
    seconds = time.perf_counter() - start
    cfg = r["config"]
    network_macs = {l["name"]: layer_macs(l) for l in layers if "pool" not in l}
    pools = pool_report(cfg, layers)
    pool_cycles = sum(p["cycles"] for p in pools)
    cycles = r["cycles"] + pool_cycles
    rows = []
    for s, p in zip(shapes, r["plans"]):
        layer_mac = network_macs.get(s.name, s.macs)
        rows.append({"name": s.name, "tiles": p.tiles, "cycles": p.cycles,
                     "macs": layer_mac, "utilization": layer_mac / (p.cycles * cfg.macs_per_cycle),
                     "dram_read_bytes": p.dram_read_bytes, "dram_write_bytes": p.dram_write_bytes})
    macs = sum(x["macs"] for x in rows)
    cpu_macs = sum(network_macs[l["name"]] for l in cpu)
    result = {"model": name, "device": args.device, "config": cfg.to_dict(),
              "resources": resources(cfg), "budget": DEVICES[args.device],
              "cycles": cycles, "pool_cycles": pool_cycles, "macs": macs,
              "utilization": macs / (cycles * cfg.macs_per_cycle),
              "configurations_fitting": r["configurations"], "configurations_evaluated": r["evaluated"],
              "search_seconds": seconds, "cpu_macs": cpu_macs, "layers": rows, "pools": pools,
              "cpu_layers": [{k: l[k] for k in ("name", "C", "K", "H", "W", "kernel", "stride",
                                                "padding", "groups", "reason")} for l in cpu]}
    print(f"{name} on {args.device}: KP={cfg.kp} YP={cfg.yp} ({cfg.macs_per_cycle} MACs/cycle), "
          f"depths stream {cfg.streaming_buffer_depth} stat {cfg.stationary_buffer_depth} "
          f"out {cfg.output_buffer_depth}; resources {result['resources']}")
    print(f"{'layer':24} {'T_K':>4} {'T_C':>4} {'T_XO':>4} {'T_YO':>4} {'cycles':>9} {'util':>6} "
          f"{'read B':>9} {'write B':>8}")
    for x in rows:
        t = x["tiles"]
        print(f"{x['name']:24} {t['k']:>4} {t['c']:>4} {t['xo']:>4} {t['yo']:>4} {x['cycles']:>9} "
              f"{100 * x['utilization']:>5.1f}% {x['dram_read_bytes']:>9} {x['dram_write_bytes']:>8}")
    for p in pools:
        print(f"{p['name']:24} pool {p['mode']:<14} {p['cycles']:>9} {'':>6} {p['dram_read_bytes']:>9} "
              f"{p['dram_write_bytes']:>8}")
    for l in cpu:
        print(f"{l['name']:24} CPU: {l['reason']}")
    print(f"total {cycles} cycles ({pool_cycles} in pooling passes), utilization {100 * result['utilization']:.1f}% of the "
          f"accelerator layers' {macs / 1e9:.3f} GMAC (CPU layers: {cpu_macs / 1e9:.3f} GMAC, not "
          f"counted); {r['evaluated']} of {r['configurations']} configurations evaluated in {seconds:.1f} s")
    (out / f"dse_{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out / f'dse_{name}.json'}")
    if not args.no_plot:
        try:
            plot(result, out / f"dse_{name}.png")
            print(f"wrote {out / f'dse_{name}.png'}")
        except ImportError:
            print("matplotlib is not installed: no plot (pip install matplotlib)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
