// The emulated Metal device, shared by device_emu.cpp and the supports_op text that
// metal-check.sh extracts from the tree's ggml-metal-device.m (which reads dev->props). Plain C,
// because that text is also compiled as C, the language of the .m it comes from.
#pragma once

#include "ggml-metal-device.h"

struct ggml_metal_device {
    struct ggml_metal_device_props props;
    ggml_metal_library_t           library;
};

#ifdef __cplusplus
extern "C" {
#endif

// a device with the properties of an Apple GPU that has SIMD-group reductions and matrices
ggml_metal_device_t ggml_metal_emu_device_init(void);
void                ggml_metal_emu_device_free(ggml_metal_device_t dev);

#ifdef __cplusplus
}
#endif
