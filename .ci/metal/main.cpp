// metal-emu: runs each GATED_DELTA_NET case of gdn_cases.cpp twice over the same initial bytes,
// once on ggml's CPU backend (the reference) and once through the tree's own Metal host code
// (supports_op, graph optimizer, fusion table, ggml_metal_op_encode) with the tree's Metal kernel
// executed by the CPU emulation, and compares what both wrote.
//   usage: metal-emu [--require-supported] [--only SUBSTRING]
#include "device_emu.h"
#include "device_trace.h"
#include "gdn_cases.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml-impl.h"
#include "ggml-metal-common.h"
#include "ggml-metal-fusion.h"
#include "ggml-metal-ops.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

// Both sides do float math; the emulated kernel sums in another order than the CPU op (a SIMD
// group reduction in lane order vs. a sequential dot product). Observed over all cases, up to
// 64 tokens: attention NMSE 9e-15 .. 3.9e-14, states 5e-16 .. 6e-15 (the in-place and q/k norm
// forms measured on a throwaway Metal implementation of them). Mutants: the tiled head index in
// the interleaved branch or a dropped `* scale` give 0.5 .. 100, a q/k norm eps of 1e-6 dropped
// 4e-10 .. 5e-9. 1e-10 leaves rounding a margin of over 2500.
static const double nmse_max = 1e-10;

struct diff {
    double  err2 = 0, ref2 = 0, max_abs = 0;
    int64_t nan_bad = 0;  // NaN in one run only, or where the op must write
    double  nmse() const { return nan_bad ? NAN : ref2 > 0 ? err2 / ref2 : err2; }  // NaN: see nan_bad
    void    add(const diff & o) {
        err2 += o.err2, ref2 += o.ref2, nan_bad += o.nan_bad;
        max_abs = std::max(max_abs, o.max_abs);
    }
};

// compares tensor t of the two runs' copies of the buffer starting at base
static diff compare(const ggml_tensor * t, const char * base, const std::vector<char> & ref,
                    const std::vector<char> & emu, bool unwritten_ok) {
    diff d;
    for (int64_t i3 = 0; i3 < t->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < t->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < t->ne[1]; i1++)
                for (int64_t i0 = 0; i0 < t->ne[0]; i0++) {
                    const size_t off = (const char *) t->data - base + i0 * t->nb[0] + i1 * t->nb[1] +
                                       i2 * t->nb[2] + i3 * t->nb[3];
                    float r, e;
                    memcpy(&r, ref.data() + off, sizeof(float));
                    memcpy(&e, emu.data() + off, sizeof(float));
                    if (std::isnan(r) || std::isnan(e)) {
                        // NaN is the fill of memory no input owns: both left it alone, or a bug
                        d.nan_bad += !(unwritten_ok && std::isnan(r) && std::isnan(e));
                        continue;
                    }
                    d.err2 += ((double) r - e) * ((double) r - e);
                    d.ref2 += (double) r * r;
                    d.max_abs = std::max(d.max_abs, (double) std::fabs(r - e));
                }
    return d;
}

static int fusions_fired(ggml_metal_fusion_info * finfo, const char * label) {
    const int            n = ggml_metal_fusion_info_stats_get(finfo, nullptr, nullptr, 0);
    std::vector<const char *> labels(n);
    std::vector<uint64_t>     counts(n);
    ggml_metal_fusion_info_stats_get(finfo, labels.data(), counts.data(), n);
    for (int i = 0; i < n; i++) {
        if (strcmp(labels[i], label) == 0) return (int) counts[i];
    }
    return 0;
}

// METAL_EMU_DEBUG_GRAPH=1 (or 2) makes the host code log each node it encodes, as
// GGML_METAL_GRAPH_DEBUG does on a Mac: which nodes ran concurrently, which were fused
static int debug_graph() {
    const char * v = getenv("METAL_EMU_DEBUG_GRAPH");
    return v ? atoi(v) : 0;
}

// encodes the graph as ggml-metal-context.m does: graph optimizer (run by the scheduler through
// the backend's graph_optimize), one op context over all nodes, ggml_metal_op_encode advancing by
// the number of nodes each call consumed (more than one when a fusion fired)
static int encode_metal(ggml_metal_device_t dev, ggml_cgraph * gf) {
    ggml_metal_fusion_info * finfo = ggml_metal_fusion_info_init(/*enabled*/ true, /*debug*/ 0);
    ggml_metal_fusion_info_stats_init(finfo);  // counts the fusions, which the check reports
    ggml_graph_optimize(gf);
    ggml_metal_op_t op = ggml_metal_op_init(dev, /*cmd_buf*/ nullptr, gf, finfo, 0, gf->n_nodes,
                                            /*use_concurrency*/ true, /*use_capture*/ true, debug_graph());
    for (int idx = 0; idx < ggml_metal_op_n_nodes(op); ++idx) {
        const int res = ggml_metal_op_encode(op, idx);
        if (res == 0) break;
        idx += res - 1;
    }
    ggml_metal_op_free(op);  // ends the encoding: runs what is still pending
    const int fused = fusions_fired(finfo, "GATED_DELTA_NET+CPY");
    ggml_metal_fusion_info_free(finfo);
    return fused;
}

