# Builds metal-emu for one llama.cpp tree; run by .ci/metal-check.sh, which says what it checks.
#   make -f .ci/metal/emu.mk TREE=<tree> OUT=<dir> GGML_LIBS="<libggml-cpu.a> <libggml-base.a>" DEFS_FILE=<file>
# Make rather than a script so that a rerun rebuilds only what a changed kernel or host file
# touches (`cargo patches tree` rewrites only files that changed).

HERE  := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
METAL := $(TREE)/ggml/src/ggml-metal
CCACHE := $(shell command -v ccache 2>/dev/null)
CXX   := $(CCACHE) g++
CC    := $(CCACHE) gcc

# -isystem: our -Wall is for our code, not for the tree's headers
INC := -I$(HERE) -isystem $(TREE)/ggml/include -isystem $(TREE)/ggml/src -isystem $(METAL)
# -MD, not -MMD: the latter leaves -isystem headers out of the dependencies, and a patch to
# ggml-metal-impl.h must rebuild the kernel
DEP := -MD -MP

# the tree's host files, built as ggml builds them (C++17); speed does not matter for them. All
# but ggml-metal.cpp, the backend interface, which sits on the Objective-C context
HOST     := $(filter-out ggml-metal,$(basename $(notdir $(wildcard $(METAL)/*.cpp))))
HOST_OBJ := $(HOST:%=$(OUT)/host/%.o) $(OUT)/host/supports_op.o
HOSTFLAGS := -std=c++17 -O1 $(DEP) $(INC)
# the Objective-C file's supports_op, compiled as what CMake compiles that file as: C11
SOFLAGS   := -std=gnu11 -O1 $(DEP) -I$(HERE) $(INC)

# our files and the kernel: C++20 for std::barrier; optimised, the kernel runs ~1e8 lane-steps
EMU     := msl_rt device_emu gdn_cases main
EMU_OBJ := $(EMU:%=$(OUT)/emu/%.o) $(OUT)/emu/gated_delta_net.o
EMUFLAGS := -std=c++20 -O2 -pthread -Wall -Wextra -Wno-unused-parameter $(DEP) $(INC) $(shell cat $(DEFS_FILE))

$(OUT)/metal-emu: $(HOST_OBJ) $(EMU_OBJ) $(OUT)/emu/stubs.o $(GGML_LIBS)
	g++ -pthread -fopenmp -o $@ $(HOST_OBJ) $(EMU_OBJ) $(OUT)/emu/stubs.o $(GGML_LIBS)

$(OUT)/host/%.o: $(METAL)/%.cpp | $(OUT)/host
	$(CXX) $(HOSTFLAGS) -c $< -o $@

# supports_op is the tree's own text, cut out of the Objective-C file it lives in; C, so that
# C++-only syntax there (nullptr, ...) fails here as it fails the Metal build
$(OUT)/host/supports_op.c: $(METAL)/ggml-metal-device.m $(HERE)/extract-supports-op.sh | $(OUT)/host
	$(HERE)/extract-supports-op.sh $(TREE) $@

$(OUT)/host/supports_op.o: $(OUT)/host/supports_op.c
	$(CC) $(SOFLAGS) -c $< -o $@

# the kernel file, rewritten where C++ cannot take MSL as is; msl_shim/ comes first in the
# include path, so its `#include "common.h"` finds the shim and not the tree's Metal header
$(OUT)/emu/gated_delta_net.cpp: $(METAL)/kernels/gated_delta_net.metal $(HERE)/kernel-to-cpp.sh $(HERE)/kernel_to_cpp.sed | $(OUT)/emu
	$(HERE)/kernel-to-cpp.sh $< $@

$(OUT)/emu/gated_delta_net.o: $(OUT)/emu/gated_delta_net.cpp $(DEFS_FILE)
	$(CXX) $(EMUFLAGS) -Wno-attributes -Wno-unused-variable -I$(HERE)/msl_shim -c $< -o $@

$(OUT)/emu/%.o: $(HERE)/%.cpp $(DEFS_FILE) | $(OUT)/emu
	$(CXX) $(EMUFLAGS) -c $< -o $@

# aborting stubs for the rest of the device API the host objects reference
$(OUT)/emu/stubs.c: $(HOST_OBJ) $(EMU_OBJ) $(GGML_LIBS) $(HERE)/gen-stubs.sh
	$(HERE)/gen-stubs.sh $@ $(HOST_OBJ) $(EMU_OBJ) $(GGML_LIBS)

$(OUT)/emu/stubs.o: $(OUT)/emu/stubs.c
	gcc -c $< -o $@

$(OUT)/host $(OUT)/emu:
	mkdir -p $@

-include $(HOST_OBJ:.o=.d) $(EMU_OBJ:.o=.d)
