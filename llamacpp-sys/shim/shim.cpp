// See shim.h: exceptions must not cross into Rust (unwinding a foreign
// exception through a Rust frame aborts the process or is undefined behaviour).
#include "shim.h"

#include "guard.h"

#include <regex>

using llama_sys::guarded;

extern "C" struct llama_sampler * llama_sys_sampler_init_grammar(
        const struct llama_vocab * vocab, const char * grammar_str, const char * grammar_root,
        char * err, size_t err_len) {
    return guarded(err, err_len, (struct llama_sampler *) nullptr,
            [&] { return llama_sampler_init_grammar(vocab, grammar_str, grammar_root); });
}

extern "C" struct llama_sampler * llama_sys_sampler_init_grammar_lazy_patterns(
        const struct llama_vocab * vocab, const char * grammar_str, const char * grammar_root,
        const char ** trigger_patterns, size_t num_trigger_patterns,
        const llama_token * trigger_tokens, size_t num_trigger_tokens,
        char * err, size_t err_len) {
    return guarded(err, err_len, (struct llama_sampler *) nullptr, [&] {
        // llama.cpp compiles each pattern with std::regex after it allocated the sampler, and
        // leaks that sampler when one throws: compile them here first, the same way, so an
        // invalid pattern throws before anything is allocated.
        for (size_t i = 0; i < num_trigger_patterns; ++i) {
            (void) std::regex(trigger_patterns[i]);
        }
        return llama_sampler_init_grammar_lazy_patterns(vocab, grammar_str, grammar_root,
                trigger_patterns, num_trigger_patterns, trigger_tokens, num_trigger_tokens);
    });
}

extern "C" int32_t llama_sys_sampler_sample(struct llama_sampler * smpl, struct llama_context * ctx, int32_t idx,
        llama_token * out, char * err, size_t err_len) {
    return guarded(err, err_len, (int32_t) -1, [&] {
        *out = llama_sampler_sample(smpl, ctx, idx);
        return (int32_t) 0;
    });
}

extern "C" int32_t llama_sys_sampler_accept(struct llama_sampler * smpl, llama_token token, char * err, size_t err_len) {
    return guarded(err, err_len, (int32_t) -1, [&] {
        llama_sampler_accept(smpl, token);
        return (int32_t) 0;
    });
}

extern "C" struct llama_sampler * llama_sys_sampler_clone(const struct llama_sampler * smpl, char * err, size_t err_len) {
    return guarded(err, err_len, (struct llama_sampler *) nullptr, [&] { return llama_sampler_clone(smpl); });
}
