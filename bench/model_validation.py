"""``python -m bench.model_validation``: the planner's cycle model against the RTL.

Runs layers on the generated accelerator in Verilator (the fast C++ engine, DRAM read
latency 50 cycles) and compares its counters with :func:`host.compiler.planner.model`:

* ``fitted``: the synthetic layers and tiles ``planner.TIMING`` was fitted to
  (``--fit`` fits it again and prints the constants);
* ``held-out``: every distinct accelerator layer of ResNet-18, ResNet-50 and MobileNetV2
  (``host.tools.networks``, depthwise layers and those with a fused residual addition
  included) with the planner's tiles, plus layers of kinds the networks lack (1x1 tiles
  narrower than the image, Linear at batch 4 and 16) and other shapes.

Fused residual additions (kinds ``... +add``): fitted on the fitted layers whose output
tiles are whole rows (the planner's choice for them), held out on ``HELD_OUT``'s such
layers and the networks' fused layers. Pooling-engine passes (kinds ``pool ...``,
:mod:`host.compiler.pool_model`): ``POOL_FITTED`` and ``POOL_HELD_OUT``.

Array-busy cycles and DRAM bytes must be exact; the table gives modelled and RTL cycles
per layer, with the error (and for Linear layers the share of the read bus's cycles that
carry weights), and the largest error per set and kind of layer. Writes
``build/bench/model_validation.json``.
"""

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from hw.config import AccelConfig
from hw.contract import DmaKind, PoolMode

from host.compiler import planner
from host.compiler.planner import ConvShape, descriptor_for, model, plan
from host.compiler.pool_model import POOL_TIMING, global_in_one_row, pool_model, pool_pass as _pass
from host.golden import tiling

