"""Design-space exploration: pruned search equals exhaustive search on a reduced space,
the resource model, the layers the accelerator runs and the network report."""

import json
from dataclasses import replace

import numpy as np
import pytest

from host.compiler.planner import ConvShape, plan
from host.compiler.pool_model import pool_model
from host.runtime.host_ops import shifted_copies
from host.tools import dse, networks
from hw.config import AccelConfig


def test_search_equals_exhaustive_on_reduced_space():
    layers, cpu = dse.accelerator_layers(networks.resnet18())
    assert cpu == []
    shapes = [s for s in layers if s.height <= 14]
    space = {"kp": (2, 4, 8), "yp": (2, 4), "streaming_buffer_depth": (1 << 16,),
             "stationary_buffer_depth": (1 << 10, 1 << 12), "output_buffer_depth": (1 << 12, 1 << 14),
             "line_buffer_depth": (256,), "dsp_packing": (False, True), "drain_words": (1, 2)}
    budget = {"LUT": 230_400, "FF": 460_800, "DSP": 400, "BRAM36": 312, "URAM": 96}
    got, ref = dse.search(shapes, space, budget), dse.exhaustive_search(shapes, space, budget)
    assert got["cycles"] == ref["cycles"]
    assert got["config"] == ref["config"]
    # 400 DSPs hold a KP 8 x YP 4 array only with two products per DSP
    assert (got["config"].kp, got["config"].yp, got["config"].dsp_packing) == (8, 4, True)


def test_resource_model_matches_calibration():
    """The logic model reproduces the yosys estimates it was calibrated on: the arrays,
    the line buffer, and the three whole accelerators of ``dse.WHOLE`` (LUT and FF within
    one unit, DSP within two; block RAM within 2 BRAM36: 123.5, 847.5 and 266.5
    synthesized)."""
    assert round(dse.LUT_ARRAY_BASE + dse.LUT_PER_DPE * 12) == 1603
    for fields, synthesized in dse.WHOLE:
        model = dse.resources(AccelConfig(**fields))
        for name, value in synthesized.items():
            assert abs(model[name] - value) <= (2 if name == "DSP" else 1), (fields, name, model[name], value)
    for fields, bram in zip((f for f, _ in dse.WHOLE), (123.5, 847.5, 266.5)):
        assert abs(dse.resources(AccelConfig(**fields))["BRAM36"] - bram) <= 2
    assert dse._by_yp(dse.LINE_BUFFER["LUT"], 8) == 15_016
    assert dse._by_yp(dse.LINE_BUFFER["LUT"], 12) == (15_016 + 33_698) / 2


def test_packed_resource_model():
    """With ``dsp_packing`` the array takes half the DSPs (one per pair of products), and
    its logic reproduces the packed arrays' yosys estimates."""
    packed = dse.resources(AccelConfig(kp=8, yp=8, dsp_packing=True))
    plain = dse.resources(AccelConfig(kp=8, yp=8))
    assert plain["DSP"] == 576 + 2 * 2 * 8 + dse.REST["DSP"][0]
    assert round(dse.PACKED_LUT_ARRAY_BASE + dse.PACKED_LUT_PER_DPE * 12) == 1699
    assert round(dse.PACKED_LUT_ARRAY_BASE + dse.PACKED_LUT_PER_DPE * 64) == 9031
    assert round(dse.PACKED_FF_ARRAY_BASE + dse.PACKED_FF_PER_DPE * 64) == 16166
    assert plain["DSP"] - packed["DSP"] == 288
    assert packed["BRAM36"] == plain["BRAM36"]


def test_requantizers_follow_the_drain():
    """Each further word drained per cycle adds YP requantizers and the drain's selection
    of a word of KP x YP sums, and the output buffer's banks are each as wide as a word."""
    one, four = dse.resources(AccelConfig(drain_words=1)), dse.resources(AccelConfig(drain_words=4))
    for name in ("LUT", "FF", "DSP"):
        assert four[name] - one[name] == round(3 * 4 * dse.REQUANT[name] + 3 * 12 * dse.REST[name][2])
    # two halves of 1365 words of 384 bits: one bank, 11 RAMB18 (512 x 36) wide and three
    # deep = 16.5; four banks of 342 words, each one RAMB18 deep = 5.5
    assert four["BRAM36"] - one["BRAM36"] == 2 * (4 * 5.5 - 16.5)


