// Our implementation of the part of ggml-metal-device.h that the tree's host code
// (ggml-metal-ops.cpp, ggml-metal-device.cpp) calls while encoding a graph. The real one is
// Objective-C over Metal (ggml-metal-device.m); this one keeps the same contract on the CPU:
//   - a "compiled" pipeline is a kernel of the emulated registry (msl_rt.h) found by the same base
//     name, with the function-constant values of its cv;
//   - the encoder records set_bytes / set_buffer / threadgroup memory per argument-table slot and
//     runs each dispatch on the CPU with what was bound when it was issued: at once, or, for a
//     concurrent encoder, at the next memory barrier (see flush);
//   - a buffer id is the tensor's own host address: all tensors of the check live in CPU buffers.
// Anything else of the API is left to the aborting stubs of gen-stubs.sh.
#include "device_emu.h"

#include "device_trace.h"
#include "msl_rt.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

struct ggml_metal_cv {
    std::vector<int>     idx;
    std::vector<int64_t> val;
};

struct ggml_metal_pipeline {
    std::string              name;
    const msl::kernel_info * kernel;  // nullptr: no emulation of this kernel (reported at dispatch)
    ggml_metal_cv            fc;
};

struct ggml_metal_library {
    ggml_metal_device_t                          dev;
    std::map<std::string, ggml_metal_pipeline *> pipelines;  // by full name, as the real cache
};

namespace {

constexpr int n_slots_max = 31;  // Metal's buffer argument table
constexpr int n_tgmem_max = 8;

struct slot {
    bool                       set = false;
    void *                     ptr = nullptr;
    std::vector<unsigned char> bytes;  // set_bytes copies, as Metal does, at the time of the call
    bool                       is_bytes = false;
};

// one dispatch with everything it bound, so that it can run later than it was issued
struct pending_dispatch {
    ggml_metal_pipeline * pipeline;
    metal::uint3          ntgpg, ntg;
    slot                  slots[n_slots_max];
    size_t                tgmem[n_tgmem_max];
};

}  // namespace

struct ggml_metal_encoder {
    bool                          concurrent;
    ggml_metal_pipeline *         pipeline = nullptr;
    slot                          slots[n_slots_max];
    size_t                        tgmem[n_tgmem_max] = {};
    std::vector<pending_dispatch> pending;
};

namespace emu {
trace_t & trace() {
    static trace_t t;
    return t;
}
}  // namespace emu

static void run_dispatch(pending_dispatch & d) {
    ggml_metal_pipeline * p = d.pipeline;
    if (!p->kernel) {
        emu::trace().errors.push_back("no emulation of kernel " + p->name + " (only the GDN kernel file is compiled)");
        return;
    }
    void * ptrs[n_slots_max];
    for (int i = 0; i < n_slots_max; i++) {
        if (i < p->kernel->n_slots && !d.slots[i].set) {
            emu::trace().errors.push_back(p->name + ": argument slot " + std::to_string(i) + " read by the kernel but never set");
            return;
        }
        ptrs[i] = d.slots[i].is_bytes ? (void *) d.slots[i].bytes.data() : d.slots[i].ptr;
    }
    int n_tgmem = 0;
    for (int i = 0; i < n_tgmem_max; i++) {
        if (d.tgmem[i]) n_tgmem = i + 1;
    }
    msl::set_function_constants(p->fc.idx.data(), p->fc.val.data(), (int) p->fc.idx.size());
    msl::dispatch(*p->kernel, d.ntgpg, d.ntg, ptrs, d.tgmem, n_tgmem);
}

// Dispatches of a concurrent encoder may overlap on the GPU until the next memory barrier. Running
// such a group in reverse issue order makes a missing barrier between dependent dispatches show
// up as a wrong result instead of passing by luck of the in-order CPU.
static void flush(ggml_metal_encoder_t enc) {
    for (auto it = enc->pending.rbegin(); it != enc->pending.rend(); ++it) run_dispatch(*it);
    enc->pending.clear();
}