# (C, K, H, W, kernel, stride, padding, tiles), or (ConvShape, tiles, name): the
# planner's tiles when fitted, and one alternative each (half the kernels, or half the
# output columns: a non-flat 1x1 tile)
FITTED = [
    (32, 48, 30, 30, 3, 1, 1, {"k": 9, "c": 11, "xo": 7, "yo": 30}),
    (32, 48, 30, 30, 3, 1, 1, {"k": 4, "c": 11, "xo": 7, "yo": 30}),
    (96, 64, 20, 20, 3, 1, 1, {"k": 9, "c": 8, "xo": 20, "yo": 20}),
    (96, 64, 20, 20, 3, 1, 1, {"k": 4, "c": 8, "xo": 20, "yo": 20}),
    (48, 96, 9, 9, 3, 1, 1, {"k": 18, "c": 6, "xo": 9, "yo": 9}),
    (48, 96, 9, 9, 3, 1, 1, {"k": 9, "c": 6, "xo": 9, "yo": 9}),
    (16, 40, 40, 40, 3, 1, 1, {"k": 12, "c": 16, "xo": 3, "yo": 40}),
    (16, 40, 40, 40, 3, 1, 1, {"k": 6, "c": 16, "xo": 3, "yo": 40}),
    (5, 7, 11, 11, 3, 1, 1, {"k": 6, "c": 3, "xo": 11, "yo": 11}),
    (5, 7, 11, 11, 3, 1, 1, {"k": 3, "c": 3, "xo": 11, "yo": 11}),
    (200, 24, 12, 12, 3, 1, 1, {"k": 9, "c": 17, "xo": 8, "yo": 12}),
    (200, 24, 12, 12, 3, 1, 1, {"k": 4, "c": 17, "xo": 8, "yo": 12}),
    (48, 64, 30, 30, 3, 2, 1, {"k": 9, "c": 4, "xo": 15, "yo": 15}),
    (48, 64, 30, 30, 3, 2, 1, {"k": 4, "c": 4, "xo": 15, "yo": 15}),
    (96, 96, 16, 16, 3, 2, 1, {"k": 18, "c": 8, "xo": 8, "yo": 8}),
    (96, 96, 16, 16, 3, 2, 1, {"k": 9, "c": 8, "xo": 8, "yo": 8}),
    (24, 48, 60, 60, 3, 2, 1, {"k": 9, "c": 2, "xo": 30, "yo": 30}),
    (24, 48, 60, 60, 3, 2, 1, {"k": 4, "c": 2, "xo": 30, "yo": 30}),
    (3, 16, 40, 40, 3, 2, 1, {"k": 3, "c": 1, "xo": 20, "yo": 20}),
    (3, 16, 40, 40, 3, 2, 1, {"k": 1, "c": 1, "xo": 20, "yo": 20}),
    (40, 120, 24, 24, 1, 1, 0, {"k": 18, "c": 40, "xo": 3, "yo": 24}),
    (40, 120, 24, 24, 1, 1, 0, {"k": 18, "c": 40, "xo": 3, "yo": 12}),
    (200, 60, 12, 12, 1, 1, 0, {"k": 21, "c": 27, "xo": 7, "yo": 12}),
    (200, 60, 12, 12, 1, 1, 0, {"k": 21, "c": 27, "xo": 7, "yo": 6}),
    (72, 300, 10, 10, 1, 1, 0, {"k": 21, "c": 27, "xo": 10, "yo": 10}),
    (72, 300, 10, 10, 1, 1, 0, {"k": 21, "c": 27, "xo": 10, "yo": 5}),
    (20, 100, 48, 48, 1, 1, 0, {"k": 36, "c": 9, "xo": 5, "yo": 48}),
    (20, 100, 48, 48, 1, 1, 0, {"k": 36, "c": 9, "xo": 5, "yo": 24}),
    (10, 6, 6, 6, 1, 1, 0, {"k": 6, "c": 9, "xo": 6, "yo": 6}),
    (10, 6, 6, 6, 1, 1, 0, {"k": 6, "c": 9, "xo": 6, "yo": 3}),
    (600, 200, 5, 5, 1, 1, 0, {"k": 27, "c": 108, "xo": 5, "yo": 5}),
    (600, 200, 5, 5, 1, 1, 0, {"k": 27, "c": 108, "xo": 5, "yo": 3}),
    (60, 120, 30, 30, 1, 2, 0, {"k": 42, "c": 9, "xo": 6, "yo": 15}),
    (60, 120, 30, 30, 1, 2, 0, {"k": 21, "c": 9, "xo": 6, "yo": 15}),
    (150, 300, 16, 16, 1, 2, 0, {"k": 45, "c": 9, "xo": 8, "yo": 8}),
    (150, 300, 16, 16, 1, 2, 0, {"k": 22, "c": 9, "xo": 8, "yo": 8}),
    (30, 50, 21, 21, 1, 2, 0, {"k": 50, "c": 9, "xo": 5, "yo": 11}),
    (30, 50, 21, 21, 1, 2, 0, {"k": 25, "c": 9, "xo": 5, "yo": 11}),
    (300, 500, 1, 1, 1, 1, 0, {"k": 125, "c": 9, "xo": 1, "yo": 1}),
    (300, 500, 1, 1, 1, 1, 0, {"k": 500, "c": 18, "xo": 1, "yo": 1}),
    (900, 200, 1, 1, 1, 1, 0, {"k": 200, "c": 9, "xo": 1, "yo": 1}),
    (900, 200, 1, 1, 1, 1, 0, {"k": 100, "c": 9, "xo": 1, "yo": 1}),
    (128, 640, 1, 2, 1, 1, 0, {"k": 128, "c": 9, "xo": 1, "yo": 2}),
    (128, 640, 1, 2, 1, 1, 0, {"k": 64, "c": 9, "xo": 1, "yo": 2}),
    (400, 100, 1, 8, 1, 1, 0, {"k": 50, "c": 18, "xo": 1, "yo": 8}),
    (400, 100, 1, 8, 1, 1, 0, {"k": 50, "c": 18, "xo": 1, "yo": 4}),
    # few channels: the drain outlasts the accumulation
    (5, 40, 30, 30, 1, 1, 0, {"k": 18, "c": 5, "xo": 8, "yo": 30}),
    (5, 40, 30, 30, 1, 1, 0, {"k": 9, "c": 5, "xo": 8, "yo": 30}),
    (8, 64, 20, 20, 1, 1, 0, {"k": 30, "c": 8, "xo": 7, "yo": 20}),
    (8, 64, 20, 20, 1, 1, 0, {"k": 15, "c": 8, "xo": 7, "yo": 20}),
    # depthwise
    (ConvShape(48, 48, 30, 30, 3, 1, 1, depthwise=True), {"k": 9, "c": 9, "xo": 10, "yo": 30}, ""),
    (ConvShape(48, 48, 30, 30, 3, 1, 1, depthwise=True), {"k": 4, "c": 4, "xo": 10, "yo": 30}, ""),
    (ConvShape(96, 96, 17, 17, 3, 2, 1, depthwise=True), {"k": 6, "c": 6, "xo": 9, "yo": 9}, ""),
    (ConvShape(96, 96, 17, 17, 3, 2, 1, depthwise=True), {"k": 3, "c": 3, "xo": 9, "yo": 9}, ""),
    (ConvShape(20, 20, 40, 40, 3, 1, 1, depthwise=True), {"k": 6, "c": 6, "xo": 14, "yo": 40}, ""),
    (ConvShape(20, 20, 40, 40, 3, 1, 1, depthwise=True), {"k": 3, "c": 3, "xo": 14, "yo": 40}, ""),
    (ConvShape(300, 300, 9, 9, 3, 1, 1, depthwise=True), {"k": 27, "c": 27, "xo": 9, "yo": 9}, ""),
    (ConvShape(300, 300, 9, 9, 3, 1, 1, depthwise=True), {"k": 13, "c": 13, "xo": 9, "yo": 9}, ""),
]