int main(int argc, char ** argv) {
    bool        require_supported = false;
    std::string only;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--require-supported")) {
            require_supported = true;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--require-supported] [--only SUBSTRING]\n", argv[0]);
            return 2;
        }
    }

    ggml_metal_device_t dev = ggml_metal_emu_device_init();
    ggml_backend_t      cpu = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(cpu, 1);  // the emulation's threads need the cores more

    printf("%-46s %-9s %-10s %-10s %-9s %-5s %6s  %s\n", "case", "supported", "attn NMSE", "state NMSE",
           "max|diff|", "fused", "ms", "result");
    int n_pass = 0, n_fail = 0, n_rejected = 0, idx = -1;
    for (const gdn_case & c : gdn_cases()) {
        idx++;
        if (!only.empty() && c.name.find(only) == std::string::npos) continue;

        ggml_init_params ip = {ggml_tensor_overhead() * 64 + ggml_graph_overhead(), nullptr, /*no_alloc*/ true};
        ggml_context *   ctx = ggml_init(ip);
        gdn_graph        g   = gdn_build(ctx, c);
        ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(ctx, ggml_backend_cpu_buffer_type());
        ggml_cgraph *         gf  = ggml_new_graph(ctx);
        for (ggml_tensor * t : g.roots) ggml_build_forward_expand(gf, t);

        // the scheduler would run a node the device rejects elsewhere; the encoder aborts on it
        std::string rejected;
        for (int i = 0; i < gf->n_nodes; i++) {
            ggml_tensor * n = gf->nodes[i];
            if (!ggml_op_is_empty(n->op) && !ggml_metal_device_supports_op(dev, n)) rejected += ggml_op_desc(n);
        }
        if (!rejected.empty()) {
            printf("%-46s %-9s %-10s %-10s %-9s %-5s %6s  REJECTED (%s)\n", c.name.c_str(), "no", "-", "-", "-", "-",
                   "-", rejected.c_str());
            n_rejected++;
            ggml_backend_buffer_free(buf);
            ggml_free(ctx);
            continue;
        }

        // the same initial bytes for both runs: NaN everywhere, then the inputs
        char * base = (char *) ggml_backend_buffer_get_base(buf);
        const size_t size = ggml_backend_buffer_get_size(buf);
        memset(base, 0xff, size);
        std::mt19937 rng(1234u + idx);
        for (auto & f : g.fill) f(rng);
        const std::vector<char> init(base, base + size);

        ggml_backend_graph_compute(cpu, gf);
        const std::vector<char> ref(base, base + size);

        memcpy(base, init.data(), size);
        emu::trace() = {};
        const auto t0    = std::chrono::steady_clock::now();
        const int  fused = encode_metal(dev, gf);
        const double ms  = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        const std::vector<char> emu_out(base, base + size);

        const diff da = compare(g.attn, base, ref, emu_out, false);
        diff       ds;
        for (ggml_tensor * t : g.states) ds.add(compare(t, base, ref, emu_out, g.states_have_unwritten));

        std::string why;
        for (const std::string & e : emu::trace().errors) why += (why.empty() ? "" : "; ") + e;
        if (da.nan_bad || ds.nan_bad) {
            why += (why.empty() ? "" : "; ") + std::to_string(da.nan_bad + ds.nan_bad) + " NaN mismatches";
        }
        if (!(da.nmse() <= nmse_max) || !(ds.nmse() <= nmse_max)) why += (why.empty() ? "" : "; ") + std::string("NMSE");
        if (g.expect_fusion && !fused) why += (why.empty() ? "" : "; ") + std::string("GDN+CPY did not fuse");

        printf("%-46s %-9s %-10.2e %-10.2e %-9.2e %-5s %6.0f  %s\n", c.name.c_str(), "yes", da.nmse(), ds.nmse(),
               std::max(da.max_abs, ds.max_abs), g.expect_fusion ? (fused ? "yes" : "NO") : "-", ms,
               why.empty() ? "ok" : ("FAIL: " + why).c_str());
        fflush(stdout);
        (why.empty() ? n_pass : n_fail)++;

        ggml_backend_buffer_free(buf);
        ggml_free(ctx);
    }

    printf("metal-emu: %d passed, %d failed, %d rejected by supports_op%s\n", n_pass, n_fail, n_rejected,
           require_supported && n_rejected ? " (--require-supported: rejections fail)" : "");
    ggml_backend_free(cpu);
    ggml_metal_emu_device_free(dev);
    return n_fail || (require_supported && n_rejected) ? 1 : 0;
}
