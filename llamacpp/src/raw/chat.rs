//! llama.cpp's built-in chat templates: applying one, and listing their names.

use std::ffi::{CStr, CString};

use llamacpp_sys as sys;

use super::backend::cstr_lossy;
use super::shim::ErrBuf;

/// `llama_chat_apply_template` through the exception shim: formats `messages` (role,
/// content) with `template` into `buf`. The total length (more than `buf.len()`: the
/// output was cut, call again with that room; negative: the template is not supported),
/// or the shim's message when llama.cpp threw.
pub(crate) fn apply_template(
    template: &CStr,
    messages: &[(CString, CString)],
    add_assistant: bool,
    buf: &mut [u8],
) -> Result<i32, String> {
    let chat: Vec<sys::llama_chat_message> = messages
        .iter()
        .map(|(role, content)| sys::llama_chat_message {
            role: role.as_ptr(),
            content: content.as_ptr(),
        })
        .collect();
    // Claiming less room than there is stays in bounds.
    let cap = i32::try_from(buf.len()).unwrap_or(i32::MAX);
    let (mut n, mut e) = (0, ErrBuf::new());
    // SAFETY: every string is NUL-terminated and alive (borrowed from `template` and
    // `messages`), `chat` holds `chat.len()` messages and `buf` `cap` bytes; the shim
    // catches exceptions (allocations sized by the conversation).
    let rc = unsafe {
        sys::llama_sys_chat_apply_template(
            template.as_ptr(),
            chat.as_ptr(),
            chat.len(),
            add_assistant,
            buf.as_mut_ptr().cast(),
            cap,
            &mut n,
            e.ptr(),
            e.len(),
        )
    };
    if rc == 0 { Ok(n) } else { Err(e.text()) }
}

/// The names of the built-in templates.
pub(crate) fn builtin_templates() -> Vec<String> {
    // SAFETY: with len 0 the function only returns the count.
    let n = unsafe { sys::llama_chat_builtin_templates(std::ptr::null_mut(), 0) }.max(0) as usize;
    let mut ptrs = vec![std::ptr::null(); n];
    // SAFETY: `ptrs` has room for `n` pointers, which llama.cpp fills with static strings.
    unsafe { sys::llama_chat_builtin_templates(ptrs.as_mut_ptr(), n) };
    ptrs.into_iter()
        // SAFETY: each pointer is NULL or a static NUL-terminated string.
        .map(|p| unsafe { cstr_lossy(p) })
        .collect()
}
