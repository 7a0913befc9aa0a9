"""Whole quantized PyTorch networks on the accelerator.

``compile(model_q, example_input)`` takes a network quantized with ``torch.ao.quantization``
(eager mode: QuantStub / DeQuantStub, ``torch.ao.nn.quantized`` modules, FloatFunctional
converted to QFunctional; or an FX-converted GraphModule; engine qnnpack), runs it once on
``example_input`` while recording every leaf module call and every tensor operation, and
returns a :class:`Program`: a copy of the network in which each supported quantized conv
(Conv2d / ConvReLU2d, square kernel up to 9x9, stride 1 or 2, padding <= kernel - 1,
groups 1, dilation 1, symmetric weights) is replaced by a module that runs it on the
accelerator as a :class:`host.golden.quant.QuantConv`. A quantized elementwise activation (ReLU6, LeakyReLU,
Hardswish, ELU) that is the only consumer of a conv's output becomes the conv's 256-entry
activation table. Every other module (stubs, pooling, QFunctional add, Linear, flatten, ...)
runs on the CPU as the original PyTorch module, so ``program.run(x)`` returns exactly what
``model_q(x)`` returns.

Kernels other than 1x1 and 3x3 (2x2, 4x4 ... 9x9, e.g. ResNet's 7x7 stem) run through
:func:`host.compiler.decompose.decompose`: one 3x3 conv (padding 0, same stride) over an input the
host rearranges before the accelerator call -- ``ceil(R / 3)**2`` copies of the
zero-point-padded input, each shifted by a multiple of 3 rows / columns. That costs DRAM
traffic: the accelerator reads ``ceil(R / 3)**2`` times the (padded, cropped) input, 9x for
a 7x7 kernel (4x for 5x5), plus the host's write of that rearranged input, and does
``81 / 49`` of a 7x7 conv's MACs. ResNet-18's stem at 224x224 (3 x 224 x 224 = 147 KiB in)
reads 9 x 3 x 229 x 229 = 1.38 MiB instead.

A conv that the accelerator cannot run raises :class:`host.golden.quant.QuantError` naming the
module and the reason; ``cpu_modules={"name", ...}`` keeps named convs on the CPU knowingly.
"""

import copy
import time

import numpy as np

from hw.config import AccelConfig

from host.compiler.decompose import decompose, large_conv_from_module
from host.golden.quant import SUPPORTED_KERNELS, QuantConv, QuantError
from host.compiler.torch_frontend import activation_table, quant_conv_from_module

__all__ = ["compile", "Program", "FOLDABLE_ACTIVATIONS", "torch_layer_outputs"]

BACKENDS = ("golden", "sim", "rtl")


def _torch():
    import torch
    return torch


def _foldable_activations():
    """Quantized elementwise modules, and the float ones that FX leaves in a quantized
    graph to run on quint8 tensors (ReLU6, Hardtanh)."""
    import torch.ao.nn.quantized as nnq
    import torch.nn as nn
    return (nnq.ReLU6, nnq.LeakyReLU, nnq.Hardswish, nnq.ELU, nn.ReLU6, nn.Hardtanh)


FOLDABLE_ACTIVATIONS = ("ReLU6", "LeakyReLU", "Hardswish", "ELU", "Hardtanh")


def _is_conv(module):
    """Convolutions and fully connected layers, float or quantized: the layers a program
    places on the accelerator or the CPU."""
    import torch.nn as nn
    import torch.ao.nn.quantized as nnq
    from torch.ao.nn.quantized.modules.conv import _ConvNd as QuantizedConvNd
    return isinstance(module, (nn.modules.conv._ConvNd, QuantizedConvNd, nn.Linear, nnq.Linear))


def _is_linear(module):
    import torch.nn as nn
    import torch.ao.nn.quantized as nnq
    return isinstance(module, (nn.Linear, nnq.Linear))


def _is_quantized_layer(module):
    import torch.ao.nn.quantized as nnq
    import torch.ao.nn.quantized.dynamic as nnqd
    return isinstance(module, (nnq.Conv2d, nnq.Linear)) and not isinstance(module, nnqd.Linear)


