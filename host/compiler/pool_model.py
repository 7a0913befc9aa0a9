"""The analytic cycle and DRAM-traffic model of a pooling-engine pass
(``hw.datapath.pool_engine``), as its trace record reports them.

Per channel and output row the engine issues the row's write, reads the input rows its
windows need (a copy: its own row; global pooling: every row), combines them one bus beat
per cycle (the vertical pass) and reduces each output from its window's columns one
column per cycle (windows of at most a bus beat's lanes: ``outputs_per_cycle`` outputs;
global pooling: a word of lanes) (the horizontal pass). The reads run up to
``ROWS_AHEAD`` rows ahead, so a row takes the longest of:

* its work: a fixed part per mode, its rows' beats as the DRAM returns them (the bus
  words each row spans; the tensor's base bus-aligned) and its horizontal
  cycles: ``ceil(out_width / n)`` for a window of at most a bus beat's lanes (the engine
  reduces ``n`` outputs, ``outputs_per_cycle``, from its two words of lanes at once),
  else ``out_width * kernel`` (global pooling: ``width`` over the lanes; a copy: none);
* its reads: ``pool_row_read`` cycles per input row (the DRAM latency over the rows
  read ahead) and ``pool_read_beat`` per R beat of them, a copy one read burst's issue;
* its write's issue (``planner.TIMING["write_slot"]`` over the outstanding writes).

DRAM bytes are exact. The constants in ``POOL_TIMING`` are fitted to the RTL at a DRAM
read latency of 50 cycles (``bench/model_validation.py``, which checks the model on
held-out passes).
"""

from hw.config import AccelConfig
from hw.contract import PoolMode
from hw.datapath.pool_engine import fast_kernel, outputs_per_cycle

from host.compiler.planner import TIMING

__all__ = ["POOL_TIMING", "pool_model", "pool_rows", "pool_pass", "global_in_one_row"]

POOL_TIMING = {
    "fixed": 145.626,  # per pass: checks, first read's latency, last write's response
    "copy_row": 3.723,  # per copied row beside its beats: write command, hand-over
    "max_row": 9.064,  # per max-pooled row beside its beats and columns (its groups' pipeline)
    "avg_row": 6.765,  # per averaged row: the requantizer drains behind the next row, whose
                       # command is queued
    "global_row": 8.834,  # per global average (one row of one output)
    "pool_row_read": 6.932,  # per input row of a pooled output row, reads bound
    "pool_read_row": 0.955,  # per pooled output row, reads bound: the hand-over
    "pool_read_beat": 0.402,  # per R beat of its input rows, reads bound
}


