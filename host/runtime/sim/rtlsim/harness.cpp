// Fast simulation harness of the dpegen accelerator: the Verilated model, an AXI4 DRAM
// model and an AXI4-Lite master in one process, driven over stdin / stdout.
//
// The DRAM model reproduces, cycle for cycle, what the cocotb testbench does with
// cocotbext-axi's AxiRam and the latency wrappers of host/runtime/sim/axi.py. cocotb runs its
// coroutines as tasks: at each rising clock edge the tasks waiting on the clock resume in
// the order they started waiting, and a task woken by an event (a queue put, an Event set)
// runs after every task already scheduled. Values read at the edge are the ones before it;
// values written take effect after it. The tasks below keep exactly that order:
//   - sinks (AR, AW, W; DUT -> memory): queue of 2, ready = not full after the edge's put;
//   - sources (R, B; memory -> DUT): queue of 2, a new item is driven at an edge where the
//     previous one was taken (or none was driven);
//   - process_read / process_write: AxiRam's burst loops;
//   - collect / deliver: the latency wrappers (AR served `latency` cycles after arrival,
//     B sent `latency` cycles after the burst's last W beat), only when latency > 0.
//
// Commands (one per line; replies are one line, "ok ..." or "err ..."):
//   mem SIZE PATH        load a DRAM image of SIZE bytes from PATH (raw)
//   reset LATENCY        new model, reset sequence, DRAM model with this latency
//   w OFFSET VALUE       AXI4-Lite write            -> ok BRESP
//   r OFFSET             AXI4-Lite read             -> ok VALUE
//   wait TIMEOUT         run until irq rises (or is high) or TIMEOUT cycles pass
//                                                   -> ok IRQ CYCLES_RUN
//   run N                run N cycles               -> ok
//   cycle                                           -> ok CYCLE
//   dump ADDR SIZE PATH  write DRAM bytes to PATH   -> ok
//   quit

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "Vharness_top.h"
#include "verilated.h"

#ifndef DW
#define DW 128
#endif
static const int LANES = DW / 8;

double sc_time_stamp() { return 0; }

// ---- signal access, for any Verilator signal type ----------------------------------
template <typename T>
static inline void set_bytes(T &sig, const uint8_t *p) {
    uint64_t v = 0;
    memcpy(&v, p, LANES < 8 ? LANES : 8);
    sig = (T)v;
}
template <std::size_t N>
static inline void set_bytes(VlWide<N> &sig, const uint8_t *p) {
    for (std::size_t i = 0; i < N; i++) {
        uint32_t w;
        memcpy(&w, p + 4 * i, 4);
        sig[i] = w;
    }
}
template <typename T>
static inline void get_bytes(const T &sig, uint8_t *p) {
    uint64_t v = (uint64_t)sig;
    memcpy(p, &v, LANES < 8 ? LANES : 8);
}
template <std::size_t N>
static inline void get_bytes(const VlWide<N> &sig, uint8_t *p) {
    for (std::size_t i = 0; i < N; i++) {
        uint32_t w = sig[i];
        memcpy(p + 4 * i, &w, 4);
    }
}

// ---- DRAM ------------------------------------------------------------------------
static std::vector<uint8_t> dram;

static void mem_read(uint64_t addr, uint8_t *out) {
    // AxiRam: read(address % size, lanes); a read running past the end comes back short
    // (the missing bytes read as 0).
    memset(out, 0, LANES);
    uint64_t size = dram.size();
    if (!size) return;
    uint64_t a = addr % size;
    uint64_t n = (a + LANES <= size) ? LANES : size - a;
    memcpy(out, dram.data() + a, n);
}

static bool mem_write(uint64_t addr, const uint8_t *data, uint64_t n) {
    // AxiRam: write(address % size, data); past the end the write fails (SLVERR).
    uint64_t size = dram.size();
    if (!size) return false;
    uint64_t a = addr % size;
    if (a + n > size) return false;
    memcpy(dram.data() + a, data, n);
    return true;
}

