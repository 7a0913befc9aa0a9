"""Random quantized PyTorch conv layers (engine qnnpack) for golden-model tests."""

import numpy as np
import torch
import torch.ao.nn.intrinsic.quantized as nniq
import torch.ao.nn.quantized as nnq

torch.backends.quantized.engine = "qnnpack"


def quantized_input(x_u8, scale, zero_point):
    return torch._make_per_tensor_quantized_tensor(torch.from_numpy(np.ascontiguousarray(x_u8)),
                                                   float(scale), int(zero_point))


def random_conv(rng, *, c, k, kernel, stride, padding, per_channel, relu, groups=1):
    """A quantized Conv2d / ConvReLU2d with symmetric qint8 weights and random qparams;
    ``kernel`` and ``padding`` are ints or (rows, columns); ``groups`` as torch's."""
    shape = tuple(kernel) if isinstance(kernel, tuple) else (kernel, kernel)
    w = torch.from_numpy(rng.normal(0, 1, size=(k, c // groups) + shape).astype(np.float32))
    if per_channel:
        scales = torch.from_numpy(rng.uniform(0.002, 0.02, size=k))
        wq = torch.quantize_per_channel(w * scales.float().view(-1, 1, 1, 1) * 40, scales,
                                        torch.zeros(k, dtype=torch.long), 0, torch.qint8)
    else:
        wq = torch.quantize_per_tensor(w, float(w.abs().max()) / 127, 0, torch.qint8)
    cls = nniq.ConvReLU2d if relu else nnq.Conv2d
    module = cls(c, k, kernel, stride=stride, padding=padding, groups=groups)
    bias = torch.from_numpy(rng.normal(0, 2, size=k).astype(np.float32))
    module.set_weight_bias(wq, bias)
    return module


def output_qparams(rng, module, x_u8, s_x, z_x, scale_factor=1.0):
    """An output scale that keeps the layer's outputs mostly in range, like calibration
    (``scale_factor`` < 1 makes it finer, so outputs clamp)."""
    import torch.nn.functional as F
    w = module.weight().dequantize()
    x = (torch.from_numpy(x_u8.astype(np.float32)) - z_x) * s_x
    y = F.conv2d(x, w, module.bias(), module.stride, module.padding, groups=getattr(module, "groups", 1))
    lo, hi = min(float(y.min()), 0.0), max(float(y.max()), 1e-3)
    span = (hi - lo) * rng.uniform(0.5, 1.2)
    scale = span / 255 * scale_factor
    zero_point = int(np.clip(round(-lo / scale * rng.uniform(0.8, 1.2)), 0, 255))
    return scale, zero_point