def test_depthwise_lanes_cost_their_window_logic():
    """Each depthwise lane past the first adds its line-buffer window logic and the
    array's lane selection: 9 lanes at YP = 8, as synthesized, 124,997 - 15,016 LUT in the
    line buffer and 8 x 8 x 72 in the array."""
    one = dse.resources(AccelConfig(kp=12, yp=8, max_depthwise_lanes=1))
    nine = dse.resources(AccelConfig(kp=12, yp=8))
    assert nine["LUT"] - one["LUT"] == 124_997 - 15_016 + 8 * 8 * 72
    assert nine["FF"] - one["FF"] == 42_750 - 5_374 + 8 * 8 * 72
    assert nine["DSP"] == one["DSP"] and nine["BRAM36"] == one["BRAM36"]


def test_block_ram_of_the_buffers():
    """BRAM36 of the default configuration, by hand: streaming buffer 2 x 455 words of
    9 x 16 bytes (1152 bits: 16 x 72-bit columns of 512 words, two deep) = 32; stationary
    buffer 2 x 1365 words of 3 x 9 bytes (216 bits: 6 RAMB18 of 512 x 36 wide, six deep) =
    18; parameters 8192 x 88 bits (5 x 4 of 2048 x 18) = 20; output buffer two halves of
    two banks of 683 x 384 bits (11 of 1024 x 36) = 44; residual queue 1024 x 134 bits (4
    of 1024 x 36) = 4; DMA and controller FIFOs 3.5."""
    assert dse.resources(AccelConfig())["BRAM36"] == 32 + 18 + 20 + 44 + 4 + 3.5
    # a streaming buffer four times as deep: 2 x 1820 words of 1152 bits = 128 (16 x 8)
    deeper = dse.resources(AccelConfig(streaming_buffer_depth=1 << 18))
    assert deeper["BRAM36"] - dse.resources(AccelConfig())["BRAM36"] == 128 - 32


def test_grouped_layers_run_as_the_compiler_places_them():
    """MobileNetV2's 17 depthwise layers are depthwise accelerator layers, planned whole
    on every KP (one group of depthwise lanes per tile when KP > 9); other groups run one
    group at a time."""
    acc, cpu = dse.accelerator_layers(networks.mobilenet_v2())
    depthwise = [s for s in acc if s.depthwise]
    assert cpu == [] and len(depthwise) == 17
    s = depthwise[0]
    for cfg in (AccelConfig(), AccelConfig(kp=16)):
        total, plans = dse.evaluate(cfg, [s])
        assert plans[0].tiles["k"] <= cfg.max_depthwise_tile_k
    assert AccelConfig(kp=16).max_depthwise_tile_k == 9 and AccelConfig(kp=9).max_depthwise_tile_k == 65535
    grouped = {"name": "g", "C": 8, "K": 12, "H": 6, "W": 6, "kernel": 3, "stride": 1, "padding": 1,
               "groups": 4}
    acc, _ = dse.accelerator_layers([grouped])
    assert acc == [ConvShape(2, 3, 6, 6, 3, 1, 1, f"g[{g}]") for g in range(4)]


def test_large_kernels_run_decomposed():
    """ResNet's 7x7 stride-2 stem runs as the compiler runs it: one 3x3 conv, padding 0,
    over the 9 shifted copies of the input (27 channels) of 2 * (112 - 1) + 3 = 225 rows
    and columns; its network MACs are the 7x7 conv's."""
    acc, _ = dse.accelerator_layers(networks.resnet50())
    assert acc[0] == ConvShape(27, 64, 225, 225, 3, 2, 0, "conv1")
    assert dse.layer_macs(networks.resnet50()[0]) == 3 * 64 * 49 * 112 * 112


def test_network_report_counts_cpu_layers_apart():
    """Utilization: the accelerator layers' network MACs over their cycles (and the
    pooling engine's: the 5x5 layer's input rearrangement; and the queue's, per command:
    4 layers and 4 passes) x MACs per cycle, also
    without the depthwise layer (C / groups = 1 channel per kernel); the 5x5 layer counts
    its own MACs (not the decomposed conv's); the stride-3 layer's MACs are reported
    apart."""
    def row(name, c, k, h, kernel, stride, padding, groups=1):
        return {"name": name, "C": c, "K": k, "H": h, "W": h, "kernel": kernel, "stride": stride,
                "padding": padding, "groups": groups}
    layers = [row("a", 16, 32, 10, 3, 1, 1), row("dw", 32, 32, 10, 3, 2, 1, groups=32),
              row("b", 32, 20, 5, 1, 1, 0), row("c", 4, 8, 9, 5, 1, 2), row("s3", 8, 8, 9, 3, 3, 0)]
    cfg = AccelConfig()
    r = dse.network_report(cfg, layers, clock_mhz=100)
    dense = 16 * 32 * 9 * 100 + 32 * 20 * 25 + 4 * 8 * 25 * 81
    depthwise = 32 * 9 * 25
    shapes, _ = dse.accelerator_layers(layers)
    cycles = [plan(cfg, s).cycles for s in shapes]
    pools = [pool_model(cfg, p)["cycles"] for _, p in dse.pool_passes(cfg, layers)]
    assert len(pools) == 4                   # the 5x5 kernel's 2 x 2 pieces of its input
    queue = dse.QUEUE_COMMAND_CYCLES * (len(shapes) + len(pools))
    assert r["queue_cycles"] == queue
    total = sum(cycles) + sum(pools) + queue
    assert r["accelerator_macs"] == dense + depthwise and r["cycles"] == total
    assert r["pool_cycles"] == sum(pools) and [p["mode"] for p in r["pools"]] == ["COPY"] * 4
    assert r["depthwise_macs"] == depthwise and r["depthwise_cycles"] == cycles[1]
    assert r["cpu_macs"] == 8 * 8 * 9 * 9 and r["cpu_layers"] == 1
    assert r["utilization"] == pytest.approx((dense + depthwise) / (total * 108))
    assert r["without_depthwise"] == pytest.approx(dense / ((total - cycles[1]) * 108))
    assert r["fps"] == pytest.approx(100e6 / total)


