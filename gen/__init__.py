"""Verilog generator: ``python -m gen --kp 3 --yp 4 [--block NAME] --out DIR``."""

import json
import time
from pathlib import Path

from amaranth.hdl import Value
from amaranth.lib import wiring


from .convert import convert
from hw.datapath.core import ComputeCore
from hw.dma import AxiReader, AxiWriter
from hw.datapath.dpe import DPE
from hw.datapath.dpe_array import DPEArray
from hw.datapath.line_buffer import LineBuffer
from hw.datapath.pointwise_reader import PointwiseReader
from hw.contract import register_map
from hw.datapath.requant import Requantizer
from hw.top import Accelerator

__all__ = ["add_config_arguments", "config_from_arguments", "BLOCKS", "DEFAULT_BLOCKS", "generate", "latency", "ports"]

# Every block the generator can emit, built from a config.
BLOCKS = {
    "accelerator": Accelerator,
    "core": ComputeCore,
    "dpe": lambda cfg: DPE(),
    "dpe_array": lambda cfg: DPEArray(kp=cfg.kp, yp=cfg.yp, dsp_packing=cfg.dsp_packing),
    "line_buffer": lambda cfg: LineBuffer(yp=cfg.yp, max_row=cfg.line_buffer_depth,
                                          lanes=cfg.depthwise_lanes),
    "pointwise_reader": lambda cfg: PointwiseReader(yp=cfg.yp, max_words=cfg.streaming_buffer_words),
    "requant": lambda cfg: Requantizer(),
    "axi_reader": AxiReader.from_config,
    "axi_writer": AxiWriter.from_config,
}
DEFAULT_BLOCKS = ("accelerator",)


def ports(component):
    """The component's ports as Verilog sees them: name, direction, width."""
    out = []
    for path, member, value in component.signature.flatten(component):
        direction = "input" if member.flow == wiring.In else "output"
        out.append({"name": "__".join(str(p) for p in path), "direction": direction,
                    "width": Value.cast(value).shape().width})
    return out


def _part_latencies(component):
    """``{attribute: latency}`` of the pipelined blocks a composite holds as attributes."""
    return {name: part.latency for name, part in vars(component).items()
            if isinstance(part, wiring.Component) and getattr(part, "latency", None) is not None}


def latency(name, component, cfg):
    """The manifest's ``latency`` of block ``name``: the block's own ``latency`` (cycles)
    for a pipelined block; for the composites, which have no single latency, a dict of
    their parts' latencies by part: ``core`` -> ComputeCore's parts (``streaming``,
    ``stationary``, ``line_buffer``, ``array``, ``output``, the four repackers),
    ``accelerator`` -> the core's parts plus ``axi_reader`` and ``axi_writer``."""
    own = getattr(component, "latency", None)
    if own is not None:
        return own
    if name == "core":
        return _part_latencies(component)
    if name == "accelerator":
        core, reader, writer = ComputeCore(cfg), AxiReader.from_config(cfg), AxiWriter.from_config(cfg)
        for part in (core, reader, writer, *vars(core).values()):
            if isinstance(part, wiring.Component):
                part._MustUse__used = True          # built to be asked, not elaborated
        return {**_part_latencies(core), "axi_reader": reader.latency, "axi_writer": writer.latency}
    raise ValueError(f"block {name!r} has no latency")


def generate(cfg, out_dir, blocks=None):
    """Write ``<block>.v`` for each block (default: the accelerator), ``manifest.json``
    (configuration, ports, latencies, register map) and ``dpegen_regs.h``.

    A module's ``latency`` in the manifest (see :func:`latency`) is an int, the block's
    ``latency`` in cycles (each block's docstring says from which transfer to which), for
    the pipelined blocks, and a dict ``{part: cycles}`` of the parts' latencies for the
    composites ``core`` and ``accelerator``; never None."""
    names = list(DEFAULT_BLOCKS) if blocks is None else list(blocks)
    unknown = [n for n in names if n not in BLOCKS]
    if unknown:
        raise ValueError(f"unknown block {unknown[0]!r}; choose from {sorted(BLOCKS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    regs = register_map(cfg)
    manifest = {"generator": "dpegen", "config": cfg.to_dict(), "modules": {},
                "register_map": regs.to_json()}
    (out_dir / "dpegen_regs.h").write_text(regs.c_header())
    for name in names:
        start = time.perf_counter()
        component = BLOCKS[name](cfg)
        text = convert(component, name)
        (out_dir / f"{name}.v").write_text(text)
        manifest["modules"][name] = {
            "file": f"{name}.v",
            "ports": ports(component),
            "latency": latency(name, component, cfg),
            "seconds": round(time.perf_counter() - start, 3),
        }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def add_config_arguments(parser):
    """One ``--<field>`` option per :class:`AccelConfig` field, defaulting to the field's."""
    import dataclasses
    from hw.config import AccelConfig
    defaults = AccelConfig()
    for f in dataclasses.fields(AccelConfig):
        parser.add_argument("--" + f.name.replace("_", "-"), type=int, default=getattr(defaults, f.name),
                            help=f"(default {getattr(defaults, f.name)})")


def config_from_arguments(parser, args):
    """The :class:`AccelConfig` of parsed options; an invalid one ends with the parser's error
    (naming the parameter, the value and the allowed range)."""
    import dataclasses
    from hw.config import AccelConfig
    try:
        return AccelConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(AccelConfig)})
    except ValueError as exc:
        parser.error(str(exc))
