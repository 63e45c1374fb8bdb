// Stands in for ggml-metal's kernels/common.h when .ci/metal-check.sh compiles a kernel file with
// g++: the kernel file is copied next to this header (quoted includes look there first), so its
// `#include "common.h"` lands here instead of on <metal_stdlib>.
#pragma once

// everything with a C++ library header comes before the MSL address-space macros below, which
// would otherwise rewrite words such as `thread` inside the standard headers
#include "msl_rt.h"

// the tree's own argument structs and function-constant indices: a plain C header, used as is
#include "ggml-metal-impl.h"

// address spaces and the kernel qualifier carry no meaning for a CPU: all memory is host memory
#define kernel
#define device
#define constant
#define thread
#define threadgroup

// MSL spells the unroll hint as a clang pragma; g++ needs only the loop
#define FOR_UNROLL(x) for (x)

#define N_SIMDWIDTH 32

#define MAX(x, y) ((x) > (y) ? (x) : (y))
#define MIN(x, y) ((x) < (y) ? (x) : (y))

using namespace metal;
