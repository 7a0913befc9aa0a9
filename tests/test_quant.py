"""Golden model (host.golden.quant) against PyTorch's quantized conv, engine qnnpack."""

import numpy as np
import pytest
import torch
import torch.ao.nn.quantized as nnq

from host.compiler.torch_frontend import conv_from_torch
from host.golden.quant import QuantConv, QuantError, requantize
from host.runtime.sim.torch_layers import output_qparams, quantized_input, random_conv

LAYERS = 240


def random_case(seed):
    rng = np.random.default_rng(seed)
    small = seed % 4 != 0
    c = int(rng.integers(1, 33 if small else 301))
    k = int(rng.integers(1, 33 if small else 301))
    kernel = int(rng.choice([1, 3]))
    stride = int(rng.choice([1, 2]))
    padding = int(rng.integers(0, 2)) if kernel == 3 else 0
    h = int(rng.integers(kernel, 21))
    w = int(rng.integers(kernel, 21))
    per_channel = bool(rng.integers(0, 2))
    act = ["none", "relu", "relu6", "leaky"][seed % 4 if seed % 8 < 4 else int(rng.integers(0, 4))]
    s_x = float(rng.uniform(0.002, 0.1))
    z_x = int(rng.integers(0, 256))
    module = random_conv(rng, c=c, k=k, kernel=kernel, stride=stride, padding=padding,
                         per_channel=per_channel, relu=act == "relu")
    x = rng.integers(0, 256, size=(int(rng.integers(1, 3)), c, h, w), dtype=np.uint8)
    module.scale, module.zero_point = output_qparams(rng, module, x, s_x, z_x)
    activation = None
    if act == "relu6":
        activation = nnq.ReLU6()
    elif act == "leaky":
        activation = nnq.LeakyReLU(scale=module.scale * float(rng.uniform(0.5, 1.5)),
                                   zero_point=int(rng.integers(0, 256)),
                                   negative_slope=float(rng.uniform(0.01, 0.3)))
    return module, activation, x, s_x, z_x


