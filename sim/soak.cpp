// The fast path of the simulation harness (sim/harness.py): a C++ main around the Verilated `sim_top`
// (sim/sim_top.v) that does what the cocotb testbench sim/tb_generator.py does, without waking Python:
// drives the avatars' z words, takes every pixel transfer and compares it with the golden model's
// pixel and with the expected x, y, plane and last fields (docs/ARCHITECTURE.md), in order.
//
// Usage: soak ZFILE EXPECTED NAVATARS NZ OUTDIR INPUT_PAUSE OUTPUT_STALL SEED MAX_CYCLES IDLE_AFTER
//   ZFILE     NAVATARS*NZ little-endian int32 z codes S(16,12), avatar by avatar
//   EXPECTED  NAVATARS*3*32*32 uint8 pixels of the golden model, plane, y, x order
//   OUTDIR    gets result.json (the verdict, same keys as the testbench's) and pixels.bin (the pixel field
//             of every transfer, in arrival order; NAVATARS*3072 bytes when all arrived)
//   INPUT_PAUSE, OUTPUT_STALL  probabilities of an idle z cycle and of pixel.ready low (seeded LCG)
// Exit status 0 with a verdict written (passed or not), 2 on bad arguments or files.
//
// soak --train [MAX_CYCLES]: the training run of the compiler's profile feedback (sim/runner.py build_soak, a
// build with -fprofile-generate): one avatar through the same loop as a soak, with pseudo-random z words offered
// on every cycle (the design takes as many as it needs) and its pixels compared with zeros; it writes nothing but
// the compiler's profile. It needs no model, so the build does not either. Exit status 0 when the avatar came
// out, 3 when MAX_CYCLES (default 2 000 000) ran out first (a profile of part of an avatar).
//
// One clock cycle is two evaluations: inputs and clk = 0 (combinational settle), then clk = 1 (the edge).
// The ports that decide a transfer (z.ready, pixel.valid, pixel.payload) are register outputs, so they
// are read after the edge for the next cycle. Verilator escapes the "__" of port names as "___05F".
#include "Vsim_top.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace {

constexpr int SIZE = 32, PLANE = SIZE * SIZE, AVATAR = 3 * PLANE;
// Pixel word fields, least significant first (base/contract.py PIXEL_WORD_FIELDS; the Python side checks
// that these match before it builds this file, see sim/harness.py).
constexpr int OFF_X = PW_OFF_X, OFF_Y = PW_OFF_Y, OFF_PLANE = PW_OFF_PLANE, OFF_LAST = PW_OFF_LAST;
constexpr unsigned MASK_PIXEL = (1u << PW_W_PIXEL) - 1, MASK_XY = (1u << PW_W_X) - 1, MASK_PLANE = (1u << PW_W_PLANE) - 1;

struct Lcg {  // deterministic, fast Bernoulli source
    uint64_t s;
    explicit Lcg(uint64_t seed) : s(seed * 6364136223846793005ull + 1442695040888963407ull) {}
    bool pause(double p) {
        if (p <= 0) return false;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        return (double)(s >> 11) * (1.0 / 9007199254740992.0) < p;
    }
};

bool read_file(const char* path, void* buf, size_t n) {
    FILE* f = fopen(path, "rb");
    if (!f) return false;
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    return got == n;
}

}  // namespace

