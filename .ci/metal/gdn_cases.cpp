// The GATED_DELTA_NET cases of the Metal emulation check and the ggml graphs they run.
//
// The graphs take the shapes llama builds (delta-net-base.cpp, qwen3next.cpp): q/k/v as views
// into one conv output, the state tail copied into a recurrent cache view right after the op (the
// pattern the Metal backend fuses), and, where the tree's ggml has them, the in-place state and
// q/k L2 norm forms. GDN_HAS_BCAST / GDN_HAS_STATE_INPLACE / GDN_HAS_QK_L2_NORM come from
// metal-check.sh, which looks for those functions in the tree's ggml.h: the pristine upstream
// tree has none of them.
#include "gdn_cases.h"

#include <cmath>
#include <cstring>

std::vector<gdn_case> gdn_cases() {
    using C = gdn_case;
    std::vector<gdn_case> v;
    auto add = [&](gdn_case c) { v.push_back(c); };

    // the tiled broadcast, in every tree
    add({"s32 h2 t1 b1", 32, 2, 2, 1, 1});
    add({"s64 h4 t7 b2", 64, 4, 4, 7, 2});
    add({"s128 h2 t16 b1", 128, 2, 2, 16, 1});
    add({"s64 t64 b1", 64, 2, 2, 64, 1});
    add({"s64 hk2 hv4 tiled t5 b2", 64, 2, 4, 5, 2});
    add({"s128 hk1 hv4 tiled t1 b2", 128, 1, 4, 1, 2});
    add({"s64 hk2 hv4 tiled qk permuted t9 b2", 64, 2, 4, 9, 2, 1, false, false, C::QK_PERMUTED});
    add({"s32 hk2 hv4 tiled qkv slices t6 b2", 32, 2, 4, 6, 2, 1, false, false, C::QK_QKV_SLICES});
    add({"s32 h2 K3 t5 b2", 32, 2, 2, 5, 2, 3});
    add({"s64 h2 K3 t2 b1 (fewer tokens than K)", 64, 2, 2, 2, 1, 3});
    add({"s64 h2 kda t6 b2", 64, 2, 2, 6, 2, 1, false, true});
    add({"s64 hk2 hv4 tiled cache cpy t1 b2", 64, 2, 4, 1, 2, 1, false, false, C::QK_QKV_SLICES, true});
    add({"s32 h2 K3 cache cpy t5 b2", 32, 2, 2, 5, 2, 3, false, false, C::QK_CONTIGUOUS, true});
    add({"s64 h2 K3 cache cpy t2 b2", 64, 2, 2, 2, 2, 3, false, false, C::QK_CONTIGUOUS, true});

#ifdef GDN_HAS_BCAST
    add({"s64 hk2 hv4 interleaved t5 b2", 64, 2, 4, 5, 2, 1, true});
    add({"s128 hk2 hv8 interleaved t1 b1", 128, 2, 8, 1, 1, 1, true});
    add({"s32 hk2 hv4 interleaved qk permuted t7 b2", 32, 2, 4, 7, 2, 1, true, false, C::QK_PERMUTED});
    add({"s64 hk2 hv4 interleaved K3 cache cpy t5 b2", 64, 2, 4, 5, 2, 3, true, false, C::QK_QKV_SLICES, true});
    // Qwen3-Next's linear attention: 16 q/k heads shared by 32 value heads, repeat-interleaved
    add({"qwen3next s128 hk16 hv32 t1 b1", 128, 16, 32, 1, 1, 1, true, false, C::QK_QKV_SLICES, true});
    // a prompt chunk: 16 tokens keep the run short (1024 threadgroups of 128 threads each)
    add({"qwen3next s128 hk16 hv32 t16 b1", 128, 16, 32, 16, 1, 1, true, false, C::QK_QKV_SLICES, true});
#endif

#ifdef GDN_HAS_STATE_INPLACE
    add({"inplace distinct s64 h2 t3 b2", 64, 2, 2, 3, 2, 1, false, false, C::QK_CONTIGUOUS, false, C::INPLACE_DISTINCT});
    add({"inplace alias s64 hk2 hv4 t1 b2", 64, 2, 4, 1, 2, 1, false, false, C::QK_QKV_SLICES, false, C::INPLACE_ALIAS});
    add({"inplace K3 padded cache s32 h2 t5 b2", 32, 2, 2, 5, 2, 3, false, false, C::QK_CONTIGUOUS, false,
         C::INPLACE_PADDED_CACHE});
#endif

#ifdef GDN_HAS_QK_L2_NORM
    add({"qk l2 norm eps 1e-6 s64 h2 t4 b2", 64, 2, 2, 4, 2, 1, false, false, C::QK_CONTIGUOUS, false, C::INPLACE_NONE,
         1e-6f});
    add({"qk l2 norm eps 0.5 s32 hk2 hv4 t3 b1", 32, 2, 4, 3, 1, 1, false, false, C::QK_QKV_SLICES, false,
         C::INPLACE_NONE, 0.5f});
#endif

#if defined(GDN_HAS_BCAST) && defined(GDN_HAS_STATE_INPLACE) && defined(GDN_HAS_QK_L2_NORM)
    // what the patched llama builds for Qwen3-Next decode with every fused form on
    add({"qwen3next inplace alias + qk l2 norm t1 b1", 128, 16, 32, 1, 1, 1, true, false, C::QK_QKV_SLICES, false,
         C::INPLACE_ALIAS, 1e-6f});
    // two decode steps in one graph through the same cache rows
    add({"inplace alias, 2 chained steps, t1 b2", 64, 2, 4, 1, 2, 1, true, false, C::QK_QKV_SLICES, false,
         C::INPLACE_ALIAS, 1e-6f, true});
#endif
    return v;
}

