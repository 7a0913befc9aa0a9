"""Large kernels (5x5, 7x7, ... up to 9x9) as one 3x3 conv over a rearranged input
(host.compiler.decompose) against PyTorch's quantized conv, engine qnnpack, bit for bit."""

import numpy as np
import pytest

from host.compiler.decompose import LargeConv, decompose, large_conv_from_module
from host.golden.quant import QuantConv, QuantError
from host.runtime.sim.torch_layers import output_qparams, quantized_input, random_conv

CASES = [(kernel, stride, padding) for kernel in (5, 7) for stride in (1, 2)
         for padding in range(kernel)]


def random_layer(seed, kernel, stride, padding, relu=False):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(1, 9))
    k = int(rng.integers(1, 17))
    h = int(rng.integers(max(kernel - 2 * padding, 1), 24))
    w = int(rng.integers(max(kernel - 2 * padding, 1), 24))
    per_channel = bool(seed % 2)
    s_x = float(rng.uniform(0.002, 0.1))
    z_x = int(rng.integers(0, 256))
    module = random_conv(rng, c=c, k=k, kernel=kernel, stride=stride, padding=padding,
                         per_channel=per_channel, relu=relu)
    x = rng.integers(0, 256, size=(int(rng.integers(1, 3)), c, h, w), dtype=np.uint8)
    module.scale, module.zero_point = output_qparams(rng, module, x, s_x, z_x)
    return module, x, s_x, z_x


def torch_output(module, x, s_x, z_x):
    return module(quantized_input(x, s_x, z_x)).int_repr().numpy()