// ---- a cocotb-like scheduler -------------------------------------------------------
struct Task {
    virtual void resume() = 0;
    virtual ~Task() {}
};

struct Sched {
    std::deque<Task *> runq;
    std::vector<Task *> clock;   // waiting on RisingEdge(clk), in registration order
    uint64_t cycle = 0;          // CycleCounter (always the first clock task)
    void schedule(Task *t) { runq.push_back(t); }
    void await_clock(Task *t) { clock.push_back(t); }
    void fire_clock() {
        std::vector<Task *> w;
        w.swap(clock);
        for (Task *t : w) runq.push_back(t);
    }
    void run() {
        while (!runq.empty()) {
            Task *t = runq.front();
            runq.pop_front();
            t->resume();
        }
    }
};

struct Event {
    bool fired = false;
    std::vector<Task *> waiters;
    void set(Sched &s) {
        fired = true;
        for (Task *t : waiters) s.schedule(t);
        waiters.clear();
    }
    void clear() { fired = false; }
    void wait(Sched &s, Task *t) {
        if (fired) s.schedule(t);
        else waiters.push_back(t);
    }
};

struct Addr {            // an AR or AW request
    uint64_t addr;
    unsigned len, size, burst, id;
};
struct WBeat {
    uint8_t data[LANES];
    uint64_t strb;
    bool last;
};
struct RBeat {
    uint8_t data[LANES];
    unsigned id, resp;
    bool last;
};
struct BResp {
    unsigned id, resp;
};

// A sink's queue (AxiARSink, AxiAWSink, AxiWSink) with its single getter.
template <typename T>
struct SinkQueue {
    std::deque<T> q;
    Event getter;
    bool ready = false, ready_next = false;
    void put(Sched &s, const T &item) {
        q.push_back(item);
        getter.set(s);
    }
    void check_ready() { ready_next = q.size() < 2; }
};

// A StreamSource (AxiRSource, AxiBSource): task driving valid and the payload.
template <typename T>
struct Source : Task {
    Sched &s;
    std::deque<T> q;
    Event dequeue_event, active_event;
    bool valid = false, valid_next = false;
    bool dut_ready = false;     // the DUT's ready before the edge
    T item{}, item_next{};
    bool item_changed = false;
    int pc = 0;
    explicit Source(Sched &s) : s(s) {}
    bool full() const { return q.size() >= 2; }
    void push(const T &x) {    // the part of send() after the full() wait
        q.push_back(x);
        active_event.set(s);
    }
    void resume() override {
        if (pc == 1) {
            bool vs = valid;
            if ((dut_ready && vs) || !vs) {
                if (!q.empty()) {
                    item_next = q.front();
                    item_changed = true;
                    q.pop_front();
                    dequeue_event.set(s);
                    valid_next = true;
                } else {
                    valid_next = false;
                    active_event.clear();
                    pc = 2;
                    active_event.wait(s, this);
                    return;
                }
            }
        }
        pc = 1;
        s.await_clock(this);
    }
};

struct Dram {
    Sched s;
    unsigned latency = 0;
    SinkQueue<Addr> ar, aw;
    SinkQueue<WBeat> w;
    Source<RBeat> r{s};
    Source<BResp> b{s};
    std::deque<std::pair<uint64_t, Addr>> read_lat;    // add_read_latency's queue
    Event read_lat_event;
    std::deque<std::pair<uint64_t, BResp>> write_lat;  // add_write_latency's queue
    Event write_lat_event;