def _geometry(module):
    """``(C, K, (R, S), stride, padding, groups)`` of a conv or Linear (a 1x1 conv)."""
    if _is_linear(module):
        return module.in_features, module.out_features, (1, 1), 1, 0, 1
    padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
    stride = tuple(module.stride)
    return (module.in_channels, module.out_channels, tuple(module.kernel_size),
            stride[0] if len(set(stride)) == 1 else stride,
            padding if isinstance(padding, str) or len(set(padding)) > 1 else padding[0],
            module.groups)


def _macs(module, output):
    """Multiply-accumulates of one call: output elements x (C / groups) x R x S."""
    c, _, (r, s), _, _, groups = _geometry(module)
    return int(np.prod(output.shape)) * (c // groups) * r * s


def _tensors(tree):
    from torch.utils._pytree import tree_leaves
    torch = _torch()
    return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]


class _Trace:
    """One run of a model recording leaf-module calls and top-level tensor operations.

    ``events``: dicts ``{"kind": "module" | "function", "name", "module", "inputs", "output"}``
    in execution order. Operations inside a leaf module are part of that module's call.
    Every tensor stays referenced, so identity comparisons are meaningful.
    """

    def __init__(self, model, args, kwargs):
        torch = _torch()
        from torch.overrides import TorchFunctionMode

        self.events = []
        depth = [0]
        trace = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                if depth[0] == 0:
                    trace.events.append({"kind": "function", "name": getattr(func, "__name__", str(func)),
                                         "module": None, "inputs": _tensors((args, kwargs)),
                                         "output": None})
                return func(*args, **kwargs)

        handles = []
        stack = []

        def pre_hook(name):
            def hook(module, inputs):
                if depth[0] == 0:
                    event = {"kind": "module", "name": name, "module": module,
                             "inputs": _tensors(inputs), "output": None}
                    trace.events.append(event)
                    stack.append(event)
                depth[0] += 1
            return hook

        def post_hook(module, inputs, output):
            depth[0] -= 1
            if depth[0] == 0:
                stack.pop()["output"] = output

        for name, module in model.named_modules():
            if name and (_is_conv(module) or not any(True for _ in module.children())):
                handles.append(module.register_forward_pre_hook(pre_hook(name)))
                handles.append(module.register_forward_hook(post_hook))
        try:
            with torch.no_grad(), Mode():
                self.result = model(*args, **kwargs)
        finally:
            for h in handles:
                h.remove()
        self.result_tensors = _tensors(self.result)

    def consumers(self, index):
        """Events after ``index`` that take event ``index``'s output, plus "return";
        ``nn.Identity`` modules (what eager fusion leaves of a batch norm), which return
        the very same tensor, are looked through."""
        import torch.nn as nn
        out = self.events[index]["output"]
        found = [j for j in range(index + 1, len(self.events))
                 if any(t is out for t in self.events[j]["inputs"])
                 and not isinstance(self.events[j]["module"], nn.Identity)]
        if any(t is out for t in self.result_tensors):
            found.append("return")
        return found


def _accelerator_conv(module, input_scale, input_zero_point):
    """``(QuantConv, input_transform or None)`` for a quantized conv or Linear module:
    Linear as a 1x1 conv, 1x1 and 3x3 with equal padding directly, every other kernel up to
    9x9 (square or not, unequal padding) decomposed into a 3x3 conv whose input the host
    rearranges with ``input_transform`` (u8 NCHW -> u8 NCHW)."""
    if not _is_linear(module):
        (kh, kw), (ph, pw) = module.kernel_size, module.padding
        if not (kh == kw and kh in SUPPORTED_KERNELS and ph == pw):
            return decompose(large_conv_from_module(module, input_scale, input_zero_point))
    return quant_conv_from_module(QuantConv, module, input_scale, input_zero_point), None


