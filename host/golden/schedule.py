"""The L3 loop nest of a layer as commands for the compute core's blocks.

``core_commands(cfg, desc, zero_point)`` walks the same loop nest as the Tiler
(``host.golden.tiling.commands``: output tiles ``k0, x0, y0``, then channel tiles ``c0``) and
returns, per command stream of :class:`hw.datapath.core.ComputeCore`, the commands in the order
the stream takes them. ``check_fits`` raises a clear error naming the buffer that a tile
overflows and the size it needs.
"""

from hw.config import AccelConfig, tile_rows_limit
from hw.contract import CHANNEL_BLOCK, PARAM_BYTES, DmaKind
from hw.datapath.line_buffer import word_bytes_for

from host.golden import tiling
from host.golden.tiling import ceil_div, steps

__all__ = ["core_commands", "step_commands", "check_fits", "buffer_needs", "buffer_limit",
           "BufferOverflow"]


class BufferOverflow(ValueError):
    """A tile does not fit an on-chip buffer."""


def buffer_needs(cfg, desc):
    """What the largest tile of ``desc`` needs of each buffer, in the buffers' units.

    The bound is the one the controller checks in hardware: an iAct tile has at most
    ``min((T_XO - 1) * stride + R, H)`` rows and ``min((T_YO - 1) * stride + R, W)``
    columns (a 1x1 kernel: ``min(T_XO * stride, H)`` and ``min(T_YO * stride, W)``), an
    output tile at most ``min(T_XO, XO)`` rows (both counted up to ``max_tile_rows``). The
    streaming buffer holds words of ``CHANNEL_BLOCK`` row words: a 3x3 tile's row words
    fill them in order, a 1x1 tile's channel ``c`` goes to lane ``c mod 9`` of its block
    (a flat tile's channel as one row of ``rows * cols`` bytes).
    A weight tile is ``ceil(T_K / KP)`` kernel groups of ``T_C`` channels (3x3) or
    ``ceil(T_C / 9)`` channel blocks (1x1). The line buffer only serves 3x3 kernels. A
    depthwise tile's channels go L = ``cfg.depthwise_lanes`` (min(KP,
    ``max_depthwise_lanes``)) to a block of words, channel ``c`` to lane ``c mod L``, and
    its weight tile is ``ceil(T_K / KP)`` kernel groups of one channel (T_K <= L when L <
    KP: ``max_depthwise_tile_k``).
    """
    word = word_bytes_for(cfg.yp)
    d = desc
    R, S = d["kernel_size"], d["stride"]
    if R == 1:
        rows = min(d["tile_xo"] * S, d["height"])
        cols = min(d["tile_yo"] * S, d["width"])
    else:
        rows = min((d["tile_xo"] - 1) * S + R, d["height"])
        cols = min((d["tile_yo"] - 1) * S + R, d["width"])
    out_rows = min(d["tile_xo"], tiling.output_size(d["height"], R, S, d["padding"]))
    groups_k = ceil_div(d["tile_k"], cfg.kp)
    row_words = d["tile_c"] * rows * ceil_div(cols, word)
    blocks = ceil_div(d["tile_c"], CHANNEL_BLOCK)
    if d.get("depthwise"):
        streaming = ceil_div(d["tile_c"], cfg.depthwise_lanes) * rows * ceil_div(cols, word)
        channels = 1
    elif R == 1:
        # a flat tile's channel is one row of rows * cols pixels
        per_channel = ceil_div(rows * cols, word) if tiling.flat_tiles(d) else rows * ceil_div(cols, word)
        streaming = blocks * per_channel
        channels = blocks
    else:
        streaming = ceil_div(row_words, CHANNEL_BLOCK)
        channels = d["tile_c"]
    xo_total = tiling.output_size(d["height"], R, S, d["padding"])
    yo_total = tiling.output_size(d["width"], R, S, d["padding"])
    return {
        # a flat tile's one row of T_XO * YO columns, counted by the output buffer
        "max_output_dim": min(d["tile_xo"], xo_total) * yo_total if tiling.flat_tiles(d) else 0,
        "line_buffer_depth": cols if R == 3 else 0,
        "max_tile_rows": max(rows, out_rows),
        # a depthwise tile's channels, at most one group of lanes when they are fewer than KP
        "max_depthwise_tile_k": d["tile_k"] if d.get("depthwise") else 0,
        "streaming_buffer_words": streaming,
        "stationary_buffer_depth": groups_k * cfg.kp * channels,
        "output_buffer_depth": groups_k * d["tile_xo"] * ceil_div(d["tile_yo"], cfg.yp) * cfg.kp * cfg.yp,
    }


def buffer_limit(cfg, name):
    """The configuration's limit for a ``buffer_needs`` entry."""
    return tile_rows_limit(cfg) if name == "max_tile_rows" else getattr(cfg, name)


def check_fits(cfg, desc):
    """Raise :class:`BufferOverflow` naming the first buffer a tile of ``desc`` overflows."""
    units = {"max_output_dim": "output columns", "line_buffer_depth": "activations per row", "max_tile_rows": "rows per tile",
             "max_depthwise_tile_k": "depthwise channels per tile",
             "streaming_buffer_words": f"words of {CHANNEL_BLOCK} row words",
             "stationary_buffer_depth": "weight slices", "output_buffer_depth": "int32 sums"}
    for name, needed in buffer_needs(cfg, desc).items():
        have = buffer_limit(cfg, name)
        if needed > have:
            raise BufferOverflow(f"tile (T_K={desc['tile_k']}, T_C={desc['tile_c']}, "
                                 f"T_XO={desc['tile_xo']}, T_YO={desc['tile_yo']}) needs "
                                 f"{name} >= {needed} {units[name]}, the configuration has {have}")


