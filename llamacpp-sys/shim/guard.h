// Internal to the shim (C++ only, not part of the C API in shim.h): run a call and
// turn any C++ exception into a sentinel return plus a message in `err`.
#pragma once

#include <cstddef>
#include <cstring>
#include <exception>

namespace llama_sys {

// Copies `msg` into `err` (NUL-terminated, truncated to `err_len`); no-op without a buffer.
inline void set_err(char * err, size_t err_len, const char * msg) {
    if (err == nullptr || err_len == 0) {
        return;
    }
    std::strncpy(err, msg, err_len - 1);
    err[err_len - 1] = '\0';
}

// Returns f(), or `on_error` with the exception's message in `err` if f throws.
template <typename F, typename R>
R guarded(char * err, size_t err_len, R on_error, F && f) {
    try {
        return f();
    } catch (const std::exception & e) {
        set_err(err, err_len, e.what());
    } catch (...) {
        set_err(err, err_len, "unknown C++ exception");
    }
    return on_error;
}

} // namespace llama_sys