def _elementwise_on(activation, output):
    """Whether ``activation`` applied to a 4-D tensor quantized like ``output`` (a conv's
    quint8 output), NCHW or channels_last, equals its 256-entry table applied to every
    element. PyTorch 2.13's quantized ReLU6 is not: on a channels_last tensor it
    returns the channels_last buffer read as NCHW. A table folded into the accelerator
    would then differ from ``model_q``, so such an activation stays on the CPU."""
    torch = _torch()
    if output.dim() != 4:
        return True
    g = torch.Generator().manual_seed(0)
    values = torch.randint(0, 256, (2, 5, 3, 4), dtype=torch.uint8, generator=g)
    probe = torch._make_per_tensor_quantized_tensor(values, output.q_scale(), output.q_zero_point())
    try:
        table = torch.from_numpy(activation_table(activation, output.q_scale(), output.q_zero_point())[0])
        # both layouts: qnnpack's conv returns NCHW-contiguous for 1x1 images, channels_last else
        return all(torch.equal(activation(probe.contiguous(memory_format=f)).int_repr(), table[values.long()])
                   for f in (torch.contiguous_format, torch.channels_last))
    except (QuantError, RuntimeError):
        return False


def _describe(name, module):
    return f"module '{name}' ({type(module).__name__})"


def _memory_format(t):
    torch = _torch()
    if t.is_contiguous():
        return torch.contiguous_format
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    raise QuantError(f"output tensor with strides {t.stride()} is neither NCHW nor channels_last")


class _Layer:
    """A conv the accelerator runs (plus its folded activation)."""

    def __init__(self, name, module, activation_name, activation, out_scale, out_zero_point,
                 memory_format):
        self.name = name
        self.module = module
        self.activation_name = activation_name
        self.activation = activation
        self.out_scale = out_scale
        self.out_zero_point = out_zero_point
        self.memory_format = memory_format
        self._convs = {}

    def quant_conv(self, scale, zero_point):
        """The QuantConv the accelerator runs for inputs quantized with (scale, zero_point)."""
        return self.plan(scale, zero_point)[0]

    def plan(self, scale, zero_point):
        """``(QuantConv, input_transform or None)`` for inputs quantized with (scale,
        zero_point), built once; the transform (kernels other than 1 and 3) runs on the host."""
        key = (float(scale), int(zero_point))
        if key not in self._convs:
            try:
                conv, transform = _accelerator_conv(self.module, scale, zero_point)
                if self.activation is not None:
                    # the table from the conv's exact (double) output qparams, as PyTorch sees them
                    table, s, z = activation_table(self.activation, self.module.scale,
                                                   self.module.zero_point)
                    if z != self.out_zero_point or not np.isclose(s, self.out_scale, rtol=1e-6, atol=0):
                        raise QuantError(f"{type(self.activation).__name__} output qparams ({s}, {z}) "
                                         f"differ from the traced ({self.out_scale}, {self.out_zero_point})")
                    conv.table = table
                    conv.output_scale = self.out_scale
                    conv.table_output_zero_point = z
            except QuantError as exc:
                raise QuantError(f"{_describe(self.name, self.module)}: {exc}") from None
            self._convs[key] = (conv, transform)
        return self._convs[key]

    def describe(self, conv, x_shape, source_shape=None):
        """What the accelerator ran (``C``, ``H``, ``W``, ``kernel``, ``padding`` of the 3x3
        conv for a decomposed layer; ``source`` then gives the original conv's)."""
        n, c, h, w = x_shape
        entry = {"layer": self.name, "C": c, "K": conv.out_channels, "H": h, "W": w,
                 "kernel": conv.kernel_size, "stride": conv.stride, "padding": conv.padding,
                 "groups": conv.groups, "activation": self.activation_name, "source": None}
        if source_shape is not None:
            _, _, (r, s), _, padding, _ = _geometry(self.module)
            entry["source"] = {"C": source_shape[1], "H": source_shape[2], "W": source_shape[3],
                               "kernel": r if r == s else (r, s), "padding": padding}
        return entry