def pool_pass(mode, channels, height, width, kernel=0, stride=1, padding=0, *, ceil_mode=False,
              zero_point=0, multiplier=None, **pitches):
    """The :class:`hw.contract.PoolDescriptor` fields (addresses aside) of a pass of
    ``mode`` on a ``channels`` x ``height`` x ``width`` tensor: dense rows and channels
    unless ``pitches`` (``in_pitch``, ``out_pitch``, ``in_channel_pitch``,
    ``out_channel_pitch``) say otherwise; an average's ``multiplier`` defaults to one over
    its window."""
    mode = PoolMode(mode)
    if mode == PoolMode.COPY:
        oh, ow = height, width
    elif mode == PoolMode.GLOBAL:
        oh = ow = 1
    else:
        rounding = stride - 1 if ceil_mode else 0
        oh, ow = ((n + 2 * padding - kernel + rounding) // stride + 1 for n in (height, width))
    if multiplier is None:
        window = (kernel or height) * (kernel or width)
        multiplier = 1.0 / window if mode in (PoolMode.AVG, PoolMode.GLOBAL) else 0.0
    in_pitch, out_pitch = pitches.get("in_pitch", width), pitches.get("out_pitch", ow)
    return {"mode": mode, "channels": channels, "height": height, "width": width, "kernel": kernel,
            "stride": stride, "padding": padding, "out_height": oh, "out_width": ow,
            "in_pitch": in_pitch, "out_pitch": out_pitch,
            "in_channel_pitch": pitches.get("in_channel_pitch", height * in_pitch),
            "out_channel_pitch": pitches.get("out_channel_pitch", oh * out_pitch),
            "zero_point": zero_point, "multiplier": multiplier}


def global_in_one_row(p, max_width):
    """Pass ``p`` as the compiler issues it: a ``GLOBAL`` pass over dense channels whose
    positions fit one row (``max_width``, the engine's ``line_buffer_depth``) reads each
    channel as one row of ``height * width`` bytes, one transfer where a row each would
    wait for its own (the same sum, count and output). Other passes are unchanged."""
    h, w = p["height"], p["width"]
    if (PoolMode(p["mode"]) != PoolMode.GLOBAL or p["in_pitch"] != w or p["in_channel_pitch"] != h * w
            or h * w > max_width):
        return p
    return {**p, "height": 1, "width": h * w, "in_pitch": h * w}


def pool_rows(p, r):
    """The input rows (inside the tensor) output row ``r`` of pass ``p`` reads."""
    mode = PoolMode(p["mode"])
    if mode == PoolMode.COPY:
        return range(r, r + 1)
    if mode == PoolMode.GLOBAL:
        return range(p["height"])
    lo = r * p["stride"] - p["padding"]
    return range(max(0, lo), min(p["height"], lo + p["kernel"]))


def pool_model(cfg: AccelConfig, p, timing=None):
    """Modelled ``cycles``, ``dram_read_bytes`` and ``dram_write_bytes`` of pass ``p``
    (:class:`hw.contract.PoolDescriptor` fields, ``mode`` a :class:`PoolMode`; addresses
    are not needed)."""
    t = POOL_TIMING if timing is None else timing
    bus = cfg.axi_data_width // 8
    mode = PoolMode(p["mode"])
    width, pitch = p["width"], p["in_pitch"]

    def row_beats(i):
        """R beats of input row ``i``: the bus words its bytes span (a bus-aligned tensor)."""
        return (i * pitch % bus + width + bus - 1) // bus
    copy = mode == PoolMode.COPY
    out_rows = p["height"] if copy else (1 if mode == PoolMode.GLOBAL else p["out_height"])
    out_width = width if copy else (1 if mode == PoolMode.GLOBAL else p["out_width"])
    # outputs_per_cycle from a window of at most a bus beat's lanes, else a column per
    # cycle; global pooling a word of lanes per cycle
    if copy:
        horizontal = 0
    elif mode == PoolMode.GLOBAL:
        horizontal = -(-width // bus)
    elif p["kernel"] <= fast_kernel(cfg):
        horizontal = -(-out_width // outputs_per_cycle(cfg, mode, p["kernel"], p["stride"]))
    else:
        horizontal = out_width * p["kernel"]
    fixed_row = {PoolMode.COPY: t["copy_row"], PoolMode.MAX: t["max_row"], PoolMode.AVG: t["avg_row"],
                 PoolMode.GLOBAL: t["global_row"]}[mode]
    read_issue = TIMING["read_slot"] / cfg.max_outstanding_reads
    write_issue = TIMING["write_slot"] / cfg.max_outstanding_writes
    channel_cycles, rows_read = 0.0, 0
    for r in range(out_rows):
        in_rows = pool_rows(p, r)
        rows = len(in_rows)
        rows_read += rows
        beats = sum(row_beats(i) for i in in_rows)
        reads = read_issue if copy else rows * t["pool_row_read"] + beats * t["pool_read_beat"] + t["pool_read_row"]
        channel_cycles += max(fixed_row + beats + horizontal, reads, write_issue)
    c = p["channels"]
    return {"cycles": int(round(t["fixed"] + c * channel_cycles)), "dram_read_bytes": c * rows_read * width,
            "dram_write_bytes": c * out_rows * out_width}
