// C entry points that catch C++ exceptions thrown by llama.cpp functions that
// are documented as C but can throw (grammar parsing, regex triggers, grammar
// accept). Each returns NULL/-1 on an exception and copies its message into
// `err` (NUL-terminated, truncated to `err_len`).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "llama.h"

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

#ifdef __cplusplus
}
#endif