int main(int argc, char** argv) {
    const bool train = (argc == 2 || argc == 3) && std::string(argv[1]) == "--train";
    if (argc != 11 && !train) {
        fprintf(stderr, "usage: soak ZFILE EXPECTED NAVATARS NZ OUTDIR INPUT_PAUSE OUTPUT_STALL SEED MAX_CYCLES IDLE_AFTER\n"
                        "       soak --train [MAX_CYCLES]\n");
        return 2;
    }
    // Training: one avatar whose z has more words than any design takes in a few hundred thousand cycles.
    const long n = train ? 1 : atol(argv[3]), nz = train ? 1L << 18 : atol(argv[4]);
    const std::string out = train ? "" : argv[5];
    const double in_pause = train ? 0.0 : atof(argv[6]), out_stall = train ? 0.0 : atof(argv[7]);
    const uint64_t seed = train ? 0 : strtoull(argv[8], nullptr, 10);
    const long max_cycles = train ? (argc == 3 ? atol(argv[2]) : 2000000) : atol(argv[9]);
    const long idle_after = train ? 64 : atol(argv[10]);
    if (n < 1 || nz < 1) { fprintf(stderr, "soak: NAVATARS and NZ must be >= 1\n"); return 2; }
    std::vector<int32_t> z(n * nz);
    std::vector<uint8_t> expected(n * AVATAR), hw;
    hw.reserve(n * AVATAR);
    if (train) {
        Lcg zr(12345);
        for (auto& v : z) v = (int16_t)((zr.s = zr.s * 6364136223846793005ull + 1442695040888963407ull) >> 48);
    } else {
        if (!read_file(argv[1], z.data(), z.size() * 4)) { fprintf(stderr, "soak: cannot read %s\n", argv[1]); return 2; }
        if (!read_file(argv[2], expected.data(), expected.size())) { fprintf(stderr, "soak: cannot read %s\n", argv[2]); return 2; }
    }

    VerilatedContext ctx;
    ctx.commandArgs(argc, argv);
    Vsim_top top(&ctx);
    Lcg in_rng(seed * 1000 + 1), out_rng(seed * 1000 + 2);

    long edge = 0;  // clock edges since time 0
    auto tick = [&]() { top.clk = 0; top.eval(); top.clk = 1; top.eval(); edge++; };
    top.rst = 1; top.z___05Fvalid = 0; top.z___05Fpayload = 0; top.pixel___05Fready = 0;
    for (int i = 0; i < 4; i++) tick();
    top.rst = 0;
    tick();

    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    const long edge0 = edge;
    long zi = 0, k = 0, received = 0, mismatches = 0, extra = 0, dones = 0, stray = 0;
    long first_index = -1, first_avatar = -1;
    unsigned first_word = 0;
    std::vector<long> first_edge, last_edge, dut_cycles;
    bool timed_out = false;
    long idle_left = -1;  // cycles still to run after the last avatar (stray pixels would show)
    while (true) {
        // Inputs for this cycle.
        bool zvalid = zi < n * nz && zi < nz * (received + 1) && !in_rng.pause(in_pause);
        top.z___05Fvalid = zvalid;
        top.z___05Fpayload = zvalid ? (uint32_t)z[zi] & 0xFFFFu : 0;
        bool ready = !out_rng.pause(out_stall);
        top.pixel___05Fready = ready;
        // The ports were settled by the last edge (register outputs): this cycle's transfers.
        bool zt = zvalid && top.z___05Fready;
        bool pt = ready && top.pixel___05Fvalid;
        uint32_t w = top.pixel___05Fpayload;
        tick();
        if (zt) {
            if (zi % nz == 0) first_edge.push_back(edge);
            zi++;
        }
        if (pt) {
            if (received >= n) {
                extra++;
            } else {
                long i = k;
                unsigned pix = w & MASK_PIXEL, x = (w >> OFF_X) & MASK_XY, y = (w >> OFF_Y) & MASK_XY;
                unsigned plane = (w >> OFF_PLANE) & MASK_PLANE, last = (w >> OFF_LAST) & 1u;
                bool bad = pix != expected[received * AVATAR + i] || x != (unsigned)(i % SIZE)
                           || y != (unsigned)((i / SIZE) % SIZE) || plane != (unsigned)(i / PLANE)
                           || last != (unsigned)(i == AVATAR - 1);
                if (bad) {
                    mismatches++;
                    if (first_index < 0) { first_index = i; first_avatar = received; first_word = w; }
                }
                hw.push_back((uint8_t)pix);
                if (++k == AVATAR) {
                    last_edge.push_back(edge);
                    k = 0;
                    received++;
                    if (received == n) idle_left = idle_after;
                }
            }
        }
        if (top.done) { dones++; dut_cycles.push_back((long)top.cycles); }
        if (idle_left >= 0 && idle_left-- == 0) break;
        if (idle_left < 0 && edge - edge0 >= max_cycles) { timed_out = true; break; }
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = (double)(std::clock() - c0) / CLOCKS_PER_SEC;
    stray = k;  // transfers of an avatar that never completed
    top.final();
    if (train) {
        printf("soak --train: %ld cycles, %ld pixel transfers\n", edge - edge0, received * AVATAR + k);
        return received == 1 ? 0 : 3;
    }

    FILE* fp = fopen((out + "/pixels.bin").c_str(), "wb");
    if (!fp) { fprintf(stderr, "soak: cannot write %s/pixels.bin\n", out.c_str()); return 2; }
    fwrite(hw.data(), 1, hw.size(), fp);
    fclose(fp);
    FILE* fr = fopen((out + "/result.json").c_str(), "w");
    if (!fr) { fprintf(stderr, "soak: cannot write %s/result.json\n", out.c_str()); return 2; }
    fprintf(fr, "{\"avatars\": %ld, \"received\": %ld, \"mismatches\": %ld, \"extra\": %ld, \"stray\": %ld, "
                "\"done_pulses\": %ld, \"busy_after\": %d, \"timed_out\": %s, \"max_cycles\": %ld,\n",
            n, received, mismatches, extra, stray, dones, (int)top.busy, timed_out ? "true" : "false", max_cycles);
    if (first_index >= 0)
        fprintf(fr, " \"first_mismatch\": {\"avatar\": %ld, \"index\": %ld, \"word\": %u},\n", first_avatar, first_index,
                first_word);
    else
        fprintf(fr, " \"first_mismatch\": null,\n");
    fprintf(fr, " \"cycles\": [");
    for (size_t a = 0; a < last_edge.size() && a < first_edge.size(); a++)
        fprintf(fr, "%s%ld", a ? ", " : "", last_edge[a] - first_edge[a] + 1);
    fprintf(fr, "],\n \"dut_cycles\": [");
    for (size_t a = 0; a < dut_cycles.size(); a++) fprintf(fr, "%s%ld", a ? ", " : "", dut_cycles[a]);
    fprintf(fr, "],\n \"sim_wall_s\": %.6f, \"sim_cpu_s\": %.6f, \"sim_cycles\": %ld}\n", wall, cpu, edge - edge0);
    fclose(fr);
    return 0;
}