# held out beyond the networks' layers: None takes the planner's tiles
HELD_OUT = [
    # depthwise, other shapes than MobileNetV2's
    (ConvShape(64, 64, 20, 20, 3, 1, 1, depthwise=True), None, ""),
    (ConvShape(40, 40, 33, 33, 3, 2, 1, depthwise=True), None, ""),
    # 1x1 tiles narrower than the image (not flat): the planner's best such tiles
    (64, 128, 28, 28, 1, 1, 0, {"k": 66, "c": 64, "xo": 1, "yo": 16}),
    (64, 128, 28, 28, 1, 1, 0, {"k": 33, "c": 63, "xo": 4, "yo": 14}),
    (256, 64, 14, 14, 1, 1, 0, {"k": 64, "c": 54, "xo": 1, "yo": 8}),
    (36, 90, 20, 40, 1, 1, 0, {"k": 45, "c": 18, "xo": 1, "yo": 20}),
    (120, 40, 9, 30, 1, 1, 0, {"k": 40, "c": 63, "xo": 1, "yo": 16}),
    # Linear at batch 1, 4 and 16: a 1 x N image
    (2048, 1000, 1, 1, 1, 1, 0, {"k": 1000, "c": 18, "xo": 1, "yo": 1}),
    (2048, 1000, 1, 4, 1, 1, 0, None),
    (1280, 1000, 1, 16, 1, 1, 0, None),
    (512, 10, 1, 1, 1, 1, 0, None),
    # other shapes
    (80, 80, 17, 17, 3, 1, 1, None),
    (40, 72, 33, 33, 3, 2, 1, None),
    (100, 200, 23, 23, 1, 2, 0, None),
    (7, 33, 50, 50, 1, 1, 0, None),
    (45, 60, 14, 14, 1, 1, 0, None),
    (45, 60, 20, 20, 1, 1, 0, None),
]

