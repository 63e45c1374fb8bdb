// The GATED_DELTA_NET graphs the Metal emulation check runs (gdn_cases.cpp builds them).
#pragma once

#include "ggml.h"

#include <functional>
#include <random>
#include <string>
#include <vector>

struct gdn_case {
    std::string name;
    int64_t     S, H_k, H_v, T, B;
    int64_t     K           = 1;
    bool        interleaved = false;  // GGML_GDN_BCAST_INTERLEAVED (patched API)
    bool        kda         = false;  // gate of S_v values per head instead of one

    enum qk_layout { QK_CONTIGUOUS, QK_PERMUTED, QK_QKV_SLICES } qk = QK_CONTIGUOUS;

    bool cache_cpy = false;  // llama's delta-net-base graph: state tail copied into a cache view

    enum inplace_mode { INPLACE_NONE, INPLACE_DISTINCT, INPLACE_ALIAS, INPLACE_PADDED_CACHE } inplace = INPLACE_NONE;

    float l2_eps = 0.0f;  // > 0: the op L2-normalises q and k itself (patched API)

    // with INPLACE_ALIAS: a second step of new tokens reads the cache rows the first wrote in
    // place and rewrites them; no graph edge orders the two (the cache is a source of both), so
    // the Metal host code must see src[6] as written to keep them apart
    bool chain = false;
};

struct gdn_graph {
    ggml_tensor *              gdn = nullptr;
    std::vector<ggml_tensor *> roots;  // expanded into the graph in this order
    // input initialisation, run after the whole buffer was filled with NaN
    std::vector<std::function<void(std::mt19937 &)>> fill;
    ggml_tensor *              attn = nullptr;  // the attention scores
    std::vector<ggml_tensor *> states;          // where the state snapshots end up
    // the states tensors include memory that neither run writes (cache rows, padding): there, NaN
    // on both sides is equal; elsewhere any NaN fails the case
    bool                       states_have_unwritten = false;
    bool                       expect_fusion         = false;  // GDN + CPY should fuse
};

std::vector<gdn_case> gdn_cases();
gdn_graph             gdn_build(ggml_context * ctx, const gdn_case & c);