def _module_class():
    import torch.nn as nn

    class AcceleratedConv(nn.Module):
        """Stands in for a quantized conv: runs it on the program's backend."""

        def __init__(self, program, layer):
            super().__init__()
            self._program = (program,)           # not a submodule
            self.layer_name = layer

        def forward(self, x):
            return self._program[0]._run_conv(self.layer_name, x)

        def extra_repr(self):
            layer = self._program[0]._layers[self.layer_name]
            act = f", activation={layer.activation_name}" if layer.activation_name else ""
            return f"{type(layer.module).__name__}{act}"

    class FoldedActivation(nn.Module):
        """Stands in for an activation folded into a conv's table: passes the conv's
        (already activated) output through; any other input goes to the original module."""

        def __init__(self, program, original):
            super().__init__()
            self._program = (program,)
            self.original = original

        def forward(self, x):
            pending = self._program[0]._pending
            for i, t in enumerate(pending):
                if t is x:
                    del pending[i]
                    return x
            return self.original(x)

    return AcceleratedConv, FoldedActivation


def _set_submodule(root, name, module):
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


class Program:
    """A quantized network whose supported convs run on the accelerator.

    ``run(*args, backend="golden" | "sim" | "rtl", **kwargs)`` takes what the model takes
    and returns what it returns ("sim": the RTL on the default simulation engine, "rtl":
    on the fast C++ engine, :mod:`host.runtime.sim.rtlsim`). After a ``"sim"`` or ``"rtl"`` run,
    ``counters`` holds one dict per accelerator layer call (layer, shape, cycles, DRAM
    bytes, stalls, seconds).
    ``layers`` describes every conv: where it runs, its shape and folded activation.
    ``run(..., record=True)`` also fills ``layer_outputs``: accelerator layer name -> list
    of its quint8 outputs (one per call, in call order; after a folded activation).
    """

    def __init__(self, model, layers, placements, cfg=None, *, latency=50, progress=True):
        self.module = model
        self._layers = layers
        self.layers = placements
        self.cfg = cfg if cfg is not None else AccelConfig()
        self.latency = latency
        self.progress = progress
        self.counters = []
        self.layer_outputs = {}
        self._record = False
        self._pending = []
        self._backend = None
        self._bar = None

    def run(self, *args, backend="golden", record=False, **kwargs):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        torch = _torch()
        self._backend = backend
        self._record = bool(record)
        self._pending = []
        self.counters = []
        self.layer_outputs = {}
        calls = sum(p["calls"] for p in self.layers if p["placement"] == "accelerator")
        self._bar = self._progress_bar(calls) if backend in ("sim", "rtl") and self.progress else None
        self._done = 0
        try:
            with torch.no_grad():
                return self.module(*args, **kwargs)
        finally:
            if self._bar is not None and hasattr(self._bar, "close"):
                self._bar.close()
            self._bar = None
            self._backend = None
            self._record = False
            self._pending = []

    __call__ = run

    def _progress_bar(self, total):
        try:
            from tqdm import tqdm
        except ImportError:
            return {"total": total}
        return tqdm(total=total, unit="layer", desc="accelerator")

    def _report(self, entry):
        self._done += 1
        if isinstance(self._bar, dict):
            print(f"[{self._done}/{self._bar['total']}] {entry['layer']}: C={entry['C']} K={entry['K']} "
                  f"{entry['H']}x{entry['W']} k{entry['kernel']} s{entry['stride']}: "
                  f"{entry.get('cycles', 0)} cycles, {entry['seconds']:.1f} s", flush=True)
        elif self._bar is not None:
            self._bar.set_postfix_str(entry["layer"])
            self._bar.update(1)

    def _run_conv(self, name, x):
        torch = _torch()
        layer = self._layers[name]
        if self._backend is None:
            raise RuntimeError("call Program.run(), not the module directly")
        if not isinstance(x, torch.Tensor) or not x.is_quantized or x.dtype != torch.quint8 \
                or x.qscheme() != torch.per_tensor_affine:
            raise QuantError(f"{_describe(name, layer.module)}: input must be a per-tensor quint8 "
                             f"tensor, got {getattr(x, 'dtype', type(x))}")
        linear = _is_linear(layer.module)
        if linear and (x.dim() < 1 or x.shape[-1] != layer.module.in_features):
            raise QuantError(f"{_describe(name, layer.module)}: input of shape {tuple(x.shape)} "
                             f"does not end in {layer.module.in_features} features")
        if not linear and x.dim() != 4:
            raise QuantError(f"{_describe(name, layer.module)}: input must be 4-D, got {tuple(x.shape)}")
        conv, transform = layer.plan(x.q_scale(), x.q_zero_point())
        x_u8 = x.int_repr().contiguous().numpy()
        if linear:      # the rows of (..., C) as the columns of one 1 x M image: (1, C, 1, M)
            x_u8 = np.ascontiguousarray(x_u8.reshape(-1, x_u8.shape[-1]).T[None, :, None, :])
        source_shape = None
        start = time.perf_counter()
        if transform is not None:             # kernel > 3: the 3x3 conv's rearranged input
            source_shape = x_u8.shape
            x_u8 = transform(x_u8)
        if self._backend == "golden":
            y = conv(x_u8)
        else:
            from host.runtime.sim import run_conv
            y, counters = run_conv(self.cfg, conv, x_u8, latency=self.latency,
                                   engine="cpp" if self._backend == "rtl" else None)
            entry = {**layer.describe(conv, x_u8.shape, source_shape), "input_shape": tuple(x_u8.shape),
                     "output_shape": tuple(y.shape), **counters,
                     "seconds": time.perf_counter() - start}
            self.counters.append(entry)
            self._report(entry)
        if linear:
            y = y[0, :, 0, :].T.reshape(*x.shape[:-1], conv.out_channels)
        t = torch.from_numpy(np.ascontiguousarray(y)).contiguous(memory_format=layer.memory_format)
        out = torch._make_per_tensor_quantized_tensor(t, layer.out_scale, layer.out_zero_point)
        if layer.activation is not None:
            self._pending.append(out)
        if self._record:
            self.layer_outputs.setdefault(name, []).append(out)
        return out

    def stats(self):
        """Layer counts and MACs per placement (per example input, every call counted):
        ``{accelerator_layers, cpu_layers, accelerator_macs, cpu_macs, accelerator_share}``.
        Layers are the convs and fully connected layers; pooling, additions and other
        element-wise ops always run on the CPU and are not counted."""
        acc = [p for p in self.layers if p["placement"] == "accelerator"]
        cpu = [p for p in self.layers if p["placement"] != "accelerator"]
        acc_macs, cpu_macs = sum(p["macs"] for p in acc), sum(p["macs"] for p in cpu)
        total = acc_macs + cpu_macs
        return {"accelerator_layers": len(acc), "cpu_layers": len(cpu),
                "accelerator_macs": acc_macs, "cpu_macs": cpu_macs,
                "accelerator_share": acc_macs / total if total else 0.0}

    def summary(self):
        """One line per conv / Linear (where it runs, its shape, folded activation, MACs),
        then the totals of :meth:`stats`."""
        lines = []
        for p in self.layers:
            where = p["placement"] + (f" ({p['reason']})" if p.get("reason") else "")
            act = f" + {p['activation']}" if p.get("activation") else ""
            if p.get("decomposed"):
                d = p["decomposed"]
                act += f" (as 3x3 over {d['pieces']} x {p['C']} = {d['C']} channels)"
            if p.get("unfolded"):
                act += f" [not folded: {p['unfolded']}]"
            kernel = p["kernel"] if isinstance(p["kernel"], int) else "x".join(map(str, p["kernel"]))
            kernel = f"{kernel}x{kernel}" if isinstance(p["kernel"], int) else kernel
            groups = f" g{p['groups']}" if p.get("groups", 1) != 1 else ""
            shape = f"{p['C']}->{p['K']} {kernel} s{p['stride']}{groups} @{p['H']}x{p['W']}"
            lines.append(f"{p['name']:32} {p['type']:14} {shape:32} {p['macs'] / 1e6:9.2f} MMAC  "
                         f"{where}{act}")
        st = self.stats()
        lines.append(f"accelerator: {st['accelerator_layers']} layers, "
                     f"{st['accelerator_macs'] / 1e6:.1f} MMAC; cpu: {st['cpu_layers']} layers, "
                     f"{st['cpu_macs'] / 1e6:.1f} MMAC; accelerator share of MACs: "
                     f"{100 * st['accelerator_share']:.2f}%")
        return "\n".join(lines)