_M, _A, _G, _C = PoolMode.MAX, PoolMode.AVG, PoolMode.GLOBAL, PoolMode.COPY
# pooling-engine passes: windows, global averages, copies (pitched: a decomposed
# kernel's rearrangement, a channel shuffle's group)
POOL_FITTED = [
    _pass(_M, 16, 56, 56, 3, 2, 1), _pass(_M, 8, 30, 30, 3, 1, 1), _pass(_M, 12, 40, 40, 2, 2, 0),
    _pass(_M, 5, 17, 33, 3, 2, 0, ceil_mode=True), _pass(_M, 10, 15, 21, 3, 2, 0, ceil_mode=True),
    _pass(_M, 6, 11, 11, 3, 1, 1), _pass(_A, 16, 28, 28, 3, 1, 1), _pass(_A, 9, 20, 41, 3, 2, 1),
    _pass(_A, 6, 15, 15, 2, 2, 0, ceil_mode=True), _pass(_G, 256, 7, 7), _pass(_G, 64, 14, 14), _pass(_G, 32, 3, 3),
    _pass(_G, 100, 1, 1), _pass(_G, 256, 1, 49), _pass(_G, 64, 1, 196), _pass(_G, 32, 1, 9), _pass(_G, 40, 1, 37),
    _pass(_C, 3, 64, 64), _pass(_C, 24, 16, 16), _pass(_C, 1, 120, 200), _pass(_C, 40, 9, 9),
    _pass(_C, 3, 56, 56, in_pitch=60, out_pitch=57, in_channel_pitch=3600, out_channel_pitch=58 * 57),
    _pass(_C, 24, 8, 8, in_channel_pitch=128, out_channel_pitch=64),
]
POOL_HELD_OUT = [   # ResNet's and GoogLeNet's max pools, Inception's averages, global averages (as the
                    # compiler issues them: global_in_one_row), copies
    _pass(_M, 64, 112, 112, 3, 2, 1), _pass(_M, 192, 28, 28, 3, 1, 1), _pass(_M, 480, 14, 14, 3, 2, 0, ceil_mode=True),
    _pass(_M, 32, 24, 24, 2, 2, 0), _pass(_A, 64, 28, 28, 3, 1, 1), _pass(_A, 128, 14, 14, 3, 1, 0),
    *(global_in_one_row(_pass(_G, c, h, h), AccelConfig.line_buffer_depth)
      for c, h in ((2048, 7), (512, 7), (1280, 7), (1024, 14))),
    _pass(_G, 96, 20, 20),
    _pass(_C, 3, 112, 112, in_pitch=448, out_pitch=115, in_channel_pitch=224 * 224, out_channel_pitch=115 * 115),
    _pass(_C, 58, 28, 28, in_channel_pitch=2 * 784, out_channel_pitch=784), _pass(_C, 116, 14, 14),
    _pass(_C, 1, 224, 224),
]

LATENCY = 50
NETWORKS = ("resnet18", "resnet50", "mobilenet_v2")


def kind(shape, tiles):
    """The layer kind a case exercises: 3x3 s1 / s2, depthwise s1 / s2, 1x1 s1 flat /
    non-flat, 1x1 s2, FC (a 1 x N image); ``+add`` with a fused residual addition."""
    add = " +add" if shape.residual else ""
    if shape.depthwise:
        return f"dw s{shape.stride}{add}"
    if shape.kernel_size == 3:
        return f"3x3 s{shape.stride}{add}"
    if shape.height == 1:
        return "FC" + add
    if shape.stride == 2:
        return "1x1 s2" + add
    return ("1x1 s1 flat" if tiles["yo"] >= shape.out_width else "1x1 s1") + add


def network_cases():
    """Every distinct accelerator layer of the networks, with the planner's tiles."""
    from host.tools import networks
    from host.tools.dse import accelerator_layers
    seen, cases = set(), []
    for name in NETWORKS:
        shapes, _ = accelerator_layers(networks.network(name))
        for s in shapes:
            key = (s.channels, s.kernels, s.height, s.width, s.kernel_size, s.stride, s.padding,
                   s.depthwise, s.residual)
            if key not in seen:
                seen.add(key)
                cases.append((s, None, f"{name}.{s.name}"))
    return cases