    // AxiSlaveRead._process_read (with add_read_latency's recv when latency > 0)
    struct ProcessRead : Task {
        Dram &d;
        int pc = 0;
        Addr ar{};
        uint64_t target = 0, cur = 0;
        unsigned n = 0, length = 0;
        bool have_beat = false;
        RBeat beat{};
        explicit ProcessRead(Dram &d) : d(d) {}
        void resume() override {
            Sched &s = d.s;
            for (;;) {
                if (pc == 0) {                       // recv()
                    if (d.latency) {
                        if (d.read_lat.empty()) {
                            d.read_lat_event.clear();
                            d.read_lat_event.wait(s, this);
                            return;
                        }
                        target = d.read_lat.front().first + d.latency;
                        ar = d.read_lat.front().second;
                        d.read_lat.pop_front();
                        pc = 1;
                    } else {
                        if (d.ar.q.empty()) {
                            d.ar.getter.clear();
                            d.ar.getter.wait(s, this);
                            return;
                        }
                        ar = d.ar.q.front();
                        d.ar.q.pop_front();
                        pc = 2;
                        start();
                    }
                }
                if (pc == 1) {                       // wait_until(arrived + latency)
                    if (s.cycle < target) {
                        s.await_clock(this);
                        return;
                    }
                    pc = 2;
                    start();
                }
                if (pc == 2) {                       // the beats
                    while (n < length) {
                        if (!have_beat) {
                            uint64_t word = (cur / LANES) * LANES;
                            beat.id = ar.id;
                            beat.last = n == length - 1;
                            beat.resp = 0;
                            mem_read(word, beat.data);
                            have_beat = true;
                        }
                        if (d.r.full()) {
                            d.r.dequeue_event.clear();
                            d.r.dequeue_event.wait(s, this);
                            return;
                        }
                        d.r.push(beat);
                        have_beat = false;
                        n++;
                        if (ar.burst != 0) cur += 1ull << ar.size;   // INCR (WRAP unused)
                    }
                    pc = 0;
                }
            }
        }
        void start() {
            uint64_t nb = 1ull << ar.size;
            cur = (ar.addr / nb) * nb;
            length = ar.len + 1;
            n = 0;
        }
    } process_read{*this};

    // add_read_latency's collect(): timestamps each AR as it arrives.
    struct Collect : Task {
        Dram &d;
        explicit Collect(Dram &d) : d(d) {}
        void resume() override {
            while (!d.ar.q.empty()) {
                d.read_lat.emplace_back(d.s.cycle, d.ar.q.front());
                d.ar.q.pop_front();
                d.read_lat_event.set(d.s);
            }
            d.ar.getter.clear();
            d.ar.getter.wait(d.s, this);
        }
    } collect{*this};

    // AxiSlaveWrite._process_write
    struct ProcessWrite : Task {
        Dram &d;
        int pc = 0;
        Addr aw{};
        uint64_t cur = 0;
        unsigned n = 0, length = 0;
        BResp resp{};
        explicit ProcessWrite(Dram &d) : d(d) {}
        void resume() override {
            Sched &s = d.s;
            for (;;) {
                if (pc == 0) {
                    if (d.aw.q.empty()) {
                        d.aw.getter.clear();
                        d.aw.getter.wait(s, this);
                        return;
                    }
                    aw = d.aw.q.front();
                    d.aw.q.pop_front();
                    uint64_t nb = 1ull << aw.size;
                    cur = (aw.addr / nb) * nb;
                    length = aw.len + 1;
                    n = 0;
                    resp = BResp{aw.id, 0};
                    pc = 1;
                }
                if (pc == 1) {
                    while (n < length) {
                        if (d.w.q.empty()) {
                            d.w.getter.clear();
                            d.w.getter.wait(s, this);
                            return;
                        }
                        WBeat beat = d.w.q.front();
                        d.w.q.pop_front();
                        uint64_t word = (cur / LANES) * LANES;
                        // contiguous strobed byte runs, each one write
                        int i = 0;
                        while (i < LANES) {
                            if (!((beat.strb >> i) & 1)) { i++; continue; }
                            int j = i;
                            while (j < LANES && ((beat.strb >> j) & 1)) j++;
                            if (!mem_write(word + i, beat.data + i, j - i)) {
                                resp.resp = 2;      // the beat's remaining runs are skipped
                                break;
                            }
                            i = j;
                        }
                        n++;
                        if (aw.burst != 0) cur += 1ull << aw.size;
                    }
                    if (d.latency) {
                        d.write_lat.emplace_back(s.cycle + d.latency, resp);
                        d.write_lat_event.set(s);
                        pc = 0;
                        continue;
                    }
                    pc = 2;
                }
                if (pc == 2) {
                    if (d.b.full()) {
                        d.b.dequeue_event.clear();
                        d.b.dequeue_event.wait(s, this);
                        return;
                    }
                    d.b.push(resp);
                    pc = 0;
                }
            }
        }
    } process_write{*this};

