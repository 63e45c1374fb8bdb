// Exception-catching twins of the llama.cpp C functions the safe crate calls that
// can throw (the audit is in EXCEPTIONS.md). Each runs the original unchanged and
// reports a C++ exception as status -1 (or NULL) with its message in `err`.
#include "shim.h"

#include "guard.h"

using llama_sys::guarded;

extern "C" int32_t llama_sys_tokenize(const struct llama_vocab * vocab, const char * text, int32_t text_len,
        llama_token * tokens, int32_t n_tokens_max, bool add_special, bool parse_special,
        int32_t * out, char * err, size_t err_len) {
    return guarded(err, err_len, (int32_t) -1, [&] {
        *out = llama_tokenize(vocab, text, text_len, tokens, n_tokens_max, add_special, parse_special);
        return (int32_t) 0;
    });
}

extern "C" int32_t llama_sys_token_to_piece(const struct llama_vocab * vocab, llama_token token, char * buf,
        int32_t length, int32_t lstrip, bool special, int32_t * out, char * err, size_t err_len) {
    return guarded(err, err_len, (int32_t) -1, [&] {
        *out = llama_token_to_piece(vocab, token, buf, length, lstrip, special);
        return (int32_t) 0;
    });
}

extern "C" int32_t llama_sys_detokenize(const struct llama_vocab * vocab, const llama_token * tokens,
        int32_t n_tokens, char * text, int32_t text_len_max, bool remove_special, bool unparse_special,
        int32_t * out, char * err, size_t err_len) {
    return guarded(err, err_len, (int32_t) -1, [&] {
        *out = llama_detokenize(vocab, tokens, n_tokens, text, text_len_max, remove_special, unparse_special);
        return (int32_t) 0;
    });
}

extern "C" int32_t llama_sys_decode(struct llama_context * ctx, struct llama_batch batch,
        int32_t * out, char * err, size_t err_len) {
    return guarded(err, err_len, (int32_t) -1, [&] {
        *out = llama_decode(ctx, batch);
        return (int32_t) 0;
    });
}

extern "C" int32_t llama_sys_encode(struct llama_context * ctx, struct llama_batch batch,
        int32_t * out, char * err, size_t err_len) {
    return guarded(err, err_len, (int32_t) -1, [&] {
        *out = llama_encode(ctx, batch);
        return (int32_t) 0;
    });
}

extern "C" int32_t llama_sys_process(struct llama_context * ctx, enum llama_process_type type,
        struct llama_batch_ext * batch, int32_t * out, char * err, size_t err_len) {
    return guarded(err, err_len, (int32_t) -1, [&] {
        *out = llama_process(ctx, type, batch);
        return (int32_t) 0;
    });
}

extern "C" int32_t llama_sys_chat_apply_template(const char * tmpl, const struct llama_chat_message * chat,
        size_t n_msg, bool add_ass, char * buf, int32_t length, int32_t * out, char * err, size_t err_len) {
    return guarded(err, err_len, (int32_t) -1, [&] {
        *out = llama_chat_apply_template(tmpl, chat, n_msg, add_ass, buf, length);
        return (int32_t) 0;
    });
}

extern "C" int32_t llama_sys_sampler_reset(struct llama_sampler * smpl, char * err, size_t err_len) {
    return guarded(err, err_len, (int32_t) -1, [&] {
        llama_sampler_reset(smpl);
        return (int32_t) 0;
    });
}

extern "C" struct llama_sampler * llama_sys_sampler_init_penalties(int32_t n_vocab, int32_t penalty_last_n,
        float penalty_repeat, float penalty_freq, float penalty_present, char * err, size_t err_len) {
    return guarded(err, err_len, (struct llama_sampler *) nullptr, [&] {
        return llama_sampler_init_penalties(n_vocab, penalty_last_n, penalty_repeat, penalty_freq, penalty_present);
    });
}

extern "C" struct llama_sampler * llama_sys_sampler_init_dry(const struct llama_vocab * vocab,
        float dry_multiplier, float dry_base, int32_t dry_allowed_length, int32_t dry_penalty_last_n,
        const char ** seq_breakers, size_t num_breakers, char * err, size_t err_len) {
    return guarded(err, err_len, (struct llama_sampler *) nullptr, [&] {
        return llama_sampler_init_dry(vocab, dry_multiplier, dry_base, dry_allowed_length, dry_penalty_last_n,
                seq_breakers, num_breakers);
    });
}

extern "C" struct gguf_context * llama_sys_gguf_init_from_file(const char * fname, struct gguf_init_params params,
        char * err, size_t err_len) {
    return guarded(err, err_len, (struct gguf_context *) nullptr,
            [&] { return gguf_init_from_file(fname, params); });
}
