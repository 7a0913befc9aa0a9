"""Compile a :class:`host.compiler.graph.Graph` into a :class:`host.runtime.executable.Executable`.

1. **Work.** Each ``layer`` node becomes accelerator commands: one per image of the batch,
   per group of a grouped conv (other than a 3x3 depthwise one, which runs whole), per
   row of a Linear's input; a kernel other than 1x1 / 3x3 adds the host's rearrangement
   of its input (``decompose``) before them. The planner chooses each distinct layer
   shape's tiles once (cached by shape).
   An addition fused into a layer (``host.compiler.fuse``) makes its commands read the
   residual beside the output's bytes.
2. **Order.** A topological order that runs every ready accelerator command before any
   host operator, so commands gather into as few segments as the data flow allows.
3. **Arena.** Each tensor the network computes gets bytes in the arena for its lifetime
   (from the step that writes it to the last that reads it; views share their base's
   bytes): greedy by size, lowest free offset, 64-byte aligned. ``reuse=False`` gives
   every tensor its own bytes (so all of them can be read after a frame).
4. **Image.** Weights (in their DRAM layouts), parameter records and tables once per
   layer, the command lists, then the arena and the trace area. Every descriptor is
   checked (``host.golden.tiling.descriptor``, the buffer bounds) before it is written.
"""

from dataclasses import dataclass, replace

import numpy as np

from hw.config import AccelConfig
from hw.contract import COMMAND_BYTES, TABLE_BYTES, TRACE_BYTES, PoolMode, pool_extents

from host.compiler.fuse import concatenate, fuse
from host.compiler.graph import Value
from host.compiler.planner import ConvShape, plan
from host.compiler.pool_model import global_in_one_row
from host.golden import schedule, tiling
from host.golden.machine import pool_error
from host.golden.quant import QuantError, float32_bits, pair
from host.runtime import driver
from host.runtime.executable import IMAGE_ALIGN, Executable, HostOp, Segment, TensorInfo
from host.runtime.layout import param_block, weight_bytes

__all__ = ["build", "decomposition_copies", "TENSOR_ALIGN", "POOL_KINDS"]

TENSOR_ALIGN = 64
POOL_KINDS = ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "ort_max_pool")
# why a host operator of each kind is not on the accelerator (unless a more precise reason)
HOST_REASONS = {
    "quantize": "quantizes the network's float input (host)",
    "dequantize": "the network's float output",
    "relu6": "PyTorch's clamp of a channels_last tensor returns its NHWC buffer read as NCHW: no "
             "elementwise table reproduces it",
    "hardtanh": "PyTorch's clamp of a channels_last tensor returns its NHWC buffer read as NCHW: no "
                "elementwise table reproduces it",
    "relu": "an activation not folded into a layer's table",
    "transpose": "a transpose other than a channel shuffle",
    "slice": "a slice of a float tensor or across images",
    "reshape": "a view of a float tensor",
    "conv": "a conv kept on the CPU (cpu_modules)",
    "torch": "no numpy model: runs in PyTorch",
}


