// The problems the emulated device met while a case was encoded (a kernel without emulation, an
// argument the kernel reads but the host never bound). The driver clears it per run and fails a
// case on any of them; the real device would abort or compute garbage instead.
#pragma once

#include <string>
#include <vector>

namespace emu {
struct trace_t {
    std::vector<std::string> errors;
};
trace_t & trace();
}  // namespace emu
