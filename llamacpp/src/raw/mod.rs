//! Raw llama.cpp handles: one owning newtype per C handle (or a borrowed, `Copy` one with a
//! lifetime), whose safe methods each wrap one C call and check the arguments llama.cpp
//! would abort on. The rest of the crate calls these instead of `llamacpp_sys`; what stays
//! `unsafe fn` here names, in its `# Safety` section, the check its caller made.

pub(crate) mod adapter;
pub(crate) mod backend;
pub(crate) mod batch_ext;
pub(crate) mod callbacks;
pub(crate) mod candidates;
pub(crate) mod chat;
pub(crate) mod context;
pub(crate) mod custom_sampler;
pub(crate) mod memory;
pub(crate) mod model;
pub(crate) mod mtp;
pub(crate) mod sampler;
pub(crate) mod shim;
pub(crate) mod threadpool;
pub(crate) mod vocab;