// --- input data ------------------------------------------------------------------------------

static float * at(ggml_tensor * t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    return (float *) ((char *) t->data + i0 * t->nb[0] + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3]);
}

static void fill_each(ggml_tensor * t, const std::function<float()> & f) {
    for (int64_t i3 = 0; i3 < t->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < t->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < t->ne[1]; i1++)
                for (int64_t i0 = 0; i0 < t->ne[0]; i0++) *at(t, i0, i1, i2, i3) = f();
}

// rows of random direction and a norm log-uniform in [lo, hi]
static void fill_rows(ggml_tensor * t, std::mt19937 & rng, float lo, float hi) {
    std::normal_distribution<float>       n01(0.0f, 1.0f);
    std::uniform_real_distribution<float> lg(std::log2(lo), std::log2(hi));
    std::vector<float>                    row(t->ne[0]);
    for (int64_t i3 = 0; i3 < t->ne[3]; i3++)
        for (int64_t i2 = 0; i2 < t->ne[2]; i2++)
            for (int64_t i1 = 0; i1 < t->ne[1]; i1++) {
                double ss = 0;
                for (auto & x : row) {
                    x = n01(rng);
                    ss += (double) x * x;
                }
                const float s = std::exp2(lg(rng)) / (float) std::sqrt(ss);
                for (int64_t i0 = 0; i0 < t->ne[0]; i0++) *at(t, i0, i1, i2, i3) = row[i0] * s;
            }
}

// --- graphs ----------------------------------------------------------------------------------