def conv_of(shape, rng):
    """A random quantized conv of ``shape`` (depthwise: one 3x3 kernel per channel)."""
    from host.runtime.sim.layers import random_layer
    return random_layer(rng, shape.channels, shape.kernels, shape.kernel_size, shape.stride,
                        shape.padding, groups=shape.channels if shape.depthwise else 1)


def measure(cfg, shape, tiles, rng):
    """RTL counters and modelled counters of ``shape`` with ``tiles`` (a residual layer
    with a random addition)."""
    from host.golden.quant import add_fixed
    from host.runtime.sim import run_conv
    conv = conv_of(shape, rng)
    x = rng.integers(0, 256, size=(1, shape.channels, shape.height, shape.width), dtype=np.uint8)
    expected = conv(x)
    residual = None
    if shape.residual:
        residual = {"tensor": rng.integers(0, 256, size=expected.shape[1:], dtype=np.uint8), "ma": 1 << 20,
                    "mb": 3 << 19, "shift": 21, "za": 3, "zb": 5, "zo": 7, "lo": 0}
        expected = add_fixed(expected[0], residual["tensor"],
                             **{n: residual[n] for n in ("ma", "mb", "shift", "za", "zb", "zo", "lo")})[None]
    y, counters = run_conv(cfg, conv, x, tiles, latency=LATENCY, residual=residual)
    if not np.array_equal(y, expected):
        raise SystemExit(f"{shape} {tiles}: the accelerator's output is wrong")
    m = model(cfg, descriptor_for(shape, tiles))
    for name in ("array_busy_cycles", "dram_read_bytes", "dram_write_bytes"):
        if m[name] != counters[name]:
            raise SystemExit(f"{shape} {tiles}: modelled {name} {m[name]} != RTL {counters[name]}")
    return counters, m


def measure_pool(cfg, p, rng):
    """The RTL's trace record of pass ``p`` and its modelled counters."""
    from host.runtime.sim import run_pool
    x = rng.integers(0, 256, p["in_channel_pitch"] * p["channels"], dtype=np.uint8)
    got, record, expected = run_pool(cfg, p, x, latency=LATENCY)
    if not np.array_equal(got, expected):
        raise SystemExit(f"pool pass {p}: the accelerator's output is wrong")
    m = pool_model(cfg, p)
    for name in ("dram_read_bytes", "dram_write_bytes"):
        if m[name] != record[name]:
            raise SystemExit(f"pool pass {p}: modelled {name} {m[name]} != RTL {record[name]}")
    return record, m


def run_pools(cfg, passes, label, rng):
    rows = []
    for p in passes:
        start = time.perf_counter()
        rtl, m = measure_pool(cfg, p, rng)
        mode = PoolMode(p["mode"])
        shape = (p["channels"], p["height"], p["width"], p["kernel"], p["stride"], p["padding"])
        row = {"set": label, "name": "", "kind": f"pool {mode.name}", "pass": {**p, "mode": mode.name},
               "rtl_cycles": rtl["cycles"], "model_cycles": m["cycles"], "error": m["cycles"] / rtl["cycles"] - 1,
               "seconds": time.perf_counter() - start}
        rows.append(row)
        print(f"{label:9} {row['kind']:11} {str(shape):34} {'':>19} {row['rtl_cycles']:>9} "
              f"{row['model_cycles']:>9} {100 * row['error']:+6.2f}%", flush=True)
    return rows


def as_case(case):
    """``(ConvShape, tiles or None, name)`` of a table entry or a network case."""
    if isinstance(case[0], ConvShape):
        return case
    return ConvShape(*case[:7]), case[7], ""


