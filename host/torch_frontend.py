"""PyTorch (torch.ao quantized, engine qnnpack) -> accelerator layers.

Every torch-specific line of the host lives here, so that another quantization
front end (PT2E) can be added beside it.
"""

import numpy as np

from .quant import QuantError

__all__ = ["quant_conv_from_module", "activation_table"]


def _torch():
    import torch
    return torch


def activation_table(activation, scale, zero_point):
    """256-entry u8 table of a quantized elementwise module, for inputs quantized with
    (scale, zero_point). Built by running the module itself on every u8 value."""
    torch = _torch()
    x = torch._make_per_tensor_quantized_tensor(
        torch.arange(256, dtype=torch.uint8).reshape(1, 1, 1, 256), float(scale), int(zero_point))
    y = activation(x)
    if not getattr(y, "is_quantized", False) or y.dtype != torch.quint8:
        raise QuantError(f"{type(activation).__name__} does not return a quint8 tensor; "
                         f"only quantized elementwise modules can become activation tables")
    if y.shape != x.shape:
        raise QuantError(f"{type(activation).__name__} is not elementwise")
    return y.int_repr().reshape(256).numpy().astype(np.uint8), float(y.q_scale()), int(y.q_zero_point())


def quant_conv_from_module(cls, module, input_scale, input_zero_point, activation=None):
    torch = _torch()
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.intrinsic.quantized as nniq

    name = type(module).__name__
    if not isinstance(module, nnq.Conv2d):
        raise QuantError(f"{name}: only torch.ao.nn.quantized Conv2d and ConvReLU2d are supported")
    if module.groups != 1:
        raise QuantError(f"{name}: grouped convolution (groups={module.groups}) is not supported")
    if tuple(module.dilation) != (1, 1):
        raise QuantError(f"{name}: dilation {tuple(module.dilation)} is not supported")
    if module.padding_mode != "zeros":
        raise QuantError(f"{name}: padding mode {module.padding_mode!r} is not supported")
    kh, kw = module.kernel_size
    sh, sw = module.stride
    ph, pw = module.padding
    if kh != kw or sh != sw or ph != pw:
        raise QuantError(f"{name}: kernel, stride and padding must be square, got "
                         f"kernel {module.kernel_size}, stride {module.stride}, padding {module.padding}")

    w = module.weight()
    if w.dtype != torch.qint8:
        raise QuantError(f"{name}: weights must be qint8, got {w.dtype}")
    k = w.shape[0]
    if w.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        w_scales = np.full(k, w.q_scale(), dtype=np.float64)
        w_zps = np.full(k, w.q_zero_point(), dtype=np.int64)
    elif w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        if w.q_per_channel_axis() != 0:
            raise QuantError(f"{name}: per-channel weights must be quantized along axis 0")
        w_scales = w.q_per_channel_scales().double().numpy()
        w_zps = w.q_per_channel_zero_points().numpy().astype(np.int64)
    else:
        raise QuantError(f"{name}: weight quantization scheme {w.qscheme()} is not supported")
    if np.any(w_zps != 0):
        raise QuantError(f"{name}: weights must be symmetric (zero point 0), got zero points "
                         f"{sorted(set(w_zps.tolist()))[:4]}; use a symmetric weight observer")
    w_int = w.int_repr().numpy().astype(np.int8)

    s_x = np.float32(input_scale)
    z_x = int(input_zero_point)
    s_o = np.float32(module.scale)
    z_o = int(module.zero_point)
    s_xw = (s_x * w_scales.astype(np.float32)).astype(np.float32)
    multiplier = (s_xw / s_o).astype(np.float32)

    bias = module.bias()
    if bias is None:
        bias_int = np.zeros(k, dtype=np.int64)
    else:
        b = bias.detach().float().numpy().astype(np.float32)
        bias_int = np.rint((b / s_xw).astype(np.float32)).astype(np.int64)
    bias_q = bias_int - z_x * w_int.astype(np.int64).reshape(k, -1).sum(axis=1)

    lo, hi = 0, 255
    if isinstance(module, nniq.ConvReLU2d):
        lo = z_o
    elif type(module) is not nnq.Conv2d:
        raise QuantError(f"{name}: fused module {name} is not supported")

    table = np.arange(256, dtype=np.uint8)
    out_scale, out_zp = float(s_o), z_o
    if activation is not None:
        table, out_scale, out_zp = activation_table(activation, s_o, z_o)

    conv = cls(weight=w_int, bias_q=bias_q, multiplier=multiplier, input_zero_point=z_x,
               output_zero_point=z_o, stride=sh, padding=ph, lo=lo, hi=hi, table=table,
               input_scale=float(s_x), output_scale=out_scale)
    conv.table_output_zero_point = out_zp
    bound = conv.max_abs_accumulator().astype(np.float64) * multiplier.astype(np.float64)
    if np.any(bound >= 2.0 ** 31):
        raise QuantError(f"{name}: requantization multiplier up to {float(multiplier.max()):g} "
                         f"can take outputs beyond int32 before clamping; output scale "
                         f"{float(s_o):g} is too small for this layer")
    return conv
