"""PyTorch (torch.ao quantized, engine qnnpack) -> accelerator layers.

Every torch-specific line of the host lives here, so that another quantization
front end (PT2E) can be added beside it.
"""

import numpy as np

from host.golden.quant import QuantError

__all__ = ["requantization_multiplier", "conv_from_torch", "quant_conv_from_module", "activation_table", "layer_table"]


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


def requantization_multiplier(weight_scales, input_scale, output_scale):
    """``M[k]`` operation for operation as PyTorch's qnnpack conv and linear compute it
    (``generate_requantization_scales`` in ATen's ``quantized/cpu/QnnpackUtils.h``): every
    operand in float32, ``M[k] = f32(f32(s_w[k] * s_x) * f32(1 / s_o))``. Dividing by
    ``s_o`` instead is one ulp off on some scales, which flips outputs at near-ties."""
    s_w = np.asarray(weight_scales, dtype=np.float64).astype(np.float32)
    s_x, s_o = np.float32(input_scale), np.float32(output_scale)
    inverse_output_scale = np.float32(np.float32(1) / s_o)
    return ((s_w * s_x).astype(np.float32) * inverse_output_scale).astype(np.float32)


def conv_from_torch(module, input_scale, input_zero_point, activation=None):
    """A :class:`host.golden.quant.QuantConv` from a ``torch.ao.nn.quantized`` Conv2d /
    ConvReLU2d (1x1 or 3x3) or Linear / LinearReLU, for inputs quantized with
    ``(input_scale, input_zero_point)`` (engine qnnpack). ``activation``: an optional
    quantized elementwise module applied to the output (ReLU6, LeakyReLU, Hardswish, ...),
    which becomes the 256-entry table."""
    from host.golden.quant import QuantConv
    return quant_conv_from_module(QuantConv, module, input_scale, input_zero_point, activation)


def quant_conv_from_module(cls, module, input_scale, input_zero_point, activation=None):
    """``cls`` (a QuantConv class) from a ``torch.ao.nn.quantized`` Conv2d / ConvReLU2d, or a
    Linear / LinearReLU as a 1x1 conv (weights (K, C) -> (K, C, 1, 1)); the class checks the
    geometry it accepts. Refuses, naming the module, what PyTorch computes differently."""
    torch = _torch()
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.quantized.dynamic as nnqd

    name = type(module).__name__
    if isinstance(module, nnqd.Linear):
        raise QuantError(f"{name}: dynamically quantized Linear (float activations) is not "
                         f"supported; quantize it statically (quint8 activations)")
    linear = isinstance(module, nnq.Linear)
    if linear:
        sh = 1
        padding = 0
    elif isinstance(module, nnq.Conv2d):
        if tuple(module.dilation) != (1, 1):
            raise QuantError(f"{name}: dilation {tuple(module.dilation)} is not supported")
        if module.padding_mode != "zeros":
            raise QuantError(f"{name}: padding mode {module.padding_mode!r} is not supported")
        sh, sw = module.stride
        if sh != sw:
            raise QuantError(f"{name}: stride {tuple(module.stride)} is not supported; the "
                             f"stride must be the same in both axes")
        ph, pw = module.padding
        padding = ph if ph == pw else (ph, pw)
    else:
        raise QuantError(f"{name}: only torch.ao.nn.quantized Conv2d, ConvReLU2d, Linear and "
                         f"LinearReLU are supported")

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
    if linear:
        w_int = w_int.reshape(k, -1, 1, 1)

    s_x = np.float32(input_scale)
    z_x = int(input_zero_point)
    s_o = np.float32(module.scale)
    z_o = int(module.zero_point)
    multiplier = requantization_multiplier(w_scales, input_scale, module.scale)

    bias = module.bias()
    if bias is None:
        bias_int = np.zeros(k, dtype=np.int64)
    else:
        # as PyTorch quantizes the bias: scale s_x * s_w in double, its float32
        # reciprocal, then a float32 product rounded half to even
        b = bias.detach().float().numpy().astype(np.float32)
        inverse = (np.float32(1) / (w_scales * float(input_scale)).astype(np.float32)).astype(np.float32)
        bias_int = np.rint((b * inverse).astype(np.float32)).astype(np.int64)
    bias_q = bias_int - z_x * w_int.astype(np.int64).reshape(k, -1).sum(axis=1)

    lo, hi = 0, 255
    if isinstance(module, (nniq.ConvReLU2d, nniq.LinearReLU)):
        lo = z_o
    elif type(module) not in (nnq.Conv2d, nnq.Linear):
        raise QuantError(f"{name}: fused module {name} is not supported")

    table = np.arange(256, dtype=np.uint8)
    out_scale, out_zp = float(s_o), z_o
    if activation is not None:
        table, out_scale, out_zp = activation_table(activation, s_o, z_o)

    groups = 1 if linear else module.groups
    if groups != 1 and tuple(module.kernel_size) not in ((1, 1), (3, 3)):
        raise QuantError(f"{name}: grouped convolution (groups={groups}) with a "
                         f"{module.kernel_size[0]}x{module.kernel_size[1]} kernel is not supported; "
                         f"grouped kernels must be 1x1 or 3x3")
    conv = cls(weight=w_int, bias_q=bias_q, multiplier=multiplier, input_zero_point=z_x,
               output_zero_point=z_o, stride=sh, padding=padding, lo=lo, hi=hi, table=table,
               input_scale=float(s_x), output_scale=out_scale, groups=groups)
    conv.table_output_zero_point = out_zp
    bound = conv.max_abs_accumulator().astype(np.float64) * multiplier.astype(np.float64)
    if np.any(bound >= 2.0 ** 31):
        raise QuantError(f"{name}: requantization multiplier up to {float(multiplier.max()):g} "
                         f"can take outputs beyond int32 before clamping; output scale "
                         f"{float(s_o):g} is too small for this layer")
    return conv


