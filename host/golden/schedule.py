"""The L3 loop nest of a layer as commands for the compute core's blocks.

``core_commands(cfg, desc, zero_point)`` walks the same loop nest as the Tiler
(``host.golden.tiling.commands``: output tiles ``k0, x0, y0``, then channel tiles ``c0``) and
returns, per command stream of :class:`hw.datapath.core.ComputeCore`, the commands in the order
the stream takes them. ``check_fits`` raises a clear error naming the buffer that a tile
overflows and the size it needs.
"""

from hw.config import AccelConfig, tile_rows_limit
from hw.contract import PARAM_BYTES, DmaKind
from hw.datapath.line_buffer import word_bytes_for

from host.golden import tiling
from host.golden.tiling import ceil_div, steps

__all__ = ["core_commands", "check_fits", "buffer_needs", "buffer_limit",
           "BufferOverflow"]


class BufferOverflow(ValueError):
    """A tile does not fit an on-chip buffer."""


def buffer_needs(cfg, desc):
    """What the largest tile of ``desc`` needs of each buffer, in the buffers' units.

    The bound is the one the controller checks in hardware: an iAct tile has at most
    ``min((T_XO - 1) * stride + R, H)`` rows and ``min((T_YO - 1) * stride + R, W)``
    columns, an output tile at most ``min(T_XO, XO)`` rows (both counted by the line
    buffer up to ``max_tile_rows``), a weight tile ``ceil(T_K / KP)`` kernel groups of
    ``T_C`` channels.
    """
    word = word_bytes_for(cfg.yp)
    d = desc
    R, S = d["kernel_size"], d["stride"]
    rows = min((d["tile_xo"] - 1) * S + R, d["height"])
    cols = min((d["tile_yo"] - 1) * S + R, d["width"])
    out_rows = min(d["tile_xo"], tiling.output_size(d["height"], R, S, d["padding"]))
    groups_k = ceil_div(d["tile_k"], cfg.kp)
    return {
        "line_buffer_depth": cols,
        "max_tile_rows": max(rows, out_rows),
        "streaming_buffer_depth": d["tile_c"] * rows * ceil_div(cols, word) * word,
        "stationary_buffer_depth": groups_k * cfg.kp * d["tile_c"],
        "output_buffer_depth": groups_k * d["tile_xo"] * ceil_div(d["tile_yo"], cfg.yp) * cfg.kp * cfg.yp,
    }


def buffer_limit(cfg, name):
    """The configuration's limit for a ``buffer_needs`` entry."""
    return tile_rows_limit(cfg) if name == "max_tile_rows" else getattr(cfg, name)


def check_fits(cfg, desc):
    """Raise :class:`BufferOverflow` naming the first buffer a tile of ``desc`` overflows."""
    units = {"line_buffer_depth": "activations per row", "max_tile_rows": "rows per tile",
             "streaming_buffer_depth": "bytes", "stationary_buffer_depth": "3x3 slices",
             "output_buffer_depth": "int32 sums"}
    for name, needed in buffer_needs(cfg, desc).items():
        have = buffer_limit(cfg, name)
        if needed > have:
            raise BufferOverflow(f"tile (T_K={desc['tile_k']}, T_C={desc['tile_c']}, "
                                 f"T_XO={desc['tile_xo']}, T_YO={desc['tile_yo']}) needs "
                                 f"{name} >= {needed} {units[name]}, the configuration has {have}")


def core_commands(cfg: AccelConfig, desc, zero_point):
    """Commands per ComputeCore stream for the whole layer (see module docstring)."""
    check_fits(cfg, desc)
    word = word_bytes_for(cfg.yp)
    R, S = desc["kernel_size"], desc["stride"]
    out = {name: [] for name in ("iact_rows", "weight_rows", "params_rows", "out_rows",
                                 "iact_load", "iact_replay", "weight_load", "weight_replay",
                                 "lb_cmd", "out_cmd")}
    for st in steps(desc):
        groups_k = ceil_div(st.tk, cfg.kp)
        groups = ceil_div(st.tyo, cfg.yp)
        words = st.tc * st.rows_in * ceil_div(st.cols_in, word)
        out["iact_rows"].append({"rows": st.tc * st.rows_in, "row_bytes": st.cols_in})
        out["iact_load"].append({"words": words})
        out["iact_replay"].append({"words": words, "replays": groups_k})
        out["weight_rows"].append({"rows": st.tk * st.tc, "row_bytes": R * R})
        out["weight_load"].append({"kernels": st.tk, "channels": st.tc, "kernel": R})
        out["weight_replay"].append({"kernel_groups": groups_k, "channels": st.tc})
        if st.first_c:
            out["params_rows"].append({"rows": st.tk, "row_bytes": PARAM_BYTES})
        out["lb_cmd"].append({"channels": st.tc * groups_k, "rows_in": st.rows_in,
                              "cols_in": st.cols_in, "out_rows": st.txo, "groups": groups,
                              "pad_top": st.pad_top, "pad_left": st.pad_left, "stride": S,
                              "kernel": R, "zero_point": zero_point})
        out["out_cmd"].append({"kernel_groups": groups_k, "channels": st.tc, "out_rows": st.txo,
                               "groups": groups, "init": int(st.first_c), "drain": int(st.last_c),
                               "kernels": st.tk, "out_cols": st.tyo})
    for c in tiling.commands(desc):
        if c["kind"] == DmaKind.OUTPUT:
            out["out_rows"].append({"rows": 1, "row_bytes": c["length"]})
    return out
