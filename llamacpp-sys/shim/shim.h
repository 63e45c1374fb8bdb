// C entry points that catch C++ exceptions thrown by llama.cpp functions that
// are documented as C but can throw (grammar parsing, regex triggers, grammar
// accept). Each returns NULL/-1 on an exception and copies its message into
// `err` (NUL-terminated, truncated to `err_len`).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "llama.h"
#include "gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

struct llama_sampler * llama_sys_sampler_init_grammar(
        const struct llama_vocab * vocab, const char * grammar_str, const char * grammar_root,
        char * err, size_t err_len);

struct llama_sampler * llama_sys_sampler_init_grammar_lazy_patterns(
        const struct llama_vocab * vocab, const char * grammar_str, const char * grammar_root,
        const char ** trigger_patterns, size_t num_trigger_patterns,
        const llama_token * trigger_tokens, size_t num_trigger_tokens,
        char * err, size_t err_len);

// Returns 0 and the token in *out, or -1 on an exception.
int32_t llama_sys_sampler_sample(struct llama_sampler * smpl, struct llama_context * ctx, int32_t idx,
        llama_token * out, char * err, size_t err_len);

// Returns 0, or -1 on an exception.
int32_t llama_sys_sampler_accept(struct llama_sampler * smpl, llama_token token, char * err, size_t err_len);

// llama_sampler_clone (a grammar's copy can throw); NULL on an exception.
struct llama_sampler * llama_sys_sampler_clone(const struct llama_sampler * smpl, char * err, size_t err_len);

// Converts a JSON schema (UTF-8 JSON text, `schema_len` bytes) to a GBNF grammar with
// llama.cpp's converter. Returns 0 with the grammar in *out, or -1 with an error message
// in *out (*out is NULL only when out of memory). Free *out with llama_sys_string_free.
int32_t llama_sys_json_schema_to_grammar(const char * schema, size_t schema_len, char ** out);

void llama_sys_string_free(char * s);

// boundary.cpp: llama.cpp functions that can throw (see EXCEPTIONS.md). Each returns
// 0 with the original's result in *out, or -1 on a C++ exception, whose message goes
// to `err` as above; the constructors return NULL on an exception.

int32_t llama_sys_tokenize(const struct llama_vocab * vocab, const char * text, int32_t text_len,
        llama_token * tokens, int32_t n_tokens_max, bool add_special, bool parse_special,
        int32_t * out, char * err, size_t err_len);

int32_t llama_sys_token_to_piece(const struct llama_vocab * vocab, llama_token token, char * buf,
        int32_t length, int32_t lstrip, bool special, int32_t * out, char * err, size_t err_len);

int32_t llama_sys_detokenize(const struct llama_vocab * vocab, const llama_token * tokens,
        int32_t n_tokens, char * text, int32_t text_len_max, bool remove_special, bool unparse_special,
        int32_t * out, char * err, size_t err_len);

int32_t llama_sys_decode(struct llama_context * ctx, struct llama_batch batch,
        int32_t * out, char * err, size_t err_len);

int32_t llama_sys_encode(struct llama_context * ctx, struct llama_batch batch,
        int32_t * out, char * err, size_t err_len);

int32_t llama_sys_process(struct llama_context * ctx, enum llama_process_type type,
        struct llama_batch_ext * batch, int32_t * out, char * err, size_t err_len);

int32_t llama_sys_chat_apply_template(const char * tmpl, const struct llama_chat_message * chat,
        size_t n_msg, bool add_ass, char * buf, int32_t length, int32_t * out, char * err, size_t err_len);

// Returns 0, or -1 on an exception.
int32_t llama_sys_sampler_reset(struct llama_sampler * smpl, char * err, size_t err_len);

struct llama_sampler * llama_sys_sampler_init_penalties(int32_t n_vocab, int32_t penalty_last_n,
        float penalty_repeat, float penalty_freq, float penalty_present, char * err, size_t err_len);

struct llama_sampler * llama_sys_sampler_init_dry(const struct llama_vocab * vocab,
        float dry_multiplier, float dry_base, int32_t dry_allowed_length, int32_t dry_penalty_last_n,
        const char ** seq_breakers, size_t num_breakers, char * err, size_t err_len);

// NULL on failure; `err` stays empty unless it was an exception (gguf logs the rest).
struct gguf_context * llama_sys_gguf_init_from_file(const char * fname, struct gguf_init_params params,
        char * err, size_t err_len);

#ifdef __cplusplus
}
#endif