@pytest.mark.parametrize("kernel,stride,padding", CASES)
def test_decomposed_3x3_equals_pytorch(kernel, stride, padding):
    for seed in range(4):
        module, x, s_x, z_x = random_layer(1000 * kernel + 100 * stride + 10 * padding + seed,
                                           kernel, stride, padding, relu=seed == 3)
        expected = torch_output(module, x, s_x, z_x)
        large = large_conv_from_module(module, s_x, z_x)
        assert large.kernel_size == kernel
        assert np.array_equal(large(x), expected)                   # the direct golden model
        for pieces in (None, 3):
            conv3, transform = decompose(large, pieces)
            n, n_columns = transform.pieces
            assert n == n_columns == (3 if pieces == 3 else -(-kernel // 3))
            assert isinstance(conv3, QuantConv)
            assert conv3.kernel_size == 3 and conv3.padding == 0 and conv3.stride == stride
            assert conv3.in_channels == n * n * x.shape[1]
            xt = transform(x)
            assert xt.dtype == np.uint8 and xt.shape[:2] == (x.shape[0], n * n * x.shape[1])
            got = conv3(xt)
            assert got.shape == expected.shape
            bad = int((got != expected).sum())
            assert bad == 0, f"seed {seed}, pieces {pieces}: {bad} of {got.size} outputs differ"


def test_bias_is_recomputed_from_the_float_bias():
    """bias_q of the 3x3 conv = round(bias / (s_x s_w)) - z_x * sum(all original weights)."""
    module, x, s_x, z_x = random_layer(8, 7, 2, 3)            # even seed: per-tensor weights
    conv3, _ = decompose(large_conv_from_module(module, s_x, z_x), pieces=3)
    w = module.weight()
    w_int = w.int_repr().numpy().astype(np.int64)
    s_xw = (np.float32(s_x) * np.float32(w.q_scale())).astype(np.float32)
    b = module.bias().detach().numpy().astype(np.float32)
    expected = np.rint((b / s_xw).astype(np.float32)).astype(np.int64) - z_x * w_int.reshape(len(b), -1).sum(1)
    assert np.array_equal(conv3.bias_q.astype(np.int64), expected)
    # the weights: piece (a, b) of the zero-padded 9x9 kernel, channel block a * 3 + b
    c = module.in_channels
    w9 = np.zeros(w_int.shape[:2] + (9, 9), dtype=np.int64)
    w9[:, :, :7, :7] = w_int
    for a in range(3):
        for bb in range(3):
            block = conv3.weight[:, (3 * a + bb) * c:(3 * a + bb + 1) * c].astype(np.int64)
            assert np.array_equal(block, w9[:, :, 3 * a:3 * a + 3, 3 * bb:3 * bb + 3])


@pytest.mark.parametrize("kernel", [2, 3, 4, 6, 8, 9])
def test_other_kernel_sizes(kernel):
    for stride in (1, 2):
        padding = (kernel - 1) // 2 + stride - 1
        module, x, s_x, z_x = random_layer(kernel * 10 + stride, kernel, stride, padding)
        conv3, transform = decompose(large_conv_from_module(module, s_x, z_x))
        assert np.array_equal(conv3(transform(x)), torch_output(module, x, s_x, z_x))


def test_unsupported_large_convs_are_refused():
    rng = np.random.default_rng(0)
    module = random_conv(rng, c=2, k=2, kernel=11, stride=1, padding=5, per_channel=False, relu=False)
    with pytest.raises(QuantError, match="at most 9x9"):
        large_conv_from_module(module, 0.05, 3)
    with pytest.raises(QuantError, match="padding"):
        LargeConv(weight=np.zeros((1, 1, 5, 5)), bias_q=[0], multiplier=0.1, input_zero_point=0,
                  output_zero_point=0, padding=5)
    with pytest.raises(QuantError, match="stride"):
        LargeConv(weight=np.zeros((1, 1, 5, 5)), bias_q=[0], multiplier=0.1, input_zero_point=0,
                  output_zero_point=0, stride=3)
    conv = LargeConv(weight=np.zeros((1, 1, 7, 7)), bias_q=[0], multiplier=0.1, input_zero_point=0,
                     output_zero_point=0)
    with pytest.raises(QuantError, match="pieces"):
        decompose(conv, pieces=2)
    _, transform = decompose(conv)
    with pytest.raises(QuantError, match="no output"):
        transform(np.zeros((1, 1, 5, 5), dtype=np.uint8))


RECTANGULAR = [((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0)), ((1, 3), 1, (0, 1)), ((3, 1), 1, (1, 0)),
               ((1, 7), 2, (0, 3)), ((2, 5), 1, (1, 2)), ((9, 4), 2, (4, 0)), ((3, 3), 1, (1, 0)),
               ((3, 3), 2, (0, 2)), ((5, 5), 1, (2, 0))]


@pytest.mark.parametrize("kernel,stride,padding", RECTANGULAR)
def test_rectangular_kernels_and_unequal_padding_equal_pytorch(kernel, stride, padding):
    """Inception-v3's 1x7 / 7x1 and 1x3 / 3x1, other R x S up to 9, and unequal padding:
    the direct golden model and the decomposition equal PyTorch bit for bit."""
    r, s = kernel
    for seed in range(3):
        rng = np.random.default_rng(hash((kernel, stride, padding, seed)) % 2**32)
        c, k = int(rng.integers(1, 9)), int(rng.integers(1, 17))
        h = int(rng.integers(max(r - 2 * padding[0], 1), 20))
        w = int(rng.integers(max(s - 2 * padding[1], 1), 20))
        module = random_conv(rng, c=c, k=k, kernel=kernel, stride=stride, padding=padding,
                             per_channel=bool(seed % 2), relu=seed == 2)
        s_x, z_x = float(rng.uniform(0.002, 0.1)), int(rng.integers(0, 256))
        x = rng.integers(0, 256, size=(1, c, h, w), dtype=np.uint8)
        module.scale, module.zero_point = output_qparams(rng, module, x, s_x, z_x)
        expected = torch_output(module, x, s_x, z_x)
        large = large_conv_from_module(module, s_x, z_x)
        assert large.kernel_shape == kernel
        assert np.array_equal(large(x), expected)
        conv3, transform = decompose(large)
        assert transform.pieces == (-(-r // 3), -(-s // 3))
        assert conv3.kernel_size == 3 and conv3.padding == 0 and conv3.stride == stride
        assert np.array_equal(conv3(transform(x)), expected), (kernel, stride, padding, seed)


def test_rectangular_geometry_is_checked():
    with pytest.raises(QuantError, match=r"padding \(0, 7\).*1x7.*\[0, 0\] x \[0, 6\]"):
        LargeConv(weight=np.zeros((1, 1, 1, 7)), bias_q=[0], multiplier=0.1, input_zero_point=0,
                  output_zero_point=0, padding=(0, 7))
    with pytest.raises(QuantError, match="10x1.*at most 9x9"):
        LargeConv(weight=np.zeros((1, 1, 10, 1)), bias_q=[0], multiplier=0.1, input_zero_point=0,
                  output_zero_point=0)
    with pytest.raises(QuantError, match="must be square"):
        QuantConv(weight=np.zeros((1, 1, 1, 3)), bias_q=[0], multiplier=0.1, input_zero_point=0,
                  output_zero_point=0)
    rng = np.random.default_rng(0)
    module = random_conv(rng, c=2, k=2, kernel=(3, 3), stride=(2, 1), padding=1,
                         per_channel=False, relu=False)
    with pytest.raises(QuantError, match=r"stride \(2, 1\).*same in both axes"):
        large_conv_from_module(module, 0.05, 3)