def torch_layer_outputs(model_q, program, *args):
    """``(model_q(*args), outputs)``: PyTorch's own output of every layer that ``program``
    runs on the accelerator (after its folded activation, if any), by forward hooks, as
    ``layer name -> list of outputs`` in call order: what ``program.layer_outputs`` holds
    after ``program.run(*args, record=True)``, computed by PyTorch."""
    torch = _torch()
    outputs, handles = {}, []
    for p in program.layers:
        if p["placement"] != "accelerator":
            continue
        module_name = p["activation"].split(" ")[0] if p["activation"] else p["name"]
        hook = (lambda n: lambda mod, inp, out: outputs.setdefault(n, []).append(out))(p["name"])
        handles.append(model_q.get_submodule(module_name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            result = model_q(*args)
    finally:
        for h in handles:
            h.remove()
    return result, outputs


def compile(model_q, example_input, *, cfg=None, cpu_modules=(), fold_activations=True,
            latency=50, progress=True):
    """Compile ``model_q`` (torch.ao-quantized, engine qnnpack) for the accelerator.

    ``example_input``: what ``model_q`` takes (a tensor, or a tuple of positional
    arguments). ``cpu_modules``: names of convs to run on the CPU deliberately.
    ``fold_activations``: fold a ReLU6 / LeakyReLU / Hardswish / ELU that alone consumes
    a conv's output into the conv's activation table. Convs with kernels other than 1 and 3
    (square, up to 9x9) run decomposed into a 3x3 conv (``host.compiler.decompose``); their placement's
    ``decomposed`` says into how many pieces. Raises QuantError naming the module for any
    conv the accelerator cannot run (grouped, dilated, kernel above 9x9, asymmetric weights).
    """
    torch = _torch()
    if getattr(torch.backends.quantized, "engine", None) != "qnnpack":
        raise QuantError(f"the quantized engine is {torch.backends.quantized.engine!r}; "
                         f"set torch.backends.quantized.engine = 'qnnpack'")
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    cpu_modules = set(cpu_modules)
    names = {name for name, _ in model_q.named_modules()}
    unknown = cpu_modules - names
    if unknown:
        raise QuantError(f"cpu_modules names no module of the model: {sorted(unknown)}")
    was_training = model_q.training
    model_q.eval()
    try:
        trace = _Trace(model_q, args, {})
    finally:
        model_q.train(was_training)
    foldable = _foldable_activations()

    calls = {}                 # conv name -> list of event indices
    for i, e in enumerate(trace.events):
        if e["kind"] == "module" and _is_conv(e["module"]):
            calls.setdefault(e["name"], []).append(i)

    layers, placements, folds = {}, [], {}
    for name, indices in calls.items():
        module = trace.events[indices[0]]["module"]
        first = trace.events[indices[0]]
        x = first["inputs"][0] if first["inputs"] else None
        c, k, (r, s), stride, padding, groups = _geometry(module)
        spatial = x is not None and not _is_linear(module) and x.dim() >= 2
        place = {"name": name, "type": type(module).__name__, "calls": len(indices),
                 "C": c, "K": k, "H": x.shape[-2] if spatial else (1 if x is not None else None),
                 "W": x.shape[-1] if spatial else (1 if x is not None else None),
                 "kernel": r if r == s else (r, s), "stride": stride, "padding": padding,
                 "groups": groups, "macs": sum(_macs(module, trace.events[i]["output"]) for i in indices),
                 "activation": None, "placement": "accelerator", "reason": None, "decomposed": None,
                 "unfolded": None}
        placements.append(place)
        if name in cpu_modules:
            place.update(placement="cpu", reason="cpu_modules")
            continue
        if type(module).__module__.startswith("torch.ao.nn.quantized.dynamic"):
            raise QuantError(f"{_describe(name, module)}: dynamically quantized (float "
                             f"activations); the accelerator runs statically quantized layers "
                             f"only (pass cpu_modules={{'{name}'}} to run it on the CPU)")
        if not _is_quantized_layer(module):
            raise QuantError(f"{_describe(name, module)}: not a torch.ao.nn.quantized Conv2d, "
                             f"ConvReLU2d, Linear or LinearReLU; the accelerator runs statically "
                             f"quantized 2-D convolutions and fully connected layers only "
                             f"(pass cpu_modules={{'{name}'}} to run it on the CPU)")
        acts = []
        for i in indices:
            e = trace.events[i]
            xin = e["inputs"][0] if e["inputs"] else None
            if xin is None or not xin.is_quantized or xin.dtype != torch.quint8 \
                    or xin.qscheme() != torch.per_tensor_affine:
                raise QuantError(f"{_describe(name, module)}: input must be a per-tensor quint8 tensor")
            try:
                _, transform = _accelerator_conv(module, xin.q_scale(), xin.q_zero_point())
            except QuantError as exc:
                raise QuantError(f"{_describe(name, module)}: {exc}") from None
            if transform is not None:
                pieces = transform.pieces[0] * transform.pieces[1]
                place["decomposed"] = {"pieces": pieces, "C": pieces * module.in_channels}
            users = trace.consumers(i)
            act = None
            if fold_activations and len(users) == 1 and users[0] != "return":
                user = trace.events[users[0]]
                if user["kind"] == "module" and isinstance(user["module"], foldable) \
                        and len(user["inputs"]) == 1 and user["name"] not in cpu_modules:
                    if _elementwise_on(user["module"], e["output"]):
                        act = user
                    else:
                        place["unfolded"] = (f"{user['name']}: PyTorch's {type(user['module']).__name__} "
                                             f"is not elementwise on this memory format; it runs on the CPU")
            acts.append(act)
        # fold only when every call of the conv feeds the same activation module alone
        activation = acts[0] if all(a is not None and a["name"] == acts[0]["name"] for a in acts) else None
        final = activation["output"] if activation else trace.events[indices[0]]["output"]
        if not final.is_quantized or final.dtype != torch.quint8 or final.qscheme() != torch.per_tensor_affine:
            raise QuantError(f"{_describe(name, module)}: output is not a per-tensor quint8 tensor")
        layer = _Layer(name, module, activation["name"] if activation else None,
                       activation["module"] if activation else None,
                       final.q_scale(), final.q_zero_point(), _memory_format(final))
        for i in indices:
            e = trace.events[i]
            layer.quant_conv(e["inputs"][0].q_scale(), e["inputs"][0].q_zero_point())
        layers[name] = layer
        if activation:
            place["activation"] = f"{activation['name']} ({type(activation['module']).__name__})"
            folds.setdefault(activation["name"], []).append(name)

    model = copy.deepcopy(model_q)
    model.eval()
    program = Program(model, layers, placements, cfg, latency=latency, progress=progress)
    AcceleratedConv, FoldedActivation = _module_class()
    for name in layers:
        _set_submodule(model, name, AcceleratedConv(program, name))
    for act_name in folds:
        _set_submodule(model, act_name, FoldedActivation(program, model.get_submodule(act_name)))
    return program


def main(argv=None):
    """``python -m host.compiler.program --model NAME``: build a reference network (``host.tools.models``),
    quantize it (eager or FX, qnnpack, calibrated on random inputs), compile it and print
    where each layer runs and the accelerator's share of the MACs; ``--check`` also runs it
    on the golden backend and compares with PyTorch's own output."""
    import argparse

    from host.tools import models

    parser = argparse.ArgumentParser(prog="python -m host.compiler.program", description=main.__doc__)
    parser.add_argument("--model", default="resnet50", choices=sorted(models.MODELS))
    parser.add_argument("--mode", default="eager", choices=["eager", "fx"])
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true",
                        help="run on the golden backend and compare with model_q(x)")
    args = parser.parse_args(argv)
    torch = _torch()
    model_q, x = models.quantized(args.model, args.mode, args.seed, args.size)
    program = compile(model_q, x)
    print(f"{args.model} ({args.mode} quantization, qnnpack) at {args.size}x{args.size}")
    print(program.summary())
    if args.check:
        same = torch.equal(program.run(x, backend="golden"), model_q(x))
        print(f"golden backend equals model_q(x): {'yes' if same else 'NO'}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main())