def _align(n, a):
    return -(-n // a) * a


@dataclass
class _Command:
    """One accelerator command before layout: ``conv`` (a groups-1 or depthwise
    QuantConv) on a slice of ``input`` (byte offset ``in_offset``, ``(C, H, W)``) writing
    a slice of ``output`` (``out_offset``); ``residual``: a fused addition (its tensor
    read at ``out_offset`` too) or None."""
    conv: object
    input: str
    in_offset: int
    in_shape: tuple
    output: str
    out_offset: int
    info: dict
    residual: dict = None


@dataclass
class _PoolCommand:
    """One pooling-engine pass before layout: the :class:`hw.contract.PoolDescriptor`
    ``fields`` but the addresses, which are ``input`` / ``output`` at byte offsets."""
    fields: dict
    input: str
    in_offset: int
    output: str
    out_offset: int
    info: dict


@dataclass
class _Step:
    kind: str               # "accel" or "host"
    inputs: list
    outputs: list
    command: _Command = None
    op: HostOp = None


class _Plans:
    """The planner's tiles per (configuration, layer shape), each shape planned once."""

    def __init__(self, cfg):
        self.cfg, self.cache = cfg, {}

    def tiles(self, conv, h, w, residual=False):
        shape = ConvShape.from_conv(conv, h, w, residual=residual)
        if shape not in self.cache:
            self.cache[shape] = dict(plan(self.cfg, shape).tiles)
        return self.cache[shape]


def _conv_steps(cfg, node, graph, layers, fresh):
    """The steps of one ``layer`` node: an optional host ``decompose``, then commands."""
    layer = layers[node.layer]
    x = graph.values[node.inputs[0]]
    if x.dtype != "u8":
        raise QuantError(f"{node.name}: input must be a quint8 tensor")
    conv, transform = layer.plan(x.scale, x.zero_point)
    steps = []
    src = node.inputs[0]
    shape = x.shape
    if transform is not None:       # the input rearranged on the chip, into a static tensor
        rearranged, copies = decomposition_copies(shape, transform)
        mid = fresh(f"{node.name}.input", rearranged, x, static=x.zero_point)
        steps += _copy_steps(node.name, src, mid, copies)
        src, shape = mid, rearranged
    residual = node.params.get("residual")      # a fused addition (host.compiler.fuse)
    if residual is not None:
        info_add = {"add": residual["add"]}
    else:
        info_add = {}
    linear = conv.kernel_size == 1 and len(shape) != 4
    if linear:          # the rows of (..., C): one 1 x 1 image each
        images, (c, h, w) = int(np.prod(shape[:-1], dtype=np.int64)), (shape[-1], 1, 1)
    else:
        images, (c, h, w) = shape[0], shape[1:]
    k = conv.out_channels
    xo, yo = conv.output_shape(h, w)
    depthwise = driver.runs_depthwise(conv)
    groups = 1 if depthwise or conv.groups == 1 else conv.groups
    parts = [conv] if groups == 1 else [conv.group(g) for g in range(groups)]
    cg, kg = c // groups, k // groups
    for n in range(images):
        for g, part in enumerate(parts):
            info = {"layer": node.name, "C": cg, "K": kg, "H": h, "W": w, "kernel": part.kernel_size,
                    "stride": part.stride, "padding": part.padding,
                    "depthwise": bool(depthwise), "image": n, "group": g if groups > 1 else None,
                    # the layer's own MACs (a decomposed kernel's, not its 3x3 pieces')
                    "macs": (x.shape[1] * int(np.prod(transform.kernel_size)) if transform else
                             (1 if depthwise else cg) * part.kernel_size ** 2) * kg * xo * yo,
                    "source": {"kernel": list(transform.kernel_size), "C": x.shape[1]} if transform else None,
                    **info_add}
            cmd = _Command(part, src, (n * c + g * cg) * h * w, (cg, h, w), node.outputs[0],
                           (n * k + g * kg) * xo * yo, info, residual)
            steps.append(_Step("accel", [src] + ([residual["value"]] if residual else []),
                               [node.outputs[0]], command=cmd))
    return steps


def _avg_multiplier(scale, count):
    """QNNPACK's average-pooling multiplier ``f32(f32(s) / f32(f32(s) * f32(count)))``."""
    s = np.float32(scale)
    return float(np.float32(s / np.float32(s * np.float32(count))))


def _pool_steps(cfg, node, values):
    """The pooling engine's passes for a pooling node, or ``(None, reason)`` when its
    arithmetic is not the engine's (``hw.datapath.pool_engine``)."""
    x, y = values[node.inputs[0]], values[node.outputs[0]]
    if x.dtype != "u8" or len(x.shape) != 4 or len(y.shape) != 4:
        return None, "not a 4-D quint8 tensor"
    n, c, h, w = x.shape
    oh, ow = y.shape[2:]
    p = node.params
    zp, mult = x.zero_point, 0.0
    if node.kind == "ort_max_pool":      # ONNX MaxPool: a maximum (int8 kept offset keeps its order)
        (kh, kw), (sh, sw) = p["kernel_shape"], p["strides"]
        if kh != kw or sh != sw or len(set(p["pads"])) != 1:
            return None, "a rectangular window or stride, or unequal pads"
        if tuple(p["dilations"]) != (1, 1):
            return None, "dilation"
        mode, k, stride, pad = PoolMode.MAX, kh, sh, p["pads"][0]
    elif node.kind == "adaptive_avg_pool2d":
        if (h, w) == (oh, ow) or h % oh or w % ow:
            return None, "PyTorch's generic adaptive average (not QNNPACK's): other rounding"
        if (oh, ow) == (1, 1):
            mode, k, stride, pad, mult = PoolMode.GLOBAL, 0, 0, 0, _avg_multiplier(x.scale, h * w)
        elif h // oh == w // ow:
            mode, k = PoolMode.AVG, h // oh
            stride, pad, mult = k, 0, _avg_multiplier(x.scale, k * k)
        else:
            return None, "a rectangular adaptive window"
    else:
        (kh, kw), (sh, sw), (ph, pw) = (pair(p["kernel_size"]), pair(p["stride"] or p["kernel_size"]),
                                        pair(p["padding"]))
        if kh != kw or sh != sw or ph != pw:
            return None, "a rectangular window, stride or padding"
        k, stride, pad = kh, sh, ph
        if node.kind == "max_pool2d":
            if pair(p.get("dilation", 1)) != (1, 1):
                return None, "dilation"
            if p.get("ceil_mode") and h * w == 1:
                return None, "ceil_mode on a 1x1 image (PyTorch's output order differs)"
            mode = PoolMode.MAX
        else:
            if p.get("ceil_mode"):
                return None, "ceil_mode (PyTorch's generic average kernel: other rounding)"
            if k == 1:
                return None, "a 1x1 average (PyTorch refuses it)"
            mode, mult = PoolMode.AVG, _avg_multiplier(x.scale, k * k)
        if (y.scale, y.zero_point) != (x.scale, x.zero_point):
            return None, "output quantization differs from the input's"
    if w > cfg.line_buffer_depth or ow > cfg.line_buffer_depth:
        return None, f"rows wider than line_buffer_depth ({cfg.line_buffer_depth})"
    fields = {"mode": mode, "kernel": k, "stride": stride, "padding": pad, "zero_point": zp,
              "multiplier": mult, "channels": c, "height": h, "width": w,
              "out_height": oh, "out_width": ow, "in_pitch": w, "out_pitch": ow,
              "in_channel_pitch": h * w, "out_channel_pitch": oh * ow}
    fields = global_in_one_row(fields, cfg.line_buffer_depth)
    steps = []
    for image in range(n):
        info = {"layer": node.name, "pool": mode.name, "C": c, "H": h, "W": w, "kernel": k,
                "stride": stride, "padding": pad, "image": image, "macs": 0}
        cmd = _PoolCommand(fields, node.inputs[0], image * c * h * w, node.outputs[0], image * c * oh * ow, info)
        steps.append(_Step("accel", [node.inputs[0]], [node.outputs[0]], command=cmd))
    return steps, None


def decomposition_copies(src_shape, transform):
    """The pooling engine's copies that rearrange a large kernel's (N, C, H, W) input for
    its 3x3 decomposition (``host.runtime.host_ops.shifted_copies``): ``(shape, copies)``,
    the rearranged tensor's shape and per image and piece ``(a, b)`` that lands inside it
    ``(fields, source offset, destination offset, info)``, the input rows and columns
    the piece holds (its other bytes hold the zero point)."""
    p = transform.params
    nr, ns = transform.pieces
    r, s = transform.kernel_size
    ph, pw = p["padding"]
    n, c, h, w = src_shape
    xo = (h + 2 * ph - r) // p["stride"] + 1
    yo = (w + 2 * pw - s) // p["stride"] + 1
    rows, cols = p["stride"] * (xo - 1) + 3, p["stride"] * (yo - 1) + 3
    copies = []
    for image in range(n):
        for a in range(nr):
            for b in range(ns):
                i_lo, i_hi = max(0, ph - 3 * a), min(rows, h + ph - 3 * a)
                j_lo, j_hi = max(0, pw - 3 * b), min(cols, w + pw - 3 * b)
                if i_hi <= i_lo or j_hi <= j_lo:
                    continue            # the piece is all padding
                fields = {"mode": PoolMode.COPY, "kernel": 1, "stride": 1, "padding": 0, "zero_point": 0,
                          "multiplier": 0.0, "channels": c, "height": i_hi - i_lo, "width": j_hi - j_lo,
                          "out_height": 0, "out_width": 0, "in_pitch": w, "out_pitch": cols,
                          "in_channel_pitch": h * w, "out_channel_pitch": rows * cols}
                src_at = image * c * h * w + (i_lo + 3 * a - ph) * w + (j_lo + 3 * b - pw)
                dst_at = ((image * nr * ns + a * ns + b) * c * rows + i_lo) * cols + j_lo
                info = {"pool": "COPY", "C": c, "H": i_hi - i_lo, "W": j_hi - j_lo,
                        "image": image, "piece": [a, b], "macs": 0}
                copies.append((fields, src_at, dst_at, info))
    return (n, nr * ns * c, rows, cols), copies


def _copy_steps(name, src, dst, copies):
    """Steps of :func:`decomposition_copies`' passes from ``src`` into ``dst``."""
    return [_Step("accel", [src], [dst], command=_PoolCommand(fields, src, src_at, dst, dst_at,
                                                               {"layer": name, **info}))
            for fields, src_at, dst_at, info in copies]


def _shuffle_steps(node, values):
    """A channel shuffle (``x.view(n, g, c // g, h, w).transpose(1, 2)``: axes 1 and 2 of
    a 5-D u8 tensor swapped) as copy passes: per image and group ``a`` of the ``A``
    groups, its ``B`` images go ``A`` images apart. None for any other transpose."""
    x = values[node.inputs[0]]
    if x.dtype != "u8" or len(x.shape) != 5 or list(node.params.get("axes", ())) != [0, 2, 1, 3, 4]:
        return None
    n, a_n, b_n, h, w = x.shape
    image = h * w
    fields = {"mode": PoolMode.COPY, "kernel": 1, "stride": 1, "padding": 0, "zero_point": 0,
              "multiplier": 0.0, "channels": b_n, "height": h, "width": w, "out_height": 0, "out_width": 0,
              "in_pitch": w, "out_pitch": w, "in_channel_pitch": image, "out_channel_pitch": a_n * image}
    steps = []
    for i in range(n):
        for a in range(a_n):
            info = {"layer": node.name, "pool": "COPY", "C": b_n, "H": h, "W": w, "image": i, "macs": 0}
            cmd = _PoolCommand(fields, node.inputs[0], ((i * a_n + a) * b_n) * image,
                               node.outputs[0], (i * b_n * a_n + a) * image, info)
            steps.append(_Step("accel", [node.inputs[0]], [node.outputs[0]], command=cmd))
    return steps


def _host_step(node):
    params = dict(node.params)
    return _Step("host", list(node.inputs), list(node.outputs),
                 op=HostOp(node.kind, node.name, list(node.inputs), list(node.outputs), params,
                           needs_torch=node.kind == "torch"))


def _order(steps, roots):
    """A topological order of ``steps`` running every ready accelerator step before a
    host step (fewest segments the data flow allows); ties keep the traced order. A step
    depends on the earlier steps that write the bytes it reads (views: their base's)."""
    producer = {}
    for i, s in enumerate(steps):
        for out in s.outputs:
            producer.setdefault(roots[out][0], []).append(i)
    deps = [{j for name in s.inputs for j in producer.get(roots[name][0], []) if j < i}
            for i, s in enumerate(steps)]
    # steps writing the same output (a conv's commands) stay in their order
    done, order = set(), []
    pending = list(range(len(steps)))
    while pending:
        ready = [i for i in pending if deps[i] <= done]
        accel = [i for i in ready if steps[i].kind == "accel"]
        take = accel if accel else ready[:1]
        for i in take:
            order.append(i)
            done.add(i)
        pending = [i for i in pending if i not in done]
    return [steps[i] for i in order]


def _roots(graph):
    """{value: (root value, byte offset)} through aliases."""
    out = {}
    for name, v in graph.values.items():
        offset, root = 0, name
        while graph.values[root].alias_of is not None:
            base, extra = graph.values[root].alias_of
            offset += extra
            root = base
        out[name] = (root, offset)
    return out


def _allocate(sizes, lifetimes, reuse):
    """Offsets for buffers ``sizes`` (name -> bytes) alive over ``lifetimes`` (name ->
    (first step, last step)): greedy by size, at the lowest offset free over the whole
    lifetime. Returns ``(offsets, arena size)``."""
    offsets, placed = {}, []
    for name in sorted(sizes, key=lambda n: (-sizes[n], lifetimes[n][0], n)):
        size = _align(sizes[name], TENSOR_ALIGN)
        lo, hi = lifetimes[name]
        busy = sorted((o, o + s) for (o, s, a, b) in placed if not reuse or (a <= hi and lo <= b))
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            offset = max(offset, end)
        offsets[name] = offset
        placed.append((offset, size, lo, hi))
    return offsets, max((o + s for o, s, _, _ in placed), default=0)


def build(graph, layers, cfg=None, *, reuse=True, latency=50, info=None):
    """The :class:`Executable` of ``graph`` (whose ``layer`` nodes name ``layers``, the
    program's accelerator layers) for ``cfg``."""
    from host.runtime.sim import timeout_cycles
    cfg = cfg or AccelConfig()
    graph, fused, unfused = fuse(graph)
    graph, concatenated, unplaced = concatenate(graph)
    values = dict(graph.values)

    statics = {}                    # tensors outside the arena: name -> the byte they start as

    def fresh(base, shape, like, static=None):
        name, n = base, 1
        while name in values:
            name, n = f"{base}#{n}", n + 1
        values[name] = Value(name, tuple(shape), "u8", like.scale, like.zero_point, False)
        if static is not None:
            statics[name] = static
        return name

    g = type(graph)(values, graph.nodes, graph.inputs, graph.outputs)
    steps, host_reasons = [], {**unfused, **unplaced}
    for node in graph.nodes:
        if node.kind == "layer":
            steps += _conv_steps(cfg, node, g, layers, fresh)
        elif node.kind == "alias":
            src = values[node.inputs[0]]
            if src.dtype == "f32":      # a float tensor lives on the host: reshape there
                values[node.outputs[0]] = replace(values[node.outputs[0]], alias_of=None)
                steps.append(_host_step(type(node)("reshape", node.name, node.inputs, node.outputs)))
        elif node.kind == "transpose" and _shuffle_steps(node, values):
            steps += _shuffle_steps(node, values)
        elif node.kind in POOL_KINDS:
            pooled, reason = _pool_steps(cfg, node, values)
            if pooled:
                steps += pooled
            else:
                host_reasons[node.outputs[0]] = reason
                steps.append(_host_step(node))
        else:
            steps.append(_host_step(node))
    for step in steps:
        if step.kind == "host":
            host_reasons.setdefault(step.outputs[0], HOST_REASONS.get(step.op.kind, "no accelerator operator"))
    # storage: u8 tensors in the arena (views share their root), f32 on the host
    roots = _roots(g)
    steps = _order(steps, roots)
    last = len(steps)
    lifetimes = {}
    for i, s in enumerate(steps):
        for name in s.inputs + s.outputs:
            root = roots[name][0]
            if values[root].dtype != "u8" or root in statics:
                continue
            lo, hi = lifetimes.get(root, (i, i))
            lifetimes[root] = (min(lo, i), max(hi, i))
    for name in graph.outputs:          # read after the last step
        root = roots[name][0]
        if root in lifetimes:
            lifetimes[root] = (lifetimes[root][0], last)
    sizes = {r: values[r].size for r in lifetimes}
    offsets, arena_size = _allocate(sizes, lifetimes, reuse)

    # static image: per layer weights, parameter records, table; then lists, arena, trace
    image = bytearray()

    def place(data, align=TENSOR_ALIGN):
        nonlocal image
        at = _align(len(image), align)
        image += bytes(at - len(image))
        image += bytes(np.asarray(data, dtype=np.uint8).reshape(-1))
        return at

    placed_convs = {}
    plans = _Plans(cfg)
    static_at = {name: place(np.full(values[name].size, fill, dtype=np.uint8)) for name, fill in statics.items()}
    commands = [s.command for s in steps if s.kind == "accel"]
    for cmd in commands:
        if isinstance(cmd, _PoolCommand):
            continue
        if id(cmd.conv) not in placed_convs:
            placed_convs[id(cmd.conv)] = (place(weight_bytes(cmd.conv)), place(param_block(cmd.conv)),
                                          place(cmd.conv.table))
    segments_cmds, current = [], []
    step_kinds = []
    for s in steps:
        if s.kind == "accel":
            current.append(s.command)
            if len(step_kinds) == 0 or step_kinds[-1] != "segment":
                step_kinds.append("segment")
        else:
            if current:
                segments_cmds.append(current)
                current = []
            step_kinds.append(s.op)
    if current:
        segments_cmds.append(current)
    list_addrs = []
    total_commands = sum(len(c) for c in segments_cmds)
    lists_at = _align(len(image), IMAGE_ALIGN)
    arena_at = _align(lists_at + total_commands * COMMAND_BYTES, IMAGE_ALIGN)
    trace_at = _align(arena_at + arena_size, IMAGE_ALIGN)
    image_size = _align(trace_at + total_commands * TRACE_BYTES, IMAGE_ALIGN)

    def address(name, extra=0):
        root, offset = roots[name]
        if root in static_at:
            return static_at[root] + offset + extra
        return arena_at + offsets[root] + offset + extra

    records = bytearray()
    segments = []
    trace_next = trace_at
    for cmds in segments_cmds:
        list_addrs.append(lists_at + len(records))
        seg = Segment(list_addr=lists_at + len(records), count=len(cmds), trace_addr=trace_next)
        trace_next += len(cmds) * TRACE_BYTES
        timeout = 0
        for cmd in cmds:
            if isinstance(cmd, _PoolCommand):
                fields = {**cmd.fields, "input_addr": address(cmd.input, cmd.in_offset),
                          "output_addr": address(cmd.output, cmd.out_offset)}
                code = pool_error(cfg, {**fields, "multiplier": float32_bits(fields["multiplier"])},
                                  (0, image_size))
                if code:
                    raise QuantError(f"{cmd.info['layer']}: the pooling engine refuses the pass ({code.name})")
                records += bytes(driver.pool_record(fields))
                extents = pool_extents(fields)
                moved = sum(end - start for start, end in extents.values())
                timeout += 50 * moved + 20_000
                seg.commands.append({**cmd.info, "input": cmd.input, "output": cmd.output,
                                     "residual": None, "dram_bytes": moved})
                continue
            conv = cmd.conv
            c, h, w = cmd.in_shape
            wa, pa, ta = placed_convs[id(conv)]
            tiles = plans.tiles(conv, h, w, residual=cmd.residual is not None)
            try:
                desc = tiling.descriptor(
                    input_addr=address(cmd.input, cmd.in_offset), weight_addr=wa, params_addr=pa,
                    output_addr=address(cmd.output, cmd.out_offset), channels=c, height=h, width=w,
                    kernels=conv.out_channels, kernel_size=conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, depthwise=int(driver.runs_depthwise(conv)),
                    residual=None if cmd.residual is None else {
                        "addr": address(cmd.residual["value"], cmd.out_offset),
                        **{n: cmd.residual[n] for n in ("ma", "mb", "shift", "za", "zb", "zo", "lo")}},
                    **{f"tile_{n}": v for n, v in tiles.items()})
                schedule.check_fits(cfg, desc)
            except (ValueError, schedule.BufferOverflow) as exc:
                raise QuantError(f"layer {cmd.info['layer']}: {exc}") from None
            driver.check_window(desc, ta, (0, image_size))
            records += bytes(driver.command_record(desc, ta, conv.input_zero_point))
            timeout += timeout_cycles(cfg, desc, latency) + 10_000
            seg.commands.append({**cmd.info, "input": cmd.input, "output": cmd.output, "tiles": dict(tiles),
                                 "residual": cmd.residual["value"] if cmd.residual else None,
                                 "dram_bytes": sum(tiling.transfer_summary(desc)[:2]) + TABLE_BYTES})
        seg.timeout_cycles = timeout
        segments.append(seg)
    static = np.zeros(lists_at + len(records), dtype=np.uint8)
    static[:len(image)] = np.frombuffer(bytes(image), dtype=np.uint8)
    static[lists_at:] = np.frombuffer(bytes(records), dtype=np.uint8)

    tensors = {}
    for name, v in values.items():
        root = roots[name][0]
        in_arena = v.dtype == "u8" and (root in offsets or root in static_at)
        tensors[name] = TensorInfo(name=name, shape=tuple(v.shape), dtype=v.dtype,
                                   offset=address(name) if in_arena else -1, scale=float(v.scale),
                                   zero_point=int(v.zero_point), channels_last=bool(v.channels_last),
                                   storage=root)
    exe_steps, seg_iter = [], iter(segments)
    for kind in step_kinds:
        exe_steps.append(next(seg_iter) if kind == "segment" else kind)
    used = {n for s in exe_steps for n in getattr(s, "inputs", []) + getattr(s, "outputs", [])}
    used |= set(graph.inputs) | set(graph.outputs)
    used |= {c[k] for s in segments for c in s.commands for k in ("input", "output", "residual") if c[k]}
    tensors = {n: t for n, t in tensors.items() if n in used}
    stats = {"arena_bytes": arena_size, "tensor_bytes": int(sum(sizes.values())), "fused": fused,
             "concatenated": concatenated,
             "host_reasons": host_reasons,
             "weight_bytes": int(lists_at), "commands": total_commands,
             "planned_shapes": len(plans.cache)}
    return Executable(cfg=cfg, image=static, image_size=image_size, arena=(arena_at, arena_size),
                      tensor_bytes=int(sum(sizes.values())), trace=(trace_at, total_commands * TRACE_BYTES),
                      tensors=tensors, steps=exe_steps, inputs=list(graph.inputs),
                      outputs=list(graph.outputs), info={**(info or {}), **stats})