def layer_table(model, example_input=None):
    """The 2-D convolutions of ``model`` (float or torch.ao-quantized) in execution order,
    as ``host.tools.networks`` layer dicts ``{name, C, K, H, W, kernel, stride, padding, groups}``
    plus ``supported`` and ``reason`` (why the accelerator cannot run it, else None).

    ``example_input``: what the model takes; default a 1 x C x 224 x 224 random tensor,
    C being the first conv's input channels. Used by ``python -m host.tools.dse --torch-module``.
    """
    torch = _torch()
    import torch.nn as nn
    import torch.ao.nn.quantized as nnq

    from torch.ao.nn.quantized.modules.conv import _ConvNd as QuantizedConvNd
    convs = [(n, m) for n, m in model.named_modules()
             if isinstance(m, (nn.modules.conv._ConvNd, QuantizedConvNd))]
    if example_input is None:
        if not convs:
            raise QuantError("the model has no convolution; pass example_input")
        example_input = torch.randn(1, convs[0][1].in_channels, 224, 224)
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    rows, handles = [], []

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0]
            kernel, stride, padding = (tuple(module.kernel_size), tuple(module.stride),
                                       module.padding)
            if isinstance(padding, str):
                reason = f"padding mode {padding!r}"
                padding = (-1, -1)
            else:
                padding, reason = tuple(padding), None
            row = {"name": name, "C": module.in_channels, "K": module.out_channels,
                   "H": int(x.shape[-2]), "W": int(x.shape[-1]),
                   "kernel": kernel[0] if len(set(kernel)) == 1 else kernel,
                   "stride": stride[0] if len(set(stride)) == 1 else stride,
                   "padding": padding[0] if len(set(padding)) == 1 else padding,
                   "groups": module.groups}
            if x.dim() != 4:
                reason = f"{x.dim() - 2}-D convolution"
            elif reason is None and isinstance(module, nnq.Conv2d) and getattr(x, "is_quantized", False):
                try:
                    from host.golden.quant import QuantConv
                    quant_conv_from_module(QuantConv, module, x.q_scale(), x.q_zero_point())
                except (QuantError, RuntimeError) as exc:
                    reason = str(exc)
            elif reason is None:
                if module.groups != 1 and row["kernel"] not in (1, 3):
                    reason = f"grouped convolution (groups={module.groups}) with kernel {kernel}"
                elif tuple(module.dilation) != (1,) * len(module.dilation):
                    reason = f"dilation {tuple(module.dilation)}"
                elif not isinstance(row["kernel"], int) or row["kernel"] not in (1, 3):
                    reason = f"kernel {kernel} (the array runs 1x1 and 3x3)"
                elif not isinstance(row["stride"], int) or row["stride"] not in (1, 2):
                    reason = f"stride {stride}"
                elif not isinstance(row["padding"], int) or not 0 <= row["padding"] <= row["kernel"] - 1:
                    reason = f"padding {padding}"
            row["supported"], row["reason"] = reason is None, reason
            rows.append(row)
        return record

    for name, module in convs:
        handles.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*args)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return rows