@pytest.mark.parametrize("chunk", range(8))
def test_golden_equals_pytorch_qnnpack(chunk):
    mismatches, outputs = 0, 0
    for seed in range(chunk * LAYERS // 8, (chunk + 1) * LAYERS // 8):
        module, activation, x, s_x, z_x = random_case(seed)
        y = module(quantized_input(x, s_x, z_x))
        if activation is not None:
            # qnnpack's conv returns channels_last; PyTorch's quantized ReLU6 misplaces
            # elements of such tensors, so activations are applied in NCHW order.
            y = activation(y.contiguous())
        expected = y.int_repr().numpy()
        got = conv_from_torch(module, s_x, z_x, activation=activation)(x)
        assert got.shape == expected.shape
        bad = int((got != expected).sum())
        assert bad == 0, f"layer seed {seed}: {bad} of {got.size} outputs differ from PyTorch"
        mismatches += bad
        outputs += got.size
    assert outputs > 0 and mismatches == 0


def test_golden_cases_cover_the_space():
    seen = set()
    for seed in range(LAYERS):
        module, activation, x, _, _ = random_case(seed)
        seen.add(("kernel", module.kernel_size[0]))
        seen.add(("stride", module.stride[0]))
        seen.add(("padding", module.padding[0]))
        seen.add(("per_channel", module.weight().qscheme() == torch.per_channel_affine))
        seen.add(("activation", type(activation).__name__ if activation else type(module).__name__))
        seen.add(("big", module.in_channels > 200 and module.out_channels > 200))
    for item in [("kernel", 1), ("kernel", 3), ("stride", 1), ("stride", 2), ("padding", 0),
                 ("padding", 1), ("per_channel", True), ("per_channel", False),
                 ("activation", "ReLU6"), ("activation", "LeakyReLU"),
                 ("activation", "ConvReLU2d"), ("activation", "Conv2d"), ("big", True)]:
        assert item in seen, item


def test_requantize_ties_round_to_even():
    acc = np.array([1, 3, 5, -1, -3, 7], dtype=np.int32)       # times 0.5: exact ties
    got = requantize(acc, np.float32(0.5), 100, 0, 255)
    assert got.tolist() == [100, 102, 102, 100, 98, 104]


def test_requantize_saturates():
    acc = np.array([2**31 - 1, -2**31], dtype=np.int32)
    assert requantize(acc, np.float32(4.0), 10, 3, 250).tolist() == [250, 3]


def _module(**kw):
    rng = np.random.default_rng(0)
    args = dict(c=4, k=3, kernel=3, stride=1, padding=1, per_channel=False, relu=False)
    args.update(kw)
    return random_conv(rng, **args)


def test_rejects_asymmetric_weights():
    import torch.ao.nn.quantized as nnq
    module = nnq.Conv2d(2, 2, 3)
    w = torch.quantize_per_tensor(torch.randn(2, 2, 3, 3), 0.01, 5, torch.qint8)
    module.set_weight_bias(w, None)
    with pytest.raises(QuantError, match="symmetric"):
        conv_from_torch(module, 0.1, 0)


@pytest.mark.parametrize("kwargs,message", [
    ({"kernel_size": 5}, "kernel 5x5 is not supported"),
    ({"kernel_size": 3, "stride": 3}, "stride 3 is not supported"),
    ({"kernel_size": 5, "groups": 2}, "grouped convolution"),
    ({"kernel_size": 3, "dilation": 2}, "dilation"),
    ({"kernel_size": (1, 3)}, "must be square"),
])
def test_rejects_unsupported_layers(kwargs, message):
    module = nnq.Conv2d(4, 4, **kwargs)
    with pytest.raises(QuantError, match=message):
        conv_from_torch(module, 0.1, 0)


@pytest.mark.parametrize("c,k,groups,kernel", [(8, 8, 8, 3), (12, 24, 12, 3), (8, 12, 4, 3),
                                               (16, 16, 16, 1), (18, 12, 3, 1)])
@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 1), (1, 0), (2, 2)])
def test_grouped_and_depthwise_layers_equal_pytorch(c, k, groups, kernel, stride, padding):
    """Depthwise (groups = C), depthwise with a channel multiplier and grouped layers,
    per-channel weights, golden model against torch."""
    import torch.ao.nn.quantized as nnq
    if kernel == 1:
        padding = 0
    rng = np.random.default_rng(c * 100 + k + groups + stride * 7 + padding)
    module = nnq.Conv2d(c, k, kernel, stride=stride, padding=padding, groups=groups)
    w = torch.from_numpy(rng.normal(0, 1, size=(k, c // groups, kernel, kernel)).astype(np.float32))
    scales = torch.from_numpy(rng.uniform(0.005, 0.02, size=k))
    wq = torch.quantize_per_channel(w * scales.float().view(-1, 1, 1, 1) * 40, scales,
                                    torch.zeros(k, dtype=torch.long), 0, torch.qint8)
    module.set_weight_bias(wq, torch.from_numpy(rng.normal(0, 1, size=k).astype(np.float32)))
    module.scale, module.zero_point = 0.05, 120
    x = rng.integers(0, 256, size=(2, c, 9, 11), dtype=np.uint8)
    expected = module(torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), 0.03, 37)).int_repr().numpy()
    conv = conv_from_torch(module, 0.03, 37)
    assert conv.groups == groups and conv.depthwise == (groups == c == k)
    assert np.array_equal(conv(x), expected)


def test_rejects_multiplier_that_overflows_int32():
    module = _module()
    module.scale = 1e-9
    with pytest.raises(QuantError, match="beyond int32"):
        conv_from_torch(module, 0.1, 0)


def test_rejects_bad_padding_and_input():
    w = np.zeros((2, 2, 1, 1), dtype=np.int8)
    with pytest.raises(QuantError, match="padding 1 is not supported for a 1x1 kernel"):
        QuantConv(w, [0, 0], [0.1, 0.1], 0, 0, padding=1)
    conv = QuantConv(w, [0, 0], [0.1, 0.1], 0, 0)
    with pytest.raises(QuantError, match="input must be u8"):
        conv(np.zeros((1, 2, 4, 4), dtype=np.int16))
    with pytest.raises(QuantError, match="positive normal float32"):
        QuantConv(w, [0, 0], [0.0, 0.1], 0, 0)


def test_relu6_table_matches_float_reference():
    """The ReLU6 table equals clamp(round(relu6(dequant(q)) / s) + z) for every input."""
    from host.compiler.torch_frontend import activation_table
    scale, zero_point = 0.0735, 37
    table, out_scale, out_zp = activation_table(nnq.ReLU6(), scale, zero_point)
    q = np.arange(256)
    ref = np.clip(np.rint(np.clip((q - zero_point) * np.float32(scale), 0, 6) / np.float32(scale))
                  + zero_point, 0, 255)
    assert (out_scale, out_zp) == (scale, zero_point)
    assert table.tolist() == ref.astype(np.uint8).tolist()


def _division_multiplier(s_w, s_x, s_o):
    """The candidate formula PyTorch does not use: a float32 division by the output scale."""
    return np.float32(np.float32(np.float32(s_w) * np.float32(s_x)) / np.float32(s_o))


def near_tie_cases(count, seed=0):
    """``(s_x, s_w, s_o, acc)`` where the reciprocal and the division formulas for M differ
    by one ulp and ``f32(acc * M)`` rounds to different integers under the two."""
    from host.compiler.torch_frontend import requantization_multiplier
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        s_x, s_w, s_o = (float(np.float32(v)) for v in rng.uniform([0.005, 0.001, 0.02], [0.05, 0.02, 0.2]))
        m_torch = requantization_multiplier([s_w], s_x, s_o)[0]
        m_div = _division_multiplier(s_w, s_x, s_o)
        if m_torch == m_div:
            continue
        for acc in range(1, 30000):          # |p| < 100: the output stays in u8 around z_o = 128
            a = np.float32(acc)
            if np.rint(np.float32(a * m_torch)) != np.rint(np.float32(a * m_div)) and abs(a * m_torch) < 100:
                found.append((s_x, s_w, s_o, acc))
                break
    return found


@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_multiplier_is_pytorchs_at_near_ties(kind):
    """Scales where ``f32(f32(s_w * s_x) * f32(1 / s_o))`` (PyTorch's qnnpack) and
    ``f32(f32(s_w * s_x) / s_o)`` differ by one ulp, and accumulators on which that flips the
    rounding: the golden model equals PyTorch's conv / linear, per-tensor and per-channel
    (one output channel per case), and the division formula would not."""
    import torch.ao.nn.intrinsic.quantized as nniq
    cases = near_tie_cases(6, seed=1 if kind == "conv" else 2)
    k = len(cases)
    accs = np.array([acc for *_, acc in cases])
    c = int(-(-accs.max() // 255))               # weights 1, input bytes summing to acc
    x = np.zeros((k, c), dtype=np.uint8)
    for i, acc in enumerate(accs):
        x[i, :acc // 255] = 255
        x[i, acc // 255] = acc % 255
    for per_channel in (False, True):
        for i, (s_x, s_w, s_o, acc) in enumerate(cases):
            scales = np.full(k, 0.5 * s_w)
            scales[i] = s_w                      # channel i has the case's scale
            w = torch.zeros(k, c, dtype=torch.int8)
            w[i] = 1
            if per_channel:
                wq = torch._make_per_channel_quantized_tensor(w, torch.from_numpy(scales),
                                                              torch.zeros(k, dtype=torch.long), 0)
            else:
                wq = torch._make_per_tensor_quantized_tensor(w, s_w, 0)
            if kind == "conv":
                module = nnq.Conv2d(c, k, 1)
                module.set_weight_bias(wq.reshape(k, c, 1, 1), None)
                xin = quantized_input(x[i].reshape(1, c, 1, 1), s_x, 0)
            else:
                module = nniq.LinearReLU(c, k) if per_channel else nnq.Linear(c, k)
                module.set_weight_bias(wq, None)
                xin = quantized_input(x[i].reshape(1, c), s_x, 0)
            module.scale, module.zero_point = s_o, 128
            expected = module(xin).int_repr().numpy().reshape(k)[i]
            conv = conv_from_torch(module, s_x, 0)
            got = conv(x[i].reshape(1, c, 1, 1))[0, i, 0, 0]
            assert got == expected, (kind, per_channel, s_x, s_w, s_o, acc)
            division = np.rint(np.float32(np.float32(acc) * _division_multiplier(s_w, s_x, s_o))) + 128
            assert division != expected          # the case discriminates the two formulas
