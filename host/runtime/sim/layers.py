"""Random layers and tiling cases shared by the testbenches, the fuzzer and the benches.

``random_conv`` draws a :class:`host.golden.quant.QuantConv` with outputs spread over the u8
range (random zero points, clamp and optional permutation table); ``random_layer`` a
plainer one (one multiplier, z_o = 128) as the benches use; ``TILER_CASES`` are
(shape, tiling) cases replayed both on the golden address model (tests/test_tiling.py)
and on the RTL Tiler and StepWalker (sim_tests/test_tiler.py, sim_tests/test_steps.py).
"""

import dataclasses

import numpy as np

from host.golden.quant import QuantConv
from host.golden.tiling import steps

__all__ = ["random_conv", "random_layer", "TILER_BASES", "TILER_CASES", "tiler_case_descriptor",
           "step_beats"]


def random_conv(nrng, c, k, kernel, stride, padding, activation_table):
    weight = nrng.integers(-128, 128, size=(k, c, kernel, kernel)).astype(np.int8)
    weight[0, 0] = -128
    bias = nrng.integers(-20000, 20000, size=k)
    # outputs spread over the u8 range: M ~ 1 / (typical |acc|)
    spread = np.sqrt(c * kernel * kernel) * 128 * 74
    multiplier = (nrng.uniform(0.5, 2.0, size=k) * 128 / spread).astype(np.float32)
    z_x, z_o = int(nrng.integers(0, 256)), int(nrng.integers(0, 256))
    table = nrng.permutation(256).astype(np.uint8) if activation_table else np.arange(256, dtype=np.uint8)
    return QuantConv(weight=weight, bias_q=bias, multiplier=multiplier, input_zero_point=z_x,
                     output_zero_point=z_o, stride=stride, padding=padding,
                     lo=int(nrng.integers(0, 40)), hi=int(nrng.integers(215, 256)), table=table)


def random_layer(rng, c, k, kernel, stride, padding, groups=1):
    weight = rng.integers(-128, 128, size=(k, c // groups, kernel, kernel)).astype(np.int8)
    multiplier = np.float32(128.0 / (np.sqrt(c // groups * kernel * kernel) * 128 * 74))
    return QuantConv(weight=weight, bias_q=rng.integers(-5000, 5000, size=k), multiplier=multiplier,
                     input_zero_point=int(rng.integers(0, 256)), output_zero_point=128,
                     stride=stride, padding=padding, groups=groups)


TILER_BASES = dict(input_addr=0x12_3456_7003, weight_addr=0x20_0000_0000, params_addr=0x30_0000_0010,
                   output_addr=0x40_0000_0005)

TILER_CASES = [
    dict(channels=5, height=9, width=11, kernels=7, tile_k=3, tile_c=2, tile_xo=4, tile_yo=5,
         stride=2, padding=1),
    dict(channels=3, height=8, width=8, kernels=4, tile_k=2, tile_c=3, tile_xo=3, tile_yo=8,
         stride=1, padding=1),                        # full output rows: rows merge
    dict(channels=4, height=6, width=7, kernels=5, tile_k=5, tile_c=2, tile_xo=6, tile_yo=7,
         stride=1, padding=0),                        # whole tile: channels merge; T_K == K: weights merge
    dict(channels=4, height=6, width=7, kernels=5, tile_k=5, tile_c=2, tile_xo=6, tile_yo=7,
         stride=1, padding=0, in_pitch=9, out_pitch=8),   # pitched rows: nothing merges
    dict(channels=6, height=10, width=13, kernels=3, tile_k=2, tile_c=4, tile_xo=3, tile_yo=4,
         stride=2, padding=2),
    dict(channels=2, height=7, width=5, kernels=9, tile_k=4, tile_c=8, tile_xo=2, tile_yo=3,
         kernel_size=1, stride=1, padding=0),         # 1x1, T_C > C
    dict(channels=3, height=5, width=6, kernels=2, tile_k=1, tile_c=3, tile_xo=1, tile_yo=2,
         kernel_size=1, stride=1, padding=1),         # 1x1 with padding: empty iAct tiles
    dict(channels=7, height=12, width=9, kernels=6, tile_k=4, tile_c=7, tile_xo=5, tile_yo=9,
         stride=2, padding=1),                        # stride 2, full rows, T_C == C, T_K < K
    dict(channels=1, height=3, width=3, kernels=1, tile_k=1, tile_c=1, tile_xo=1, tile_yo=1,
         stride=1, padding=0),                        # 1x1 output
    dict(channels=4, height=9, width=9, kernels=3, tile_k=2, tile_c=3, tile_xo=9, tile_yo=9,
         stride=1, padding=1),                        # one spatial tile, channel split
    dict(channels=3, height=11, width=10, kernels=4, tile_k=3, tile_c=3, tile_xo=4, tile_yo=3,
         kernel_size=1, stride=2, padding=2),
    dict(channels=2, height=4, width=20, kernels=2, tile_k=2, tile_c=1, tile_xo=2, tile_yo=20,
         stride=1, padding=1, in_pitch=32, out_pitch=20),  # input pitched, output merged
    # 1x1 layers: channel tiles of whole 9-channel blocks, weights (ceil(C / 9), K, 9)
    dict(channels=20, height=5, width=6, kernels=7, tile_k=4, tile_c=9, tile_xo=2, tile_yo=6,
         kernel_size=1, stride=1, padding=0),         # flat tiles; one weight read per block
    dict(channels=10, height=9, width=11, kernels=5, tile_k=5, tile_c=18, tile_xo=3, tile_yo=4,
         kernel_size=1, stride=2, padding=0),         # T_C > C, T_K == K: weights merge
    dict(channels=27, height=7, width=8, kernels=3, tile_k=2, tile_c=27, tile_xo=2, tile_yo=4,
         kernel_size=1, stride=2, padding=0),         # stride 2, full width: not flat
    dict(channels=9, height=4, width=5, kernels=2, tile_k=2, tile_c=9, tile_xo=4, tile_yo=5,
         kernel_size=1, stride=1, padding=0, in_pitch=8),    # pitched rows: not flat
    dict(channels=19, height=6, width=3, kernels=4, tile_k=3, tile_c=18, tile_xo=6, tile_yo=3,
         kernel_size=1, stride=1, padding=0),         # one flat tile of every row, C % 9 == 1
    dict(channels=6, height=7, width=9, kernels=6, tile_k=4, tile_c=4, tile_xo=3, tile_yo=5,
         stride=2, padding=1, depthwise=1),           # depthwise: one step per output tile
]


def tiler_case_descriptor(case):
    from host.golden.tiling import descriptor
    return descriptor(**TILER_BASES, **case)


def step_beats(d):
    """``host.golden.tiling.steps(d)`` as ``hw.control.steps.step_layout`` dicts, ``last`` set
    on the layer's last step: what the StepWalker emits, the Tiler and the Sequencer take."""
    beats = [{name: int(value) for name, value in dataclasses.asdict(st).items()} for st in steps(d)]
    for index, beat in enumerate(beats):
        beat["last"] = int(index == len(beats) - 1)
    return beats