gdn_graph gdn_build(ggml_context * ctx, const gdn_case & c) {
    gdn_graph g;
    const int64_t S = c.S, T = c.T, B = c.B, H_k = c.H_k, H_v = c.H_v;
    const int64_t D = S * S * H_v;  // one sequence's state

    // q, k, v: separate tensors, q/k stored token-major and permuted (a layout the op reads
    // through strides), or slices of one [2*H_k*S + H_v*S, T, B] conv output as in qwen3next.cpp
    ggml_tensor *q = nullptr, *k = nullptr, *v = nullptr;
    switch (c.qk) {
        case gdn_case::QK_CONTIGUOUS:
            q = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, S, H_k, T, B);
            k = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, S, H_k, T, B);
            v = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, S, H_v, T, B);
            break;
        case gdn_case::QK_PERMUTED:
            q = ggml_permute(ctx, ggml_new_tensor_4d(ctx, GGML_TYPE_F32, S, T, H_k, B), 0, 2, 1, 3);
            k = ggml_permute(ctx, ggml_new_tensor_4d(ctx, GGML_TYPE_F32, S, T, H_k, B), 0, 2, 1, 3);
            v = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, S, H_v, T, B);
            break;
        case gdn_case::QK_QKV_SLICES: {
            ggml_tensor * qkv = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, (2 * H_k + H_v) * S, T, B);
            const size_t  nb1 = qkv->nb[1], nb2 = qkv->nb[2], f = sizeof(float);
            q = ggml_view_4d(ctx, qkv, S, H_k, T, B, S * f, nb1, nb2, 0);
            k = ggml_view_4d(ctx, qkv, S, H_k, T, B, S * f, nb1, nb2, H_k * S * f);
            v = ggml_view_4d(ctx, qkv, S, H_v, T, B, S * f, nb1, nb2, 2 * H_k * S * f);
            break;
        }
    }
    ggml_tensor * gate = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, c.kda ? S : 1, H_v, T, B);
    ggml_tensor * beta = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, 1, H_v, T, B);

    // the recurrent cache: mem_size cells per snapshot slot, this batch's sequences at kv_head
    const int64_t mem_size = B + 2, kv_head = 1;
    const int64_t n_written = std::min(c.K, T);
    ggml_tensor * cache = nullptr;
    ggml_tensor * state = nullptr;
    ggml_tensor * state_dst = nullptr;

    if (c.inplace == gdn_case::INPLACE_ALIAS) {
        // the op reads each sequence's state from the cache rows it then overwrites
        cache = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, D, mem_size);
        state = ggml_view_4d(ctx, cache, S, S, H_v, B, S * sizeof(float), S * S * sizeof(float), cache->nb[1],
                             kv_head * cache->nb[1]);
        state_dst = ggml_view_3d(ctx, cache, D, B, 1, cache->nb[1], cache->nb[1] * B, kv_head * cache->nb[1]);
    } else {
        state = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, S, S, H_v, B);
        if (c.inplace == gdn_case::INPLACE_DISTINCT) {
            cache     = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, D, mem_size);
            state_dst = ggml_view_3d(ctx, cache, D, B, n_written, cache->nb[1], cache->nb[1] * B, kv_head * cache->nb[1]);
        } else if (c.inplace == gdn_case::INPLACE_PADDED_CACHE) {
            // rows padded by 32 floats and a spare row between the slots: nb[1] and nb[2] are free
            cache = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, D + 32, 1 + (B + 1) * c.K);
            state_dst = ggml_view_3d(ctx, cache, D, B, n_written, cache->nb[1], cache->nb[1] * (B + 1), cache->nb[1]);
        } else if (c.cache_cpy) {
            cache = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, D, mem_size * c.K);
        }
    }

    if (c.chain) {
        // Metal's concurrency check counts ranges that only touch as overlapping: without a gap,
        // the output allocated right after the cache would keep the two steps apart by itself
        // and the case could not tell whether the host code sees the in-place writes
        ggml_new_tensor_1d(ctx, GGML_TYPE_F32, 64);
    }

    ggml_tensor * out;
    if (c.inplace != gdn_case::INPLACE_NONE) {
#ifdef GDN_HAS_STATE_INPLACE
        out = ggml_gated_delta_net_state_inplace(ctx, q, k, v, gate, beta, state, state_dst, c.K);
#else
        GGML_ABORT("in-place case without ggml_gated_delta_net_state_inplace");
#endif
    } else {
        out = ggml_gated_delta_net(ctx, q, k, v, gate, beta, state, c.K);
    }
    if (c.interleaved) {
#ifdef GDN_HAS_BCAST
        ggml_gated_delta_net_set_bcast(out, GGML_GDN_BCAST_INTERLEAVED);
#else
        GGML_ABORT("interleaved case without ggml_gated_delta_net_set_bcast");
#endif
    }
    if (c.l2_eps > 0.0f) {
#ifdef GDN_HAS_QK_L2_NORM
        ggml_gated_delta_net_set_qk_l2_norm(out, c.l2_eps);
#else
        GGML_ABORT("q/k norm case without ggml_gated_delta_net_set_qk_l2_norm");
#endif
    }
    g.gdn = out;

    // the chained second step: the same forms over new tokens, reading and rewriting the rows
    ggml_tensor *q2 = nullptr, *k2 = nullptr, *v2 = nullptr, *gate2 = nullptr, *beta2 = nullptr, *out2 = nullptr;
    if (c.chain) {
        GGML_ASSERT(c.inplace == gdn_case::INPLACE_ALIAS);
        q2    = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, S, H_k, T, B);
        k2    = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, S, H_k, T, B);
        v2    = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, S, H_v, T, B);
        gate2 = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, c.kda ? S : 1, H_v, T, B);
        beta2 = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, 1, H_v, T, B);
