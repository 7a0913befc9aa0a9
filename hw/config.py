"""The accelerator's configuration: the only home of generator parameters."""

from dataclasses import dataclass, asdict, fields

__all__ = ["AccelConfig", "CHANNEL_BLOCK", "word_bytes_for", "tile_rows_limit", "check_range",
           "check_power_of_two", "check_flag", "check_dsp_packing"]

# The DPE's 9 lanes: a 3x3 window's taps, or 9 input channels of a 1x1 kernel (one block).
CHANNEL_BLOCK = 9


def word_bytes_for(yp):
    """Bytes of one streaming-buffer / line-buffer row word: a power of two >= 4 * yp. Two
    consecutive words then cover the YP windows of any beat, and one word per cycle keeps
    up with stride 2, which takes two new rows of ``2 * yp`` columns per beat and output row."""
    width = 1
    while width < 4 * yp:
        width *= 2
    return width


def tile_rows_limit(cfg):
    """Most rows of one tile the line buffer counts (``AccelConfig.max_tile_rows``).

    Every stored row of an iAct tile takes at least one streaming-buffer word, so a tile
    that fits the streaming buffer has at most ``streaming_buffer_depth // word_bytes``
    input rows; the same bound applies to an output tile's rows. The descriptor's 16-bit
    height caps it at 65535. ``cfg`` needs ``yp`` and ``streaming_buffer_depth``.
    """
    return min(cfg.streaming_buffer_depth // word_bytes_for(cfg.yp), (1 << 16) - 1)


def check_range(name, value, lo, hi):
    """The one range check of the generator: ``ValueError`` naming the parameter, the value
    and the allowed range. Blocks use it for their own parameters too."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")


def check_power_of_two(name, value, lo, hi):
    check_range(name, value, lo, hi)
    if value & (value - 1):
        raise ValueError(f"{name} must be a power of two in [{lo}, {hi}], got {value}")


def check_flag(name, value):
    """An on / off parameter: ``False``, ``True``, 0 or 1 (command lines give integers);
    returns it as a bool, else ``ValueError`` naming the parameter, the value and the
    allowed values."""
    if value not in (0, 1) or type(value) not in (bool, int):
        raise ValueError(f"{name} must be one of (False, True, 0, 1), got {value!r}")
    return bool(value)


def check_dsp_packing(yp, dsp_packing):
    """Packing puts windows ``2i`` and ``2i + 1`` in one multiplier, so it needs an even
    ``yp``: ``ValueError`` naming ``yp`` and its allowed values otherwise."""
    if dsp_packing and yp % 2:
        raise ValueError(f"yp must be even (2, 4, ..., 64) with dsp_packing: windows pair up "
                         f"in each DSP, got {yp}")


@dataclass(frozen=True)
class AccelConfig:
    """Parameters of one generated accelerator.

    kp, yp
        Rows (kernels in parallel) and columns (sliding windows in parallel) of the
        DPE array; the array does ``9 * kp * yp`` MACs per cycle.
    line_buffer_depth
        Longest input row, in activations (padding included), that the line buffer holds.
    streaming_buffer_depth
        Activations (bytes) of one iAct tile, per ping-pong half.
    stationary_buffer_depth
        3x3 kernel slices (9 weights each, one kernel x one channel) of one weight tile,
        per ping-pong half.
    output_buffer_depth
        int32 partial sums of one output tile, per ping-pong half.
    axi_data_width, axi_addr_width
        Width in bits of the AXI4 master's data and address buses.
    max_outstanding_reads, max_outstanding_writes
        AXI read bursts the DMA keeps in flight to hide DRAM latency; write bursts that
        may await their B response.
    read_buffer_depth
        Bus words of the DMA reader's R buffer; a burst is only requested when the buffer
        has room for all of it, so at least two 256-beat bursts.
    read_route_depth
        DMA reads the controller keeps in flight (their kinds queue to route the returning
        data to the input, weight or parameter path).
    write_queue_depth
        Output write commands the controller queues ahead of the DMA writer and the output
        repacker, so reads of the next tile are not held up behind them.
    sequencer_queue_depth
        Block commands the sequencer queues per compute-core command stream.
    line_buffer_slots
        Rows the line buffer's ring holds: 3 in use, the rest prefetched.
    drain_words
        Output-buffer words of one output row requantized per cycle (``drain_words * yp``
        requantizers): a tile drains in ``1 / drain_words`` of the cycles, so layers that
        accumulate few channels per output (depthwise, bound at ``drain_words / kp`` by
        the drain) run faster.
    csr_addr_width
        Address width of the AXI4-Lite register slave: the register window is
        ``csr_window = 1 << csr_addr_width`` bytes (the board's address map uses it).
    max_queue_length
        Most commands of one command-queue run (``QUEUE_LENGTH``); longer lists are
        refused with ``BAD_QUEUE``.
    dsp_packing
        Two u8 x s8 products per multiplier (one DSP48E2): array columns ``2i`` and
        ``2i + 1`` share one multiplication per tap (``hw.datapath.dpe_pair``), so the
        array takes ``9 * kp * yp // 2`` DSPs; needs an even ``yp``. Outputs are
        bit-identical either way.
    max_depthwise_lanes
        Most channels a depthwise layer runs at once (1 to ``CHANNEL_BLOCK``): the line
        buffer's lanes are ``min(kp, max_depthwise_lanes)`` (:attr:`depthwise_lanes`), each
        a copy of its window logic (about 1,700 LUTs per array column), and array row
        ``k`` below that takes lane ``k``.
    """

    kp: int = 3
    yp: int = 4
    line_buffer_depth: int = 256
    streaming_buffer_depth: int = 65536
    stationary_buffer_depth: int = 4096
    output_buffer_depth: int = 16384
    axi_data_width: int = 128
    axi_addr_width: int = 40
    max_outstanding_reads: int = 8
    max_outstanding_writes: int = 8
    read_buffer_depth: int = 512
    read_route_depth: int = 64
    write_queue_depth: int = 512
    sequencer_queue_depth: int = 4
    line_buffer_slots: int = 8
    drain_words: int = 2
    csr_addr_width: int = 12
    max_queue_length: int = 4096
    dsp_packing: bool = False
    max_depthwise_lanes: int = CHANNEL_BLOCK

    # (low, high) bounds of each field; powers of two where the hardware indexes by bits.
    LIMITS = {
        "kp": (1, 64),
        "yp": (1, 64),
        "line_buffer_depth": (8, 4096),
        "streaming_buffer_depth": (256, 1 << 22),
        "stationary_buffer_depth": (16, 1 << 20),
        "output_buffer_depth": (64, 1 << 22),
        "axi_addr_width": (32, 64),
        "max_outstanding_reads": (4, 32),
        "max_outstanding_writes": (1, 32),
        "read_buffer_depth": (512, 8192),       # >= two bursts of MAX_BURST_BEATS
        "read_route_depth": (2, 1024),
        "write_queue_depth": (2, 4096),
        "sequencer_queue_depth": (2, 64),
        "line_buffer_slots": (8, 32),           # slot index is the row count's low bits
        "drain_words": (1, 16),
        "csr_addr_width": (12, 16),             # covers the register map; AXI4-Lite >= 12
        "max_queue_length": (1, 1 << 24),
        "max_depthwise_lanes": (1, CHANNEL_BLOCK),     # the streaming buffer's row words per word
    }
    AXI_DATA_WIDTHS = (64, 128, 256, 512)
    POWER_OF_TWO = ("streaming_buffer_depth", "stationary_buffer_depth", "output_buffer_depth",
                    "read_buffer_depth", "line_buffer_slots", "drain_words")

    def __post_init__(self):
        for name, (lo, hi) in self.LIMITS.items():
            value = getattr(self, name)
            if name in self.POWER_OF_TWO:
                check_power_of_two(name, value, lo, hi)
            else:
                check_range(name, value, lo, hi)
        if self.axi_data_width not in self.AXI_DATA_WIDTHS or isinstance(self.axi_data_width, bool):
            raise ValueError(f"axi_data_width must be one of {self.AXI_DATA_WIDTHS}, "
                             f"got {self.axi_data_width!r}")
        # Every output tile must hold at least one array step of partial sums.
        if self.output_buffer_depth < self.kp * self.yp:
            raise ValueError(f"output_buffer_depth must be at least kp * yp = {self.kp * self.yp}, "
                             f"got {self.output_buffer_depth}")
        if self.stationary_buffer_depth < self.kp:
            raise ValueError(f"stationary_buffer_depth must be at least kp = {self.kp}, "
                             f"got {self.stationary_buffer_depth}")
        if self.streaming_buffer_words < 1:
            need = CHANNEL_BLOCK * word_bytes_for(self.yp)
            raise ValueError(f"streaming_buffer_depth must be at least {need} for yp = {self.yp}, "
                             f"got {self.streaming_buffer_depth}")
        # a frozen dataclass: store the flag as a bool even when given 0 / 1
        object.__setattr__(self, "dsp_packing", check_flag("dsp_packing", self.dsp_packing))
        check_dsp_packing(self.yp, self.dsp_packing)
        if self.line_buffer_depth < self.yp + 2:
            raise ValueError(f"line_buffer_depth must be at least yp + 2 = {self.yp + 2}, "
                             f"got {self.line_buffer_depth}")

    @property
    def max_tile_rows(self):
        """Most input rows of one iAct tile, and output rows of one output tile, that the
        line buffer counts (derived: see :func:`tile_rows_limit`). The host and the
        hardware validation refuse larger tiles."""
        return tile_rows_limit(self)

    @property
    def streaming_buffer_words(self):
        """Words per half of the streaming buffer (derived): each holds ``CHANNEL_BLOCK``
        row words of ``word_bytes_for(yp)`` bytes, so ``streaming_buffer_depth`` bytes
        rounded down."""
        return self.streaming_buffer_depth // (CHANNEL_BLOCK * word_bytes_for(self.yp))

    @property
    def depthwise_lanes(self):
        """Channels a depthwise layer runs at once, one per array row (derived): the line
        buffer's lanes, ``min(kp, max_depthwise_lanes)``. Below KP, the rows past them
        idle in depthwise layers, and a depthwise tile is one group of lanes
        (:attr:`max_depthwise_tile_k`)."""
        return min(self.kp, self.max_depthwise_lanes)

    @property
    def max_depthwise_tile_k(self):
        """Largest T_K of a depthwise layer (derived): the descriptor's 16-bit limit when
        the lanes are KP (a tile's kernel groups run one after the other), else
        :attr:`depthwise_lanes` (a tile is one group of channels)."""
        return (1 << 16) - 1 if self.depthwise_lanes == self.kp else self.depthwise_lanes

    @property
    def max_channel_images(self):
        """Channel images one line-buffer command may hold (derived): T_C * ceil(T_K / KP)
        is at most ``stationary_buffer_depth // kp``; at least 65535."""
        return max((1 << 16) - 1, self.stationary_buffer_depth // self.kp)

    @property
    def max_output_dim(self):
        """Largest output-tile dimension (rows, columns or kernels) the output buffer's
        counters hold (derived): rows <= output depth / (KP * YP), columns <= line buffer
        depth + 2 (padding 2), or output depth / KP (a flattened 1x1 tile), kernels <=
        min(stationary depth, output depth / YP); at least 4096, at most the descriptor's
        16-bit sizes."""
        out_words = self.output_buffer_depth // (self.kp * self.yp)
        dim = max(4096, out_words, self.line_buffer_depth + 2, self.output_buffer_depth // self.kp,
                  min(self.stationary_buffer_depth, self.output_buffer_depth // self.yp))
        return min(dim, (1 << 16) - 1)

    @property
    def csr_window(self):
        """Bytes of the AXI4-Lite register window (derived: ``1 << csr_addr_width``)."""
        return 1 << self.csr_addr_width

    @property
    def macs_per_cycle(self):
        """Multiply-accumulates per cycle (packed or not: ``dsp_packing`` halves the DSPs,
        not the MACs)."""
        return 9 * self.kp * self.yp

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown AccelConfig fields: {sorted(unknown)}")
        return cls(**data)
