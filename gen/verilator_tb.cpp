// Minimal Verilator harness of module `generator` used by `avatargan bench rtl --verilator` (gen/vlbench.py).
// Usage: vgen ZFILE NZ NAVATARS OUTFILE READY_PROB
//   ZFILE: NZ*NAVATARS integers (S(16,12) codes); z words are offered every cycle of an avatar's load.
//   OUTFILE: one line per pixel transfer (the 21-bit payload, decimal) and "C <cycles>" after each done pulse.
//   READY_PROB: probability that pixel.ready is high on a cycle (deterministic LCG).
// Verilator escapes the "__" of Amaranth's port names as "___05F".
#include "Vgenerator.h"
#include "verilated.h"
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    Vgenerator* top = new Vgenerator;
    if (argc < 6) { fprintf(stderr, "usage: vgen ZFILE NZ NAVATARS OUTFILE READY_PROB\n"); return 2; }
    FILE* fz = fopen(argv[1], "r"); if (!fz) return 2; int nz = atoi(argv[2]); int navatars = atoi(argv[3]);
    FILE* fo = fopen(argv[4], "w");
    unsigned seed = 12345; double readyp = atof(argv[5]);
    top->clk = 0; top->rst = 1; top->eval(); top->clk = 1; top->eval(); top->clk = 0; top->rst = 0; top->eval();
    static int z[1 << 20]; for (int i = 0; i < nz * navatars; i++) if (fscanf(fz, "%d", &z[i]) != 1) return 2;
    int zi = 0, done = 0; long cyc = 0;
    while (done < navatars && cyc < 100000000L) {
        // drive inputs before rising edge
        top->z___05Fvalid = (zi < nz * navatars && zi < nz * (done + 1)) ? 1 : 0;
        top->z___05Fpayload = top->z___05Fvalid ? (z[zi] & 0xffff) : 0;
        seed = seed * 1103515245u + 12345u;
        top->pixel___05Fready = ((seed >> 16) % 1000) < readyp * 1000 ? 1 : 0;
        top->eval();
        int zt = top->z___05Fvalid && top->z___05Fready;
        int pt = top->pixel___05Fvalid && top->pixel___05Fready;
        unsigned pl = top->pixel___05Fpayload;
        top->clk = 1; top->eval(); top->clk = 0; top->eval(); cyc++;
        if (zt) zi++;
        if (pt) fprintf(fo, "%u\n", pl);
        if (top->done) { fprintf(fo, "C %u\n", top->cycles); done++; }
    }
    fclose(fo); delete top; return 0;
}
