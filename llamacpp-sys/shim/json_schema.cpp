// JSON schema -> GBNF through llama.cpp's own converter (common/json-schema-to-grammar.cpp,
// compiled beside this file by build/shim.rs). Every exception stays on this side.
#include "shim.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#ifdef LLAMACPP_SYS_JSON_SCHEMA
#include "json-schema-to-grammar.h"
#endif

namespace {

// A malloc'd copy (freed by llama_sys_string_free), or NULL when out of memory.
char * dup_string(const std::string & s) {
    char * out = static_cast<char *>(std::malloc(s.size() + 1));
    if (out != nullptr) {
        std::memcpy(out, s.data(), s.size());
        out[s.size()] = '\0';
    }
    return out;
}

} // namespace

extern "C" int32_t llama_sys_json_schema_to_grammar(const char * schema, size_t schema_len, char ** out) {
    *out = nullptr;
#ifdef LLAMACPP_SYS_JSON_SCHEMA
    try {
        const common_json parsed = common_json::parse(std::string(schema, schema_len));
        *out = dup_string(json_schema_to_grammar(parsed, /* force_gbnf = */ true));
        return *out != nullptr ? 0 : -1;
    } catch (const std::exception & e) {
        try {
            *out = dup_string(e.what());
        } catch (...) {
        }
    } catch (...) {
        *out = dup_string("unknown C++ exception");
    }
    return -1;
#else
    (void) schema;
    (void) schema_len;
    *out = dup_string("llamacpp-sys was built without llama.cpp's common/ sources (LLAMACPP_SYS_PREFIX build)");
    return -1;
#endif
}

extern "C" void llama_sys_string_free(char * s) {
    std::free(s);
}