def step_commands(cfg: AccelConfig, desc, st, zero_point):
    """The compute core's commands of one step ``st``, ``{stream: command}`` (streams a
    step does not use are absent). A 3x3 layer's windows come from the line buffer
    (``lb_cmd``), a 1x1 layer's channel-packed windows from the pointwise reader
    (``pw_cmd``); a flat step (``st.flat``) is one row of ``T_XO * T_YO`` pixels."""
    word = word_bytes_for(cfg.yp)
    R, S = desc["kernel_size"], desc["stride"]
    groups_k = ceil_div(st.tk, cfg.kp)
    row_words = ceil_div(st.cols_in, word)
    words = st.tc * st.rows_in * row_words
    cmds = {}
    if desc.get("depthwise"):
        channels = 1
        out_rows, out_cols = st.txo, st.tyo
        groups = ceil_div(st.tyo, cfg.yp)
        block_words = st.rows_in * row_words
        cmds["iact_rows"] = {"rows": st.tc * st.rows_in, "row_bytes": st.cols_in}
        cmds["iact_load"] = {"words": words, "block_words": block_words, "block_lanes": cfg.depthwise_lanes}
        cmds["iact_replay"] = {"words": words, "replays": 1, "pointwise": 1, "blocks": groups_k,
                               "rows": st.rows_in, "row_words": row_words, "row_step": row_words,
                               "block_words": block_words}
        cmds["weight_rows"] = {"rows": 1, "row_bytes": st.tk * R * R}
        cmds["lb_cmd"] = {"channels": groups_k, "rows_in": st.rows_in, "cols_in": st.cols_in,
                          "out_rows": st.txo, "groups": groups, "pad_top": st.pad_top,
                          "pad_left": st.pad_left, "stride": S, "kernel": R, "zero_point": zero_point}
    elif R == 1:
        if st.flat:
            pixels = st.rows_in * st.cols_in
            block_words = ceil_div(pixels, word)
            words = st.tc * block_words
            cmds["iact_rows"] = {"rows": st.tc, "row_bytes": pixels}
            rows, row_words, row_step, out_rows, out_cols = 1, block_words, 0, 1, st.txo * st.tyo
        else:
            block_words = st.rows_in * row_words
            cmds["iact_rows"] = {"rows": st.tc * st.rows_in, "row_bytes": st.cols_in}
            rows, row_step, out_rows, out_cols = st.txo, S * row_words, st.txo, st.tyo
        channels = st.blocks
        groups = ceil_div(out_cols, cfg.yp)
        cmds["iact_load"] = {"words": words, "block_words": block_words, "block_lanes": CHANNEL_BLOCK}
        cmds["iact_replay"] = {"words": words, "replays": groups_k, "pointwise": 1,
                               "blocks": st.blocks, "rows": rows, "row_words": row_words,
                               "row_step": row_step, "block_words": block_words}
        cmds["weight_rows"] = {"rows": st.blocks, "row_bytes": st.tk * CHANNEL_BLOCK}
        cmds["pw_cmd"] = {"channels": st.blocks * groups_k, "out_rows": out_rows,
                          "groups": groups, "row_words": row_words, "stride": 1 if st.flat else S}
    else:
        channels = st.tc
        out_rows, out_cols = st.txo, st.tyo
        groups = ceil_div(st.tyo, cfg.yp)
        cmds["iact_rows"] = {"rows": st.tc * st.rows_in, "row_bytes": st.cols_in}
        cmds["iact_load"] = {"words": words, "block_words": 1, "block_lanes": CHANNEL_BLOCK}
        cmds["iact_replay"] = {"words": words, "replays": groups_k, "pointwise": 0, "blocks": 0,
                               "rows": 0, "row_words": 0, "row_step": 0, "block_words": 1}
        cmds["weight_rows"] = {"rows": st.tc, "row_bytes": st.tk * R * R}
        cmds["lb_cmd"] = {"channels": st.tc * groups_k, "rows_in": st.rows_in,
                          "cols_in": st.cols_in, "out_rows": st.txo, "groups": groups,
                          "pad_top": st.pad_top, "pad_left": st.pad_left, "stride": S,
                          "kernel": R, "zero_point": zero_point}
    cmds["weight_load"] = {"kernels": st.tk, "channels": channels, "kernel_groups": groups_k}
    cmds["weight_replay"] = {"kernel_groups": groups_k, "channels": channels}
    if st.first_c:
        cmds["params_rows"] = {"rows": st.tk, "row_bytes": PARAM_BYTES}
    cmds["out_cmd"] = {"kernel_groups": groups_k, "channels": channels, "out_rows": out_rows,
                       "groups": groups, "init": int(st.first_c), "drain": int(st.last_c),
                       "kernels": st.tk, "out_cols": out_cols}
    return cmds


def core_commands(cfg: AccelConfig, desc, zero_point):
    """Commands per ComputeCore stream for the whole layer (see module docstring)."""
    check_fits(cfg, desc)
    out = {name: [] for name in ("iact_rows", "weight_rows", "params_rows", "out_rows",
                                 "iact_load", "iact_replay", "weight_load", "weight_replay",
                                 "lb_cmd", "pw_cmd", "out_cmd")}
    for st in steps(desc):
        for name, cmd in step_commands(cfg, desc, st, zero_point).items():
            out[name].append(cmd)
    for c in tiling.commands(desc):
        if c["kind"] == DmaKind.OUTPUT:
            out["out_rows"].append({"rows": 1, "row_bytes": c["length"]})
    return out