#ifdef GDN_HAS_STATE_INPLACE
        out2 = ggml_gated_delta_net_state_inplace(ctx, q2, k2, v2, gate2, beta2, state, state_dst, c.K);
#endif
        GGML_ASSERT(out2 != nullptr);
        // the op params carry the broadcast and the norm: the second step takes the first's
        memcpy(out2->op_params, out->op_params, sizeof(out->op_params));
    }

    const size_t  f        = sizeof(float);
    const int64_t attn_n   = S * H_v * T * B;
    const int64_t snap_n   = D * B;  // one snapshot slot of all sequences
    g.attn = ggml_view_1d(ctx, out, attn_n, 0);
    g.roots.push_back(out);

    if (c.inplace != gdn_case::INPLACE_NONE) {
        if (out2) {
            g.roots.push_back(out2);  // after the first step: the CPU runs them in this order
            g.states.push_back(ggml_view_1d(ctx, out2, attn_n, 0));
        }
        g.states.push_back(cache);
        g.states_have_unwritten = true;
    } else if (c.cache_cpy) {
        // as delta-net-base.cpp: K == 1 copies the final state (a 4-D view) into a 2-D cache
        // view; K > 1 copies the written slots into one cache row group per slot
        ggml_tensor *src, *dst;
        if (c.K == 1) {
            src = ggml_view_4d(ctx, out, S, S, H_v, B, S * f, S * S * f, D * f, attn_n * f);
            dst = ggml_view_2d(ctx, cache, D, B, cache->nb[1], kv_head * cache->nb[1]);
        } else {
            src = ggml_view_3d(ctx, out, D, B, n_written, D * f, snap_n * f, attn_n * f);
            dst = ggml_view_3d(ctx, cache, D, B, n_written, cache->nb[1], mem_size * cache->nb[1], kv_head * cache->nb[1]);
        }
        g.roots.push_back(ggml_cpy(ctx, src, dst));
        g.states.push_back(cache);
        g.states_have_unwritten = true;
        g.expect_fusion         = true;
    } else {
        // slots past the written ones belong to the caller: neither run writes them
        g.states.push_back(ggml_view_1d(ctx, out, snap_n * n_written, attn_n * f));
    }

    // inputs: q norms in [1/16, 16]; k of norm <= 1 as the models feed it (a larger k makes the
    // delta rule amplify the state each token, so 64 tokens overflow on any backend), except
    // where the op normalises k itself; log-decay gates; beta in (0, 1)
    const bool norm_in_op = c.l2_eps > 0.0f;
    g.fill.push_back([=](std::mt19937 & rng) {
        std::normal_distribution<float> n01(0.0f, 1.0f);
        fill_each(v, [&] { return n01(rng); });  // with q and k, all of a qkv conv output
        fill_rows(q, rng, 1.0f / 16, 16.0f);
        fill_rows(k, rng, 1.0f / 16, norm_in_op ? 16.0f : 1.0f);
        std::uniform_real_distribution<float> lg(-2.0f, -0.01f), b01(0.05f, 0.95f);
        fill_each(gate, [&] { return lg(rng); });
        fill_each(beta, [&] { return b01(rng); });
        fill_each(state, [&] { return 0.1f * n01(rng); });
        if (out2) {
            fill_each(v2, [&] { return n01(rng); });
            fill_rows(q2, rng, 1.0f / 16, 16.0f);
            fill_rows(k2, rng, 1.0f / 16, norm_in_op ? 16.0f : 1.0f);
            fill_each(gate2, [&] { return lg(rng); });
            fill_each(beta2, [&] { return b01(rng); });
        }
    });
    return g;
}