    // add_write_latency's deliver()
    struct Deliver : Task {
        Dram &d;
        int pc = 0;
        uint64_t due = 0;
        BResp resp{};
        explicit Deliver(Dram &d) : d(d) {}
        void resume() override {
            Sched &s = d.s;
            for (;;) {
                if (pc == 0) {
                    if (d.write_lat.empty()) {
                        d.write_lat_event.clear();
                        d.write_lat_event.wait(s, this);
                        return;
                    }
                    due = d.write_lat.front().first;
                    resp = d.write_lat.front().second;
                    d.write_lat.pop_front();
                    pc = 1;
                }
                if (pc == 1) {
                    if (s.cycle < due) {
                        s.await_clock(this);
                        return;
                    }
                    pc = 2;
                }
                if (pc == 2) {
                    if (d.b.full()) {
                        d.b.dequeue_event.clear();
                        d.b.dequeue_event.wait(s, this);
                        return;
                    }
                    d.b.push(resp);
                    pc = 0;
                }
            }
        }
    } deliver{*this};

    void start(unsigned lat) {
        latency = lat;
        // Reset de-asserted: the sinks are ready, the sources idle, the loops waiting.
        ar.ready = aw.ready = w.ready = true;
        ar.ready_next = aw.ready_next = w.ready_next = true;
        // Start order as cocotb's: the latency tasks start before the slave loops.
        if (latency) {
            collect.resume();
            deliver.resume();
        }
        s.run();
        r.resume();
        b.resume();
        process_write.resume();
        process_read.resume();
        s.run();
    }
};

// ---- the model and the bench -------------------------------------------------------
static std::unique_ptr<VerilatedContext> ctx;
static std::unique_ptr<Vharness_top> top;
static std::unique_ptr<Dram> ram;

// AXI4-Lite master state: l_* is the valid / ready written to the inputs, v_* the one the
// DUT sees (the wrapper registers every input at the clock edge).
static bool l_aw = false, l_w = false, l_b = false, l_ar = false, l_r = false;
static bool v_aw = false, v_w = false, v_b = false, v_ar = false, v_r = false;
static uint32_t l_rdata = 0;
static unsigned l_bresp = 0;

static void apply_inputs() {
    Vharness_top *t = top.get();
    Dram &d = *ram;
    t->m_axi_arready = d.ar.ready;
    t->m_axi_awready = d.aw.ready;
    t->m_axi_wready = d.w.ready;
    t->m_axi_rvalid = d.r.valid;
    t->m_axi_bvalid = d.b.valid;
}

