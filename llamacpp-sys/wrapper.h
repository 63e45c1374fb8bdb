// Headers bindgen reads; see build/bindings.rs for the allow-list.
#include "llama.h"
#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "gguf.h"
#ifdef LLAMACPP_SYS_RPC
#include "ggml-rpc.h"
#endif
#include "shim/shim.h"