extern "C" {

ggml_metal_cv_t ggml_metal_cv_init(void) { return new ggml_metal_cv(); }
void            ggml_metal_cv_free(ggml_metal_cv_t cv) { delete cv; }

static void cv_set(ggml_metal_cv_t cv, int64_t value, int32_t idx) {
    cv->idx.push_back(idx);
    cv->val.push_back(value);
}
void ggml_metal_cv_set_int16(ggml_metal_cv_t cv, int16_t value, int32_t idx) { cv_set(cv, value, idx); }
void ggml_metal_cv_set_int32(ggml_metal_cv_t cv, int32_t value, int32_t idx) { cv_set(cv, value, idx); }
void ggml_metal_cv_set_bool(ggml_metal_cv_t cv, bool value, int32_t idx) { cv_set(cv, value, idx); }

static ggml_metal_pipeline_with_params no_params(ggml_metal_pipeline_t p) {
    ggml_metal_pipeline_with_params r = {};
    r.pipeline                        = p;
    return r;
}

ggml_metal_pipeline_with_params ggml_metal_library_get_pipeline(ggml_metal_library_t lib, const char * name) {
    auto it = lib->pipelines.find(name);
    return no_params(it == lib->pipelines.end() ? nullptr : it->second);
}

ggml_metal_pipeline_with_params ggml_metal_library_compile_pipeline(ggml_metal_library_t lib, const char * base,
                                                                    const char * name, ggml_metal_cv_t cv) {
    auto it = lib->pipelines.find(name);
    if (it != lib->pipelines.end()) return no_params(it->second);
    ggml_metal_pipeline * p = new ggml_metal_pipeline();
    p->name                 = name;
    p->kernel               = msl::find_kernel(base);
    if (cv) p->fc = *cv;
    lib->pipelines[name] = p;
    return no_params(p);
}

int ggml_metal_pipeline_max_theads_per_threadgroup(ggml_metal_pipeline_with_params) {
    return 1024;  // the limit of Apple GPUs for a kernel of modest register use
}

ggml_metal_encoder_t ggml_metal_encoder_init(ggml_metal_cmd_buf_t, bool concurrent) {
    ggml_metal_encoder_t enc = new ggml_metal_encoder();
    enc->concurrent          = concurrent;
    return enc;
}

void ggml_metal_encoder_free(ggml_metal_encoder_t enc) {
    flush(enc);
    delete enc;
}

void ggml_metal_encoder_debug_group_push(ggml_metal_encoder_t, const char *) {}
void ggml_metal_encoder_debug_group_pop(ggml_metal_encoder_t) {}

void ggml_metal_encoder_set_pipeline(ggml_metal_encoder_t enc, ggml_metal_pipeline_with_params pipeline) {
    if (!pipeline.pipeline) {
        // the real encoder aborts here too
        fprintf(stderr, "metal-emu: set_pipeline with a nil pipeline\n");
        abort();
    }
    enc->pipeline = pipeline.pipeline;
}

void ggml_metal_encoder_set_bytes(ggml_metal_encoder_t enc, void * data, size_t size, int idx) {
    GGML_ASSERT(idx >= 0 && idx < n_slots_max);
    slot & s   = enc->slots[idx];
    s.set      = true;
    s.is_bytes = true;
    s.ptr      = nullptr;
    s.bytes.assign((unsigned char *) data, (unsigned char *) data + size);
}

void ggml_metal_encoder_set_buffer(ggml_metal_encoder_t enc, ggml_metal_buffer_id buffer, int idx) {
    GGML_ASSERT(idx >= 0 && idx < n_slots_max);
    slot & s   = enc->slots[idx];
    s.set      = true;
    s.is_bytes = false;
    s.ptr      = buffer.metal ? (char *) buffer.metal + buffer.offs : nullptr;
    s.bytes.clear();
}

void ggml_metal_encoder_set_threadgroup_memory_size(ggml_metal_encoder_t enc, size_t size, int idx) {
    GGML_ASSERT(size % 16 == 0);  // a Metal requirement the host code must meet
    GGML_ASSERT(idx >= 0 && idx < n_tgmem_max);
    enc->tgmem[idx] = size;
}

void ggml_metal_encoder_dispatch_threadgroups(ggml_metal_encoder_t enc, int tg0, int tg1, int tg2, int tptg0,
                                              int tptg1, int tptg2) {
    GGML_ASSERT(enc->pipeline);
    pending_dispatch d;
    d.pipeline = enc->pipeline;
    d.ntgpg    = {(uint) tg0, (uint) tg1, (uint) tg2};
    d.ntg      = {(uint) tptg0, (uint) tptg1, (uint) tptg2};
    for (int i = 0; i < n_slots_max; i++) d.slots[i] = enc->slots[i];
    memcpy(d.tgmem, enc->tgmem, sizeof(d.tgmem));
    enc->pending.push_back(std::move(d));
    if (!enc->concurrent) flush(enc);
}

void ggml_metal_encoder_memory_barrier(ggml_metal_encoder_t enc) { flush(enc); }
void ggml_metal_encoder_end_encoding(ggml_metal_encoder_t enc) { flush(enc); }

ggml_metal_library_t ggml_metal_device_get_library(ggml_metal_device_t dev) { return dev->library; }

const ggml_metal_device_props * ggml_metal_device_get_props(ggml_metal_device_t dev) { return &dev->props; }

ggml_metal_buffer_id ggml_metal_buffer_get_id(ggml_metal_buffer_t, const ggml_tensor * t) {
    // the tensors live in host memory; the kernel's pointer is metal + offs
    return {(void *) t->data, 0};
}

ggml_metal_device_t ggml_metal_emu_device_init(void) {
    ggml_metal_device_t dev = new ggml_metal_device();
    memset(&dev->props, 0, sizeof(dev->props));
    snprintf(dev->props.name, sizeof(dev->props.name), "%s", "metal-emu");
    snprintf(dev->props.desc, sizeof(dev->props.desc), "%s", "Metal emulated on the CPU");
    dev->props.max_buffer_size            = (size_t) 1 << 32;
    dev->props.max_working_set_size       = (size_t) 1 << 34;
    dev->props.max_theadgroup_memory_size = 32 * 1024;
    dev->props.has_simdgroup_reduction    = true;
    dev->props.has_simdgroup_mm           = true;
    dev->props.has_unified_memory         = true;
    dev->props.has_bfloat                 = false;
    dev->props.has_tensor                 = false;
    dev->props.use_shared_buffers         = true;
    dev->props.device_id                  = GGML_METAL_DEVICE_GENERIC;
    dev->library                          = new ggml_metal_library();
    dev->library->dev                     = dev;
    return dev;
}

void ggml_metal_emu_device_free(ggml_metal_device_t dev) {
    for (auto & it : dev->library->pipelines) delete it.second;
    delete dev->library;
    delete dev;
}

}  // extern "C"