// One clock cycle. The wrapper (harness_top) registers every input of the accelerator at
// the clock edge, so values written before the edge reach the accelerator right after it,
// as cocotb's writes do; the accelerator then has no logic that depends on a top-level
// input directly, and Verilator evaluates it once per edge.
static void step() {
    Vharness_top *t = top.get();
    Dram &d = *ram;
    Sched &s = d.s;
    s.cycle++;
    // sample before the edge
    bool arv = t->m_axi_arvalid, awv = t->m_axi_awvalid, wv = t->m_axi_wvalid;
    d.r.dut_ready = t->m_axi_rready;
    d.b.dut_ready = t->m_axi_bready;
    s.fire_clock();
    if (arv && d.ar.ready)
        d.ar.put(s, Addr{(uint64_t)t->m_axi_araddr, (unsigned)t->m_axi_arlen, (unsigned)t->m_axi_arsize,
                         (unsigned)t->m_axi_arburst, (unsigned)t->m_axi_arid});
    d.ar.check_ready();
    if (awv && d.aw.ready)
        d.aw.put(s, Addr{(uint64_t)t->m_axi_awaddr, (unsigned)t->m_axi_awlen, (unsigned)t->m_axi_awsize,
                         (unsigned)t->m_axi_awburst, (unsigned)t->m_axi_awid});
    d.aw.check_ready();
    if (wv && d.w.ready) {
        WBeat beat;
        get_bytes(t->m_axi_wdata, beat.data);
        beat.strb = (uint64_t)t->m_axi_wstrb;
        beat.last = t->m_axi_wlast;
        d.w.put(s, beat);
    }
    d.w.check_ready();
    s.run();
    // AXI4-Lite master: handshakes seen before the edge
    bool aw_done = v_aw && t->s_axil_awready;
    bool w_done = v_w && t->s_axil_wready;
    bool b_done = v_b && t->s_axil_bvalid;
    bool ar_done = v_ar && t->s_axil_arready;
    bool r_done = v_r && t->s_axil_rvalid;
    if (b_done) l_bresp = t->s_axil_bresp;
    if (r_done) l_rdata = t->s_axil_rdata;

    // values written in this step take effect after the edge
    d.ar.ready = d.ar.ready_next;
    d.aw.ready = d.aw.ready_next;
    d.w.ready = d.w.ready_next;
    d.r.valid = d.r.valid_next;
    d.b.valid = d.b.valid_next;
    if (d.r.item_changed) {
        d.r.item_changed = false;
        d.r.item = d.r.item_next;
        set_bytes(t->m_axi_rdata, d.r.item.data);
        t->m_axi_rid = d.r.item.id;
        t->m_axi_rresp = d.r.item.resp;
        t->m_axi_rlast = d.r.item.last;
    }
    if (d.b.item_changed) {
        d.b.item_changed = false;
        d.b.item = d.b.item_next;
        t->m_axi_bid = d.b.item.id;
        t->m_axi_bresp = d.b.item.resp;
    }
    if (aw_done) { l_aw = false; t->s_axil_awvalid = 0; }
    if (w_done) { l_w = false; t->s_axil_wvalid = 0; }
    if (b_done) { l_b = false; t->s_axil_bready = 0; }
    if (ar_done) { l_ar = false; t->s_axil_arvalid = 0; }
    if (r_done) { l_r = false; t->s_axil_rready = 0; }
    v_aw = l_aw; v_w = l_w; v_b = l_b; v_ar = l_ar; v_r = l_r;
    apply_inputs();
    // the edge
    t->clk = 1;
    t->eval();
    t->clk = 0;
    t->eval();
}

static void new_model(unsigned latency) {
    top.reset();
    ctx.reset(new VerilatedContext);
    ctx->randReset(0);
    top.reset(new Vharness_top{ctx.get()});
    ram.reset(new Dram);
    l_aw = l_w = l_b = l_ar = l_r = false;
    v_aw = v_w = v_b = v_ar = v_r = false;
    Vharness_top *t = top.get();
    t->clk = 0;
    t->rst = 1;
    t->eval();
    // start_clock_and_reset: two edges in reset (plus the one that registers rst)
    for (int i = 0; i < 3; i++) {
        t->clk = 1; t->eval();
        t->clk = 0; t->eval();
    }
    t->rst = 0;
    ram->start(latency);
    step();
}

static const uint64_t LITE_LIMIT = 100000;

static bool lite_write(uint32_t offset, uint32_t value, unsigned &bresp) {
    Vharness_top *t = top.get();
    t->s_axil_awaddr = offset;
    t->s_axil_awprot = 0;
    t->s_axil_awvalid = 1;
    t->s_axil_wdata = value;
    t->s_axil_wstrb = 0xF;
    t->s_axil_wvalid = 1;
    t->s_axil_bready = 1;
    l_aw = l_w = l_b = true;
    for (uint64_t i = 0; i < LITE_LIMIT && (l_aw || l_w || l_b); i++) step();
    bresp = l_bresp;
    return !(l_aw || l_w || l_b);
}