def run(cfg, cases, label, rng):
    rows = []
    for shape, tiles, name in map(as_case, cases):
        tiles = tiles or plan(cfg, shape).tiles
        start = time.perf_counter()
        rtl, m = measure(cfg, shape, tiles, rng)
        layer = [shape.channels, shape.kernels, shape.height, shape.width, shape.kernel_size,
                 shape.stride, shape.padding]
        row = {"set": label, "name": name, "kind": kind(shape, tiles), "layer": layer,
               "depthwise": shape.depthwise, "residual": shape.residual, "tiles": tiles,
               "rtl_cycles": rtl["cycles"],
               "model_cycles": m["cycles"], "error": m["cycles"] / rtl["cycles"] - 1,
               "macs": m["macs"], "seconds": time.perf_counter() - start}
        if row["kind"] == "FC":      # the share of the read bus's cycles that carry weights
            desc = descriptor_for(shape, tiles)
            weights = sum(n for k, _, n in tiling.transfers(desc) if k == DmaKind.WEIGHT)
            row["weight_bus_share"] = weights / (cfg.axi_data_width // 8 * rtl["cycles"])
        rows.append(row)
        t = tiles
        share = row.get("weight_bus_share")
        share = f"weights {100 * share:.1f}% of the bus" if share else ""
        print(f"{label:9} {row['kind']:11} {str(tuple(layer)):34} {t['k']:>4} {t['c']:>4} {t['xo']:>4} "
              f"{t['yo']:>4} {row['rtl_cycles']:>9} {row['model_cycles']:>9} "
              f"{100 * row['error']:+6.2f}%  {name} {share}", flush=True)
    return rows


def summary(rows):
    out = {}
    for r in rows:
        s = out.setdefault(r["set"], {}).setdefault(r["kind"], {"layers": 0, "max_error": 0.0, "errors": []})
        s["layers"] += 1
        s["errors"].append(abs(r["error"]))
        s["max_error"] = max(s["max_error"], abs(r["error"]))
    for kinds in out.values():
        for s in kinds.values():
            s["mean_error"] = sum(s.pop("errors")) / s["layers"]
    return out


def _nelder_mead(f, x0, iterations=400):
    """Minimise ``f`` from ``x0`` (the downhill simplex method)."""
    points = [np.array(x0, float)]
    for i in range(len(x0)):
        p = np.array(x0, float)
        p[i] += max(0.2 * abs(p[i]), 0.5)
        points.append(p)
    values = [f(p) for p in points]
    for _ in range(iterations):
        order = np.argsort(values)
        points, values = [points[i] for i in order], [values[i] for i in order]
        centre = np.mean(points[:-1], axis=0)
        reflected = 2 * centre - points[-1]
        fr = f(reflected)
        if fr < values[0]:
            expanded = 3 * centre - 2 * points[-1]
            fe = f(expanded)
            points[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            points[-1], values[-1] = reflected, fr
        else:
            contracted = (centre + points[-1]) / 2
            fc = f(contracted)
            if fc < values[-1]:
                points[-1], values[-1] = contracted, fc
            else:
                points = [(p + points[0]) / 2 for p in points]
                values = [f(p) for p in points]
    return points[int(np.argmin(values))]


FITTED_CONSTANTS = ("fixed", "read_slot", "write_slot", "step", "drain_tile")
RESIDUAL_CONSTANTS = ("residual_bus",)


def _fit_cost(errors):
    """Least mean squared relative error, plus a tenth of the largest one squared."""
    e = np.array(errors)
    return float(np.mean(e ** 2) + 0.1 * np.max(np.abs(e)) ** 2)


def fit(cfg, rows, names=FITTED_CONSTANTS):
    """``planner.TIMING`` with ``names`` refitted to ``rows`` (RTL cycles of layers)."""
    descs = [(descriptor_for(ConvShape(*r["layer"], depthwise=r["depthwise"], residual=r["residual"]), r["tiles"]),
              r["rtl_cycles"]) for r in rows]

    def cost(x):
        if min(x) < 0:
            return float("inf")
        timing = dict(planner.TIMING, **dict(zip(names, x)))
        return _fit_cost([model(cfg, d, timing)["cycles"] / rtl - 1 for d, rtl in descs])

    best = _nelder_mead(cost, [planner.TIMING[n] for n in names])
    return {n: round(float(v), 3) for n, v in zip(names, best)}


def fit_pools(cfg, rows):
    """``pool_model.POOL_TIMING`` refitted to ``rows`` (RTL cycles of pooling passes)."""
    names = list(POOL_TIMING)
    passes = [({**r["pass"], "mode": PoolMode[r["pass"]["mode"]]}, r["rtl_cycles"]) for r in rows]

    def cost(x):
        if min(x) < 0:
            return float("inf")
        timing = dict(zip(names, x))
        return _fit_cost([pool_model(cfg, p, timing)["cycles"] / rtl - 1 for p, rtl in passes])

    best = _nelder_mead(cost, [POOL_TIMING[n] for n in names], iterations=1500)
    return {n: round(float(v), 3) for n, v in zip(names, best)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.model_validation",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--kp", type=int, default=AccelConfig.kp)
    parser.add_argument("--yp", type=int, default=AccelConfig.yp)
    parser.add_argument("--fit", action="store_true",
                        help="refit the fitted constants to the fitted set and print them")
    parser.add_argument("--fitted-only", action="store_true", help="run the fitted set only")
    parser.add_argument("--out", default="build/bench/model_validation.json")
    args = parser.parse_args(argv)
    cfg = AccelConfig(kp=args.kp, yp=args.yp)
    rng = np.random.default_rng(2026)
    print(f"KP={cfg.kp} YP={cfg.yp}, DRAM latency {LATENCY} cycles; cycles: RTL and model")
    print(f"{'set':9} {'kind':11} {'(C, K, H, W, R, S, P)':34} {'T_K':>4} {'T_C':>4} {'T_XO':>4} "
          f"{'T_YO':>4} {'RTL':>9} {'model':>9} {'error':>7}")
    held_out = HELD_OUT + network_cases()
    fitted_shapes = {replace(as_case(c)[0], name="", residual=r) for c in FITTED for r in (False, True)}
    overlap = [s for s, _, _ in map(as_case, held_out) if replace(s, name="") in fitted_shapes]
    if overlap:
        raise SystemExit(f"held-out layers among the fitted ones: {overlap}")
    rows = run(cfg, FITTED, "fitted", rng)
    residual_fitted = [(replace(s, residual=True), t, n) for s, t, n in map(as_case, FITTED)
                       if s.height > 1 and t["yo"] >= s.out_width]
    residual_rows = run(cfg, residual_fitted, "fitted", rng)
    pool_rows = run_pools(cfg, POOL_FITTED, "fitted", rng)
    if args.fit:
        print(f"refitted constants: {fit(cfg, rows)}")
        print(f"refitted residual constants: {fit(cfg, residual_rows, RESIDUAL_CONSTANTS)}")
        print(f"refitted pool constants: {fit_pools(cfg, pool_rows)}")
    rows += residual_rows + pool_rows
    if not args.fitted_only:
        rows += run(cfg, held_out, "held-out", rng)
        residual_held = [(replace(s, residual=True), t, n) for s, t, n in map(as_case, HELD_OUT)
                         if s.height > 1 and (t is None or t["yo"] >= s.out_width)]
        rows += run(cfg, residual_held, "held-out", rng)
        rows += run_pools(cfg, POOL_HELD_OUT, "held-out", rng)
    result = summary(rows)
    for label, kinds in result.items():
        for name, s in sorted(kinds.items()):
            print(f"{label:9} {name:12} {s['layers']:>3} layers: max |error| {100 * s['max_error']:5.2f}%, "
                  f"mean {100 * s['mean_error']:5.2f}%")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": cfg.to_dict(), "latency": LATENCY, "timing": planner.TIMING,
                               "pool_timing": POOL_TIMING, "summary": result, "layers": rows},
                              indent=1, default=int) + "\n")
    held = [abs(r["error"]) for r in rows if r["set"] == "held-out"]
    if held:
        print(f"held-out layers within 5%: {sum(e <= 0.05 for e in held)} of {len(held)}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