def test_pools_and_fused_additions_as_the_compiler_places_them():
    """ResNet-18: the stem's input rearranged by 9 copy passes, the max pool and the
    global average on the pooling engine; every block's second conv carries its residual
    addition; a fused layer is planned with whole output rows and costs at least the
    plain layer."""
    layers = networks.resnet18()
    passes = dse.pool_passes(AccelConfig(), layers)
    assert [p["mode"].name for _, p in passes] == ["COPY"] * 9 + ["MAX", "GLOBAL"]
    # the copies write every input byte the rearranged input holds (host_ops.shifted_copies,
    # with the zero point 0 around a tensor of ones)
    ones = shifted_copies(np.ones((1, 3, 224, 224), np.uint8), kernel=(7, 7), stride=2, padding=(3, 3),
                          pieces=(3, 3), zero_point=0)
    assert sum(p["channels"] * p["height"] * p["width"] for _, p in passes[:9]) == ones.sum()
    maxpool, average = passes[9][1], passes[10][1]
    assert (maxpool["channels"], maxpool["height"], maxpool["out_height"]) == (64, 112, 56)
    # the global average reads each 7x7 channel as one row (pool_model.global_in_one_row)
    assert (average["channels"], average["height"], average["width"]) == (512, 1, 49)
    shapes, _ = dse.accelerator_layers(layers)
    fused = [s for s in shapes if s.residual]
    assert [s.name for s in fused] == [f"layer{i}.{b}.conv2" for i in range(1, 5) for b in range(2)]
    cfg = AccelConfig()
    for s in fused:
        p = plan(cfg, s)
        assert p.tiles["yo"] == s.out_width
        assert p.cycles >= plan(cfg, replace(s, residual=False)).cycles
    report = dse.network_report(cfg, layers)
    assert report["pool_cycles"] == sum(pool_model(cfg, p)["cycles"] for _, p in passes)
    assert 0 < report["pool_cycles"] < 0.05 * report["cycles"]


def test_clock_is_the_estimate_capped_at_the_board_clock(tmp_path):
    """fps use each configuration's estimated clock, capped at the board's pl_clk0; a
    configuration without an estimate runs at the cap, marked assumed; cached estimates
    are not synthesized again."""
    slow, fast = AccelConfig(), AccelConfig(kp=8, yp=8)
    cache = tmp_path / "clock_estimates.json"
    cache.write_text(json.dumps({dse.config_key(slow): {"estimated_clock_mhz": 151.5},
                                 dse.config_key(fast): {"estimated_clock_mhz": 260.0}}))
    estimates = dse.estimate_clocks([slow, fast], cache, tmp_path / "work")   # nothing to do
    assert not (tmp_path / "work").exists()
    assert dse.clock_for(slow, estimates) == (151.5, "estimated")
    assert dse.clock_for(fast, estimates) == (dse.CLOCK_MHZ, "estimated")
    assert dse.clock_for(AccelConfig(kp=4), estimates) == (dse.CLOCK_MHZ, "assumed")
    assert dse.config_key(AccelConfig()) == dse.config_key(AccelConfig())
    assert dse.config_key(AccelConfig()) != dse.config_key(AccelConfig(drain_words=1))
    # the estimates measured on this design ship with it: the default configuration's
    shipped = dse.load_clock_estimates(tmp_path / "no_cache.json")
    assert 0 < shipped[dse.config_key(AccelConfig())]["estimated_clock_mhz"] <= 1000