static bool lite_read(uint32_t offset, uint32_t &value) {
    Vharness_top *t = top.get();
    t->s_axil_araddr = offset;
    t->s_axil_arprot = 0;
    t->s_axil_arvalid = 1;
    t->s_axil_rready = 1;
    l_ar = l_r = true;
    for (uint64_t i = 0; i < LITE_LIMIT && (l_ar || l_r); i++) step();
    value = l_rdata;
    return !(l_ar || l_r);
}

int main(int argc, char **argv) {
    char line[4096];
    setvbuf(stdout, nullptr, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        char cmd[32] = {0};
        if (sscanf(line, "%31s", cmd) != 1) continue;
        std::string c = cmd;
        if (c == "quit") {
            break;
        } else if (c == "mem") {
            unsigned long long size;
            char path[3000];
            if (sscanf(line, "%*s %llu %2999s", &size, path) != 2) { printf("err usage\n"); continue; }
            dram.assign(size, 0);
            FILE *f = fopen(path, "rb");
            if (!f) { printf("err cannot open %s\n", path); continue; }
            size_t got = fread(dram.data(), 1, size, f);
            fclose(f);
            printf("ok %zu\n", got);
        } else if (c == "poke") {
            // write a file's bytes into DRAM at addr (the memory keeps its size)
            unsigned long long addr, size;
            char path[3000];
            if (sscanf(line, "%*s %llu %llu %2999s", &addr, &size, path) != 3) { printf("err usage\n"); continue; }
            if (addr + size > dram.size()) { printf("err poke past the end of DRAM\n"); continue; }
            FILE *f = fopen(path, "rb");
            if (!f) { printf("err cannot open %s\n", path); continue; }
            size_t got = fread(dram.data() + addr, 1, size, f);
            fclose(f);
            printf("ok %zu\n", got);
        } else if (c == "reset") {
            unsigned latency = 0;
            sscanf(line, "%*s %u", &latency);
            new_model(latency);
            printf("ok\n");
        } else if (!top) {
            printf("err no model: send reset first\n");
        } else if (c == "w") {
            unsigned long off, val;
            sscanf(line, "%*s %lu %lu", &off, &val);
            unsigned bresp = 0;
            if (lite_write((uint32_t)off, (uint32_t)val, bresp)) printf("ok %u\n", bresp);
            else printf("err write %lu did not complete\n", off);
        } else if (c == "r") {
            unsigned long off;
            sscanf(line, "%*s %lu", &off);
            uint32_t val = 0;
            if (lite_read((uint32_t)off, val)) printf("ok %u\n", val);
            else printf("err read %lu did not complete\n", off);
        } else if (c == "wait") {
            unsigned long long timeout = 0, n = 0;
            sscanf(line, "%*s %llu", &timeout);
            bool irq = top->irq;
            while (!irq && n < timeout) {
                step();
                n++;
                irq = top->irq;
            }
            printf("ok %d %llu\n", irq ? 1 : 0, n);
        } else if (c == "run") {
            unsigned long long n = 0;
            sscanf(line, "%*s %llu", &n);
            for (unsigned long long i = 0; i < n; i++) step();
            printf("ok\n");
        } else if (c == "cycle") {
            printf("ok %llu\n", (unsigned long long)ram->s.cycle);
        } else if (c == "dump") {
            unsigned long long addr, size;
            char path[3000];
            if (sscanf(line, "%*s %llu %llu %2999s", &addr, &size, path) != 3) { printf("err usage\n"); continue; }
            FILE *f = fopen(path, "wb");
            if (!f) { printf("err cannot open %s\n", path); continue; }
            std::vector<uint8_t> out(size, 0);
            for (unsigned long long i = 0; i < size && dram.size(); i++) out[i] = dram[(addr + i) % dram.size()];
            fwrite(out.data(), 1, size, f);
            fclose(f);
            printf("ok\n");
        } else {
            printf("err unknown command %s\n", cmd);
        }
    }
    top.reset();
    return 0;
}
