"""PoolEngine: pooling and copies from DRAM to DRAM, one output row at a time."""

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.config import AccelConfig
from hw.contract import ErrorCode, PoolDescriptor, PoolMode
from hw.dma import beat_layout, cmd_layout
from hw.datapath.repacker import Repacker
from hw.datapath.pipeline import registered
from hw.datapath.requant import Requantizer
from hw.skid_buffer import SkidBuffer

__all__ = ["PoolEngine", "POOL_SUM_BITS", "ROWS_AHEAD", "MAX_OUTPUTS_PER_CYCLE", "fast_kernel",
           "outputs_per_cycle"]

POOL_SUM_BITS = 24          # a column's sum of up to 65535 rows of u8
ROWS_AHEAD = 8              # input rows read ahead of the pass that takes them
CHECK_LATENCY = 4           # register stages of a command's checks
MAX_OUTPUTS_PER_CYCLE = 4   # max-pooled outputs reduced at once from a beat's two words


def fast_kernel(cfg: AccelConfig):
    """The widest MAX / AVG window the engine reduces in one cycle (an output per cycle):
    a bus beat's lanes, as its two words of lanes hold any such window."""
    return cfg.axi_data_width // 8


def outputs_per_cycle(cfg: AccelConfig, mode, kernel, stride):
    """Outputs a cycle of the horizontal pass of a ``MAX`` or ``AVG`` window (``kernel``,
    ``stride``): a ``MAX`` window of at most :func:`fast_kernel` columns reduces the ``n``
    consecutive outputs whose windows lie in the two words of lanes after any first lane,
    ``(n - 1) * stride + kernel <= lanes + 1``, at most :data:`MAX_OUTPUTS_PER_CYCLE`; an
    ``AVG`` window one output (wider windows of either: one column) a cycle. (Global
    pooling reduces a word of lanes a cycle.)"""
    lanes = fast_kernel(cfg)
    if PoolMode(mode) != PoolMode.MAX or not 1 <= kernel <= lanes or stride < 1:
        return 1
    return min(MAX_OUTPUTS_PER_CYCLE, (lanes + 1 - kernel) // stride + 1)


def _tree(values, combine):
    """``values`` reduced pairwise by ``combine``, a balanced tree."""
    values = list(values)
    while len(values) > 1:
        values = [combine(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


class PoolEngine(wiring.Component):
    """Runs one :class:`hw.contract.PoolDescriptor` per ``cmd``, DRAM to DRAM.

    Channel ``c``'s input row ``i`` is the ``width`` bytes at ``input_addr + c *
    in_channel_pitch + i * in_pitch``, its output row ``r`` the ``out_width`` bytes at
    ``output_addr + c * out_channel_pitch + r * out_pitch``.

    * ``COPY``: each of the ``height`` input rows is written as the output row of the
      same index (``width`` bytes), the read beats passed to the writer as they come.
    * ``MAX`` / ``AVG``: output ``(r, o)`` reduces the input rows ``r * stride - padding
      + [0, kernel)`` and columns ``o * stride - padding + [0, kernel)`` that lie inside
      the tensor (the others count for nothing): their maximum, or their sum.
      ``GLOBAL``: one output per channel, from all ``height`` x ``width`` positions.
    * ``AVG`` and ``GLOBAL`` requantize the sum as QNNPACK's average pooling does
      (``host.golden.ops``): ``q = clamp(rne(f32(f32(sum - zero_point * count) *
      multiplier)) + zero_point, 0, 255)``, ``count`` the positions summed, through a
      :class:`Requantizer`.

    Per output row the input rows it needs are read (the reads run up to
    :data:`ROWS_AHEAD` rows ahead, their data waiting in the DMA reader), combined column
    by column into a row of ``POOL_SUM_BITS``-bit lanes one bus beat per cycle (the
    vertical pass), then each output is reduced from its columns (the horizontal pass)
    and the row written. A window of at most ``lanes`` (bus bytes) columns lies in two
    words of lanes, read at once: one output per cycle (:func:`fast_kernel`), and for
    ``MAX`` up to :data:`MAX_OUTPUTS_PER_CYCLE` consecutive outputs whose windows all lie
    in those words (:func:`outputs_per_cycle`), handed to the row's packer together;
    global pooling sums a word of lanes per cycle; wider windows take one column per
    cycle. The fast pass is a pipeline of four stages (the words read, the window's
    lanes, groups of four lanes, the groups), global pooling's sum one more. A pooled
    row holds at most ``max_width`` (``AccelConfig.line_buffer_depth``) columns; copies
    have no limit.

    Before any DRAM access a command is checked (``code``, an :class:`ErrorCode`):
    ``BAD_POOL`` (no channel, row or column; a window of no column, no stride, padding not
    below the kernel, no output; a pooled row wider than ``max_width``; a pitch below its
    row; an average's multiplier not a positive normal float32), then
    ``ADDRESS_OVERFLOW`` and ``OUTSIDE_WINDOW`` for its reads and writes
    (``hw.contract.pool_extents``) against the address space and ``[window_base,
    window_base + window_size)``. ``done`` pulses (a register, the cycle after) when a
    command ends: refused, its last write's B response in, or stopped on a DMA error
    (``code`` ``DMA_READ_ERROR`` / ``DMA_WRITE_ERROR``; the caller clears the DMA
    engines); ``code`` is valid with
    ``done`` and holds until the next command. Counters for the command's trace record:
    ``cycles``, ``dram_read_bytes``, ``dram_write_bytes``.
    """

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        self.lanes = cfg.axi_data_width // 8
        self.max_width = cfg.line_buffer_depth
        self.words = -(-self.max_width // self.lanes)
        self.group = MAX_OUTPUTS_PER_CYCLE      # outputs a cycle at most (lanes >= 8)
        aw, dw = cfg.axi_addr_width, cfg.axi_data_width
        self.packer = Repacker(in_bytes=self.group, out_bytes=self.lanes, max_row=self.max_width)
        self.requant = Requantizer()
        super().__init__({
            "cmd": In(stream.Signature(PoolDescriptor)),
            "window_base": In(64), "window_size": In(64),
            "busy": Out(1), "done": Out(1), "code": Out(8),
            "cycles": Out(64), "dram_read_bytes": Out(64), "dram_write_bytes": Out(64),
            "rd_cmd": Out(stream.Signature(cmd_layout(aw))),
            "rd_data": In(stream.Signature(beat_layout(dw))),
            "rd_error": In(2),
            "wr_cmd": Out(stream.Signature(cmd_layout(aw))),
            "wr_data": Out(stream.Signature(beat_layout(dw))),
            "wr_done": In(stream.Signature(2)),
            "wr_error": In(2),
        })

    def elaborate(self, platform):
        m = Module()
        lanes, words, group_max = self.lanes, self.words, self.group
        lane_bits = (lanes - 1).bit_length()
        m.submodules.packer = packer = self.packer
        # the rows' commands to the packer through a skid buffer: the state machine's
        # decisions and the packer's next word are in different cycles
        m.submodules.row_skid = row_skid = SkidBuffer(packer.cmd.payload.shape())
        wiring.connect(m, row_skid.o, packer.cmd)
        row_cmd = row_skid.i
        # the packed words through a skid buffer: the writer's ready path stops at it
        m.submodules.packed_skid = packed_skid = SkidBuffer(packer.o.payload.shape())
        wiring.connect(m, packer.o, packed_skid.i)
        packed = packed_skid.o
        m.submodules.requant = requant = self.requant
        index = signed(34)                  # a row or column index, maybe outside the tensor

        d = Signal(PoolDescriptor)
        copy = d.mode == PoolMode.COPY
        # the pass's kinds used after its checks, registered (d is held from the command on)
        is_max = registered(m, d.mode == PoolMode.MAX, "is_max")
        is_global = d.mode == PoolMode.GLOBAL
        rows_out = Mux(copy, d.height, Mux(is_global, 1, d.out_height))
        cols_out = Mux(is_global, 1, d.out_width)
        span_rows = Mux(copy, 1, Mux(is_global, d.height, d.kernel))     # input rows per output row
        span_cols = d.kernel                 # the slow pass's windows (GLOBAL takes the fast one)
        # the counters' last values, registered (the command's, a cycle after it is taken):
        # equalities and comparisons with no adder before them
        end_span_rows, end_rows_out, end_channels, end_span_cols = (
            registered(m, value - 1, f"end_{name}") for value, name in (
                (span_rows, "span_rows"), (rows_out, "rows_out"), (d.channels, "channels"),
                (span_cols, "span_cols")))

        running = Signal()
        code = Signal(8)
        err = Signal(2)
        m.d.comb += [err.eq(self.rd_error | self.wr_error), self.busy.eq(running), self.code.eq(code)]
        finished = Signal()             # the command ends this cycle; ``done`` follows it
        m.d.sync += self.done.eq(finished)
        with m.If(running):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(self.rd_data.valid & self.rd_data.ready):
            m.d.sync += self.dram_read_bytes.eq(self.dram_read_bytes + self.rd_data.payload.count)
        with m.If(self.wr_data.valid & self.wr_data.ready):
            m.d.sync += self.dram_write_bytes.eq(self.dram_write_bytes + self.wr_data.payload.count)

        def first_row(row):
            return Mux(copy, row, Mux(is_global, 0, row * d.stride - d.padding))

        def first_row0(desc):
            """first_row(0) of a pass, also the first column of its first window: 0 for a
            copy or global pooling, else -padding."""
            return Mux((desc.mode == PoolMode.COPY) | (desc.mode == PoolMode.GLOBAL), 0, -desc.padding)

        # --- the read issuer: each input row of each output row, in order, through three
        # stages (the row, its offsets, its address), which advance together -----------------
        ic, ir, it = Signal(16), Signal(16), Signal(17)
        issuing = Signal()
        ahead = Signal(range(ROWS_AHEAD + 2))        # rows issued and not yet taken
        issued, taken = Signal(), Signal()
        issue_valid = Signal(3)
        in_row, in_channel = Signal(index), Signal(16)
        row_inside, channel_offset, row_offset = Signal(), Signal(48), Signal(64)
        read_inside, read_addr = Signal(), Signal(64)
        read_out = issue_valid[2] & (~read_inside | self.rd_cmd.ready & (ahead < ROWS_AHEAD))
        issue_advance = ~issue_valid[2] | read_out
        m.d.comb += [self.rd_cmd.valid.eq(issue_valid[2] & read_inside & (ahead < ROWS_AHEAD)),
                     self.rd_cmd.payload.addr.eq(read_addr), self.rd_cmd.payload.length.eq(d.width),
                     issued.eq(read_out & read_inside)]
        with m.If(issue_advance):
            m.d.sync += [issue_valid.eq(Cat(issuing, issue_valid[:2])),
                         in_row.eq(first_row(ir) + it), in_channel.eq(ic),
                         row_inside.eq((in_row >= 0) & (in_row < d.height)),
                         channel_offset.eq(in_channel * d.in_channel_pitch),
                         row_offset.eq(in_row[:32] * d.in_pitch),
                         read_inside.eq(row_inside), read_addr.eq(d.input_addr + channel_offset + row_offset)]
        with m.If(~running):
            m.d.sync += issue_valid.eq(0)
        with m.If(issuing):
            with m.If(issue_advance):
                with m.If(it < end_span_rows):
                    m.d.sync += it.eq(it + 1)
                with m.Else():
                    m.d.sync += it.eq(0)
                    with m.If(ir < end_rows_out):
                        m.d.sync += ir.eq(ir + 1)
                    with m.Else():
                        m.d.sync += ir.eq(0)
                        with m.If(ic < end_channels):
                            m.d.sync += ic.eq(ic + 1)
                        with m.Else():
                            m.d.sync += issuing.eq(0)
        m.d.sync += ahead.eq(ahead + issued - taken)

        # --- the output row in hand -----------------------------------------------------------
        c, r = Signal(16), Signal(16)
        top = Signal(index)                          # first_row(r), stepped with r
        top_end = Signal(index)                      # top + span_rows, stepped with it
        top_step = Mux(copy, 1, Mux(is_global, 0, d.stride))
        lo = Mux(top < 0, 0, top)
        hi = Mux(top_end > d.height, d.height, top_end)
        rows_in = Signal(17)                         # window rows inside the tensor
        zero_rows = Signal(25)                       # zero_point * rows_in
        write_addr, channel_write_addr = Signal(64), Signal(64)     # the row's, the channel's
        # top changes in NEXT; rows_in follows by ROW_DATA, zero_rows and end_rows_in (its
        # last row_t) by the first output and VERTICAL
        end_rows_in = Signal(17)
        m.d.sync += [rows_in.eq(Mux(hi > lo, hi - lo, 0)), zero_rows.eq(d.zero_point * rows_in),
                     end_rows_in.eq(rows_in - 1)]

        # the column sums (or maxima): one word of lanes per bus beat
        lane = unsigned(POOL_SUM_BITS)
        m.submodules.sums = sums = Memory(shape=data.ArrayLayout(lane, lanes), depth=words, init=[])
        wp = sums.write_port()
        rp = sums.read_port(transparent_for=(wp,))
        rp_next = sums.read_port(transparent_for=(wp,))     # the word after rp's: fast windows

        # vertical pass, two stages: read the beat's word, then combine and write it back
        beat = self.rd_data.payload
        word, row_t = Signal(range(words + 1)), Signal(17)
        v_valid, v_first = Signal(), Signal()
        v_word = Signal(range(max(words, 2)))
        v_data = Signal(data.ArrayLayout(unsigned(8), lanes))
        combined = Signal(data.ArrayLayout(lane, lanes))
        for i in range(lanes):
            old, new = rp.data[i], v_data[i]
            m.d.comb += combined[i].eq(Mux(v_first, new, Mux(is_max, Mux(new > old, new, old), old + new)))
        m.d.comb += [wp.addr.eq(v_word), wp.data.eq(combined), wp.en.eq(v_valid)]

        # horizontal pass, three stages: address a column's word (h_*), take its lane (p_*),
        # then reduce it
        o, ct = Signal(16), Signal(17)
        left = Signal(16)                # the fast pass's outputs (GLOBAL: words) not yet issued
        start = Signal(index)                        # the first column of output o's window
        col = Signal(index)
        m.d.comb += col.eq(start + ct)
        h_valid, h_inside, h_first, h_last = Signal(), Signal(), Signal(), Signal()
        h_lane, h_word = Signal(range(lanes)), Signal(range(max(words, 2)))
        acc, count = Signal(POOL_SUM_BITS), Signal(17)
        h_value = Signal(POOL_SUM_BITS)            # the h column's value, 0 outside the tensor
        m.d.comb += h_value.eq(Mux(h_inside, rp.data.as_value().word_select(h_lane, POOL_SUM_BITS), 0))
        p_valid, p_inside, p_first, p_last = Signal(), Signal(), Signal(), Signal()
        part = Signal(POOL_SUM_BITS)
        base = Mux(p_first, 0, acc)
        new_acc = Signal(POOL_SUM_BITS)
        new_count = Signal(17)
        m.d.comb += [new_acc.eq(Mux(is_max, Mux(part > base, part, base), base + part)),
                     new_count.eq(Mux(p_first, 0, count) + p_inside)]
        # the fast horizontal pass (MAX / AVG, kernel <= lanes; GLOBAL a word of lanes a
        # cycle, summed over the row's words): a group of outputs (MAX up to four, else
        # one) per cycle, through stages f (the window's two words on rp / rp_next), m (its
        # lanes), q (groups of four lanes) and r (the groups), GLOBAL's words summed in g
        fast = registered(m, (((d.mode == PoolMode.MAX) | (d.mode == PoolMode.AVG)) &
                              (d.kernel <= fast_kernel(self.cfg))) | is_global, "fast")
        row_words = registered(m, (d.width + lanes - 1) >> lane_bits, "row_words")   # GLOBAL's issues
        # a MAX window's group of outputs (outputs_per_cycle): output j's window starts
        # shifts[j] = j * stride lanes after output 0's (saturated past the two words)
        lane_index = range(2 * lanes + 1)

        def times(j):           # j * stride, by shifts and adds
            return sum(d.stride.as_unsigned() << b for b in range(j.bit_length()) if j >> b & 1)
        shifts = [0] + [registered(m, Mux(times(j) > 2 * lanes, 2 * lanes, times(j)), f"shift_{j}")
                        for j in range(1, group_max)]
        group = registered(m, 1 + sum(
            (is_max & (d.kernel <= lanes) & (times(j) + d.kernel <= lanes + 1)) for j in range(1, group_max)),
            "group")
        # the start's step from a group to the next: group * stride (not saturated: shifts
        # below a group's size lie in the two words)
        group_step = Signal(17)
        m.d.sync += group_step.eq(Mux(is_global, lanes, d.stride))
        for j in range(1, group_max):
            with m.If(group == j + 1):
                m.d.sync += group_step.eq(shifts[j] + d.stride)
        # f_lo[j] / f_hi[j]: output j's window's lanes [f_lo, f_hi) of the two words, inside
        # the tensor; f_n: the outputs of the group
        f_valid, f_n = Signal(), Signal(range(group_max + 1))
        # a GLOBAL output's first and last word (each other output: both)
        f_first, f_last, m_first, m_last, q_first, q_last, r_first, r_last = (Signal(name=name) for name in (
            "f_first", "f_last", "m_first", "m_last", "q_first", "q_last", "r_first", "r_last"))
        # GLOBAL: the row's words summed after the r stage (g_*), its output on the last
        g_valid, g_acc, g_count = Signal(), Signal(POOL_SUM_BITS), Signal(17)
        f_lo = [Signal(lane_index, name=f"f_lo_{j}") for j in range(group_max)]
        f_hi = [Signal(lane_index, name=f"f_hi_{j}") for j in range(group_max)]
        f_word = Signal(range(max(words, 2)))
        r_valid, r_acc, r_count, r_n = Signal(), Signal(POOL_SUM_BITS), Signal(17), Signal(range(group_max + 1))
        r_more = Signal(data.ArrayLayout(unsigned(8), max(group_max - 1, 1)))   # outputs 1 .. n-1
        out_valid = Mux(is_global, g_valid, r_valid)     # the fast pass's output, waiting
        window_lanes = [rp.data[i] for i in range(lanes)] + [rp_next.data[i] for i in range(lanes)]
        # f_lo <= lanes: lanes past it are after the window's start
        included = [[((f_lo[j] <= i) if i < lanes or j else 1) & (i < f_hi[j]) for i in range(2 * lanes)]
                    for j in range(group_max)]
        # the reduction in three stages: the window's lanes (m_*: the others zero), groups
        # of four lanes (q_*), then the groups (r_*); a MAX lane holds a byte. Output 0
        # sums or takes the maximum, outputs 1 .. n-1 (MAX) the maximum
        maximum = lambda a, b: Mux(a > b, a, b)
        quad = 4
        f_count = Mux(f_hi[0] > f_lo[0], f_hi[0] - f_lo[0], 0)
        m_valid, m_count, m_n = Signal(), Signal(17), Signal(range(group_max + 1))
        m_lanes = Signal(data.ArrayLayout(unsigned(POOL_SUM_BITS), 2 * lanes))
        m_bytes = [Signal(data.ArrayLayout(unsigned(8), 2 * lanes), name=f"m_bytes_{j}") for j in range(1, group_max)]
        m_max = [_tree([m_lanes[i][:8] for i in range(g, g + quad)], maximum) for g in range(0, 2 * lanes, quad)]
        m_sum = [_tree([m_lanes[i] for i in range(g, g + quad)], lambda a, b: a + b)
                 for g in range(0, 2 * lanes, quad)]
        m_more = [[_tree([b[i] for i in range(g, g + quad)], maximum) for g in range(0, 2 * lanes, quad)]
                  for b in m_bytes]
        q_valid, q_count, q_n = Signal(), Signal(17), Signal(range(group_max + 1))
        q_parts = Signal(data.ArrayLayout(unsigned(POOL_SUM_BITS), len(m_sum)))
        q_more = [Signal(data.ArrayLayout(unsigned(8), len(m_sum)), name=f"q_more_{j}") for j in range(1, group_max)]
        q_max = _tree([q_parts[i][:8] for i in range(len(m_sum))], maximum)
        q_sum = _tree([q_parts[i] for i in range(len(m_sum))], lambda a, b: a + b)

        # an output leaves on its last column (``emit``) into a register (``held_*``, with the
        # row's zero_point * rows_in), then MAX straight, AVG / GLOBAL requantized
        emit = Signal()
        held, held_acc, held_count = Signal(), Signal(POOL_SUM_BITS), Signal(17)
        held_n, held_more = Signal(range(group_max + 1)), Signal.like(r_more)
        held_zero_rows = Signal.like(zero_rows)
        sink_ready = Mux(is_max, packer.i.ready, requant.i.ready)
        out_ready = ~held | sink_ready
        with m.If(held & sink_ready):
            m.d.sync += held.eq(0)
        with m.If(emit):
            m.d.sync += [held.eq(1), held_acc.eq(Mux(is_global, g_acc, Mux(fast, r_acc, new_acc))),
                         held_count.eq(Mux(is_global, g_count, Mux(fast, r_count, new_count))),
                         held_zero_rows.eq(zero_rows),
                         held_n.eq(Mux(fast, r_n, 1)), held_more.eq(r_more)]
        with m.If(~running):
            m.d.sync += held.eq(0)
        m.d.comb += [
            requant.i.valid.eq(held & ~is_max),
            requant.i.payload.acc.eq(held_acc),
            requant.i.payload.bias.eq(-(held_zero_rows * held_count)),
            requant.i.payload.multiplier.eq(d.multiplier),
            requant.i.payload.zero_point.eq(d.zero_point),
            requant.i.payload.lo.eq(0), requant.i.payload.hi.eq(255),
            packer.i.valid.eq(Mux(is_max, held, requant.o.valid)),
            packer.i.payload.data[0].eq(Mux(is_max, held_acc[:8], requant.o.payload)),
            *(packer.i.payload.data[j].eq(held_more[j - 1]) for j in range(1, group_max)),
            packer.i.payload.count.eq(Mux(is_max, held_n, 1)),
            requant.o.ready.eq(packer.i.ready),
        ]

        # writes: the packed rows (pooling) or the read beats (copies); B responses counted
        writes_issued, writes_done = Signal(32), Signal(32)
        copying = Signal()                  # the COPY state: read beats go to the writer
        with m.If(copying):
            m.d.comb += [self.wr_data.valid.eq(self.rd_data.valid),
                         self.wr_data.payload.eq(self.rd_data.payload),
                         self.rd_data.ready.eq(self.wr_data.ready)]
        with m.Else():
            m.d.comb += [self.wr_data.valid.eq(packed.valid),
                         self.wr_data.payload.data.eq(packed.payload.data.as_value()),
                         self.wr_data.payload.count.eq(packed.payload.count),
                         self.wr_data.payload.last.eq(packed.payload.last),
                         packed.ready.eq(self.wr_data.ready)]
        m.d.comb += self.wr_done.ready.eq(1)
        with m.If(self.wr_done.valid):
            m.d.sync += writes_done.eq(writes_done + 1)

        def stop_on_errors():
            """Last in a state: a DMA error ends the command."""
            with m.If(err != 0):
                dma_code = Mux(self.rd_error != 0, ErrorCode.DMA_READ_ERROR, ErrorCode.DMA_WRITE_ERROR)
                m.d.sync += [code.eq(dma_code), running.eq(0), issuing.eq(0)]
                m.d.comb += finished.eq(1)
                m.next = "IDLE"

        # the command's checks, in the contract's order (host.golden.machine.pool_error), in
        # CHECK_LATENCY register stages: products, extents, ends, comparisons
        check = Signal(8)
        check_wait = Signal(range(CHECK_LATENCY + 1))
        averages = (d.mode == PoolMode.AVG) | is_global
        windowed = (d.mode == PoolMode.MAX) | (d.mode == PoolMode.AVG)
        exponent = d.multiplier[23:31]
        row_bytes = Mux(copy, d.width, cols_out)
        extent_in = (registered(m, (d.channels - 1) * d.in_channel_pitch, "in_channels_bytes") +
                     registered(m, (d.height - 1) * d.in_pitch, "in_rows_bytes") + d.width)
        extent_out = (registered(m, (d.channels - 1) * d.out_channel_pitch, "out_channels_bytes") +
                      registered(m, (rows_out - 1) * d.out_pitch, "out_rows_bytes") + row_bytes)
        extent_in, extent_out = registered(m, extent_in, "extent_in"), registered(m, extent_out, "extent_out")
        ends = [(d.input_addr, registered(m, d.input_addr + extent_in, "end_in")),
                (d.output_addr, registered(m, d.output_addr + extent_out, "end_out"))]
        window_end = registered(m, self.window_base + self.window_size, "window_end")
        bad_pool = ((d.channels == 0) | (d.height == 0) | (d.width == 0) |
                    (windowed & ((d.kernel == 0) | (d.stride == 0) | (d.padding >= d.kernel) |
                                 (d.out_height == 0) | (d.out_width == 0) | (d.out_width > self.max_width))) |
                    (~copy & (d.width > self.max_width)) |
                    (d.in_pitch < d.width) | (d.out_pitch < row_bytes) |
                    (averages & (d.multiplier[31] | (exponent == 0) | (exponent == 0xFF))))
        checks = [(ErrorCode.BAD_POOL, bad_pool),
                  (ErrorCode.ADDRESS_OVERFLOW, Cat(*(end > (1 << self.cfg.axi_addr_width) for _, end in ends)).any()),
                  (ErrorCode.OUTSIDE_WINDOW, Cat(*((start < self.window_base) | (end > window_end)
                                                   for start, end in ends)).any())]
        checks = [(error, registered(m, condition, f"check_{error.name.lower()}")) for error, condition in checks]
        m.d.comb += check.eq(0)
        for error, condition in reversed(checks):       # the first failing check wins
            with m.If(condition):
                m.d.comb += check.eq(error)

        with m.FSM(init="IDLE"):
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    p = self.cmd.payload
                    m.d.sync += [d.eq(p), running.eq(1), code.eq(0), check_wait.eq(0),
                                 ic.eq(0), ir.eq(0), it.eq(0), ahead.eq(0),
                                 c.eq(0), r.eq(0), writes_issued.eq(0), writes_done.eq(0),
                                 top.eq(first_row0(p)),
                                 write_addr.eq(p.output_addr), channel_write_addr.eq(p.output_addr),
                                 self.cycles.eq(0), self.dram_read_bytes.eq(0),
                                 self.dram_write_bytes.eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):          # no DRAM access before the checks pass
                m.d.sync += check_wait.eq(check_wait + 1)
                with m.If(check_wait == CHECK_LATENCY):
                    with m.If(check != 0):
                        m.d.sync += [code.eq(check), running.eq(0)]
                        m.d.comb += finished.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [issuing.eq(1), top_end.eq(top + span_rows)]
                        m.next = "ROW"
            with m.State("ROW"):            # the row's write command
                m.d.comb += [self.wr_cmd.valid.eq(1),
                             self.wr_cmd.payload.addr.eq(write_addr),
                             self.wr_cmd.payload.length.eq(Mux(copy, d.width, cols_out))]
                with m.If(self.wr_cmd.ready):
                    m.d.sync += [writes_issued.eq(writes_issued + 1), word.eq(0), row_t.eq(0)]
                    m.next = "ROW_DATA"
                stop_on_errors()
            with m.State("ROW_DATA"):
                with m.If(copy):
                    m.next = "COPY"
                with m.Else():               # the packer cuts the row's outputs
                    m.d.comb += [row_cmd.valid.eq(1), row_cmd.payload.rows.eq(1),
                                 row_cmd.payload.row_bytes.eq(cols_out)]
                    with m.If(row_cmd.ready):
                        m.d.sync += [o.eq(0), left.eq(Mux(is_global, row_words, cols_out)), ct.eq(0),
                                     h_valid.eq(0), p_valid.eq(0), f_valid.eq(0), m_valid.eq(0), q_valid.eq(0),
                                     r_valid.eq(0), g_valid.eq(0), start.eq(first_row0(d))]
                        with m.If(rows_in == 0):     # no window row inside the tensor
                            m.next = "HORIZONTAL"
                        with m.Else():
                            m.next = "VERTICAL"
                stop_on_errors()
            with m.State("COPY"):           # the row's bytes pass to the writer
                m.d.comb += copying.eq(1)
                with m.If(self.rd_data.valid & self.rd_data.ready & beat.last):
                    m.d.comb += taken.eq(1)
                    m.next = "NEXT"
                stop_on_errors()
            with m.State("VERTICAL"):       # combine the window's rows into the lanes
                m.d.comb += [self.rd_data.ready.eq(1), rp.addr.eq(word)]
                m.d.sync += [v_valid.eq(self.rd_data.valid), v_word.eq(word), v_first.eq(row_t == 0),
                             v_data.eq(beat.data)]
                with m.If(self.rd_data.valid):
                    with m.If(beat.last):
                        m.d.comb += taken.eq(1)
                        m.d.sync += [word.eq(0), row_t.eq(row_t + 1)]
                        with m.If(row_t == end_rows_in):
                            m.next = "SETTLE"
                    with m.Else():
                        m.d.sync += word.eq(word + 1)
                stop_on_errors()
            with m.State("SETTLE"):         # the last word is written this cycle
                m.d.sync += v_valid.eq(0)
                m.next = "HORIZONTAL"
            with m.State("HORIZONTAL"):     # each output from its columns
                with m.If(fast):
                    advance = ~out_valid | out_ready
                    issue = advance & (left != 0)
                    n = Mux(left < group, left, group)
                    word_first = Signal()                   # GLOBAL: the row's first word
                    m.d.comb += word_first.eq(~is_global | (start == 0))
                    word0 = start[lane_bits:lane_bits + 16]         # -1 (all outside) wraps
                    m.d.comb += [rp.addr.eq(Mux(advance, word0, f_word)),
                                 rp_next.addr.eq(Mux(advance, word0 + 1, f_word + 1))]
                    with m.If(out_valid & out_ready):
                        m.d.comb += emit.eq(1)
                    # the window's lanes: from its first column's (word -1's lanes are
                    # left of the tensor) to its last's or the row's end
                    first_lane = start[:max(lane_bits, 1)]
                    to_end = Signal(index)
                    m.d.comb += to_end.eq(d.width - (start - first_lane))
                    to_end_lane = Mux(to_end < 0, 0, to_end)
                    with m.If(advance):
                        m.d.sync += [f_valid.eq(issue), f_word.eq(word0), f_n.eq(n),
                                     f_first.eq(word_first), f_last.eq(~is_global | (left == 1)),
                                     m_valid.eq(f_valid), m_count.eq(f_count), m_n.eq(f_n),
                                     m_first.eq(f_first), m_last.eq(f_last),
                                     q_valid.eq(m_valid), q_count.eq(m_count), q_n.eq(m_n),
                                     q_first.eq(m_first), q_last.eq(m_last),
                                     r_valid.eq(q_valid), r_acc.eq(Mux(is_max, q_max, q_sum)),
                                     r_count.eq(q_count), r_n.eq(q_n), r_first.eq(q_first), r_last.eq(q_last),
                                     g_valid.eq(is_global & r_valid & r_last)]
                        with m.If(r_valid):         # a GLOBAL row's words add up
                            m.d.sync += [g_acc.eq(r_acc + Mux(r_first, 0, g_acc)),
                                         g_count.eq(r_count + Mux(r_first, 0, g_count))]
                        for j in range(group_max):
                            lo = first_lane + shifts[j]
                            end = lo + Mux(is_global, lanes, d.kernel)
                            m.d.sync += [f_lo[j].eq(Mux((start < 0) & (lo < lanes), lanes, lo)),
                                         f_hi[j].eq(Mux(rows_in == 0, 0, Mux(to_end < end, to_end_lane, end)))]
                        for i, (inc, lane_value) in enumerate(zip(included[0], window_lanes)):
                            m.d.sync += m_lanes[i].eq(Mux(inc, lane_value, 0))
                        for j, b in enumerate(m_bytes, start=1):
                            for i, (inc, lane_value) in enumerate(zip(included[j], window_lanes)):
                                m.d.sync += b[i].eq(Mux(inc, lane_value[:8], 0))
                        for i in range(len(m_sum)):
                            m.d.sync += q_parts[i].eq(Mux(is_max, m_max[i], m_sum[i]))
                        for q, parts in zip(q_more, m_more):
                            for i, part_max in enumerate(parts):
                                m.d.sync += q[i].eq(part_max)
                        for j, q in enumerate(q_more):
                            m.d.sync += r_more[j].eq(_tree([q[i] for i in range(len(m_sum))], maximum))
                        with m.If(issue):
                            m.d.sync += [left.eq(left - n), start.eq(start + group_step)]
                    with m.If((left == 0) & ~f_valid & ~m_valid & ~q_valid & ~(is_global & r_valid) & advance):
                        m.next = "NEXT"
                with m.Else():             # one column per cycle
                    stall = p_valid & p_last & ~out_ready
                    issue = ~stall & (o < cols_out)
                    m.d.comb += rp.addr.eq(Mux(stall, h_word, col[lane_bits:lane_bits + 16]))
                    with m.If(p_valid & p_last & out_ready):
                        m.d.comb += emit.eq(1)
                    with m.If(~stall):
                        m.d.sync += [h_valid.eq(issue), h_lane.eq(col[:max(lane_bits, 1)]),
                                     h_word.eq(col[lane_bits:lane_bits + 16]),
                                     h_inside.eq((col >= 0) & (col < d.width) & (rows_in != 0)),
                                     h_first.eq(ct == 0), h_last.eq(ct == end_span_cols),
                                     p_valid.eq(h_valid), part.eq(h_value),
                                     p_inside.eq(h_inside), p_first.eq(h_first), p_last.eq(h_last)]
                        with m.If(p_valid):
                            m.d.sync += [acc.eq(new_acc), count.eq(new_count)]
                        with m.If(issue):
                            with m.If(ct == end_span_cols):
                                m.d.sync += [ct.eq(0), o.eq(o + 1), start.eq(start + d.stride)]
                            with m.Else():
                                m.d.sync += ct.eq(ct + 1)
                    with m.If((o == cols_out) & ~stall & ~h_valid & ~(p_valid & ~p_last)):
                        with m.If(~p_valid | out_ready):
                            m.next = "NEXT"
                stop_on_errors()
            with m.State("NEXT"):
                with m.If(r < end_rows_out):
                    m.d.sync += [r.eq(r + 1), top.eq(top + top_step), top_end.eq(top_end + top_step),
                                 write_addr.eq(write_addr + d.out_pitch)]
                    m.next = "ROW"
                with m.Elif(c < end_channels):
                    m.d.sync += [r.eq(0), c.eq(c + 1), top.eq(first_row0(d)), top_end.eq(first_row0(d) + span_rows),
                                 channel_write_addr.eq(channel_write_addr + d.out_channel_pitch),
                                 write_addr.eq(channel_write_addr + d.out_channel_pitch)]
                    m.next = "ROW"
                with m.Else():
                    m.next = "FINISH"
                stop_on_errors()
            with m.State("FINISH"):         # every byte out and every write's B response in
                with m.If((writes_done == writes_issued) & ~held & ~packer.o.valid & ~packed.valid &
                          ~requant.o.valid & ~packer.i.valid):
                    m.d.comb += finished.eq(1)
                    m.d.sync += running.eq(0)
                    m.next = "IDLE"
                stop_on_errors()
        return m
