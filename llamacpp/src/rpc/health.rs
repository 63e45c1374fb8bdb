//! Which RPC servers a model uses, and whether their connections still work: the patched
//! client never aborts on a failed connection, but GRAPH_COMPUTE has no reply, so a
//! server lost during a decode's last micro-batch shows only when the outputs are read.

use llamacpp_sys as sys;

use super::raw;
use crate::backend::cstr_lossy;
use crate::error::{Error, Result, c_string};

/// The endpoints of the RPC devices in `devices` (a NULL-terminated list, as
/// `llama_model_params.devices`), or of every registered RPC device when `devices` is NULL
/// (llama.cpp then uses them all). No network traffic.
///
/// # Safety
/// `devices` must be NULL or point to a NULL-terminated array of registered devices.
pub(crate) unsafe fn model_endpoints(devices: *const sys::ggml_backend_dev_t) -> Vec<String> {
    let mut list = Vec::new();
    // SAFETY: per this function's contract; registered devices live for the process.
    unsafe {
        if devices.is_null() {
            for i in 0..sys::ggml_backend_dev_count() {
                list.push(sys::ggml_backend_dev_get(i));
            }
        } else {
            let mut p = devices;
            while !(*p).is_null() {
                list.push(*p);
                p = p.add(1);
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    for dev in list {
        // SAFETY: a registered device.
        if let Some(endpoint) = unsafe { rpc_endpoint(dev) }
            && !out.contains(&endpoint)
        {
            out.push(endpoint);
        }
    }
    out
}

/// The endpoint of an RPC device (its description), `None` for other devices.
///
/// # Safety
/// `dev` must be a registered device.
unsafe fn rpc_endpoint(dev: sys::ggml_backend_dev_t) -> Option<String> {
    // SAFETY: a registered device; the getters return strings owned by ggml (or NULL).
    unsafe {
        let reg = sys::ggml_backend_dev_backend_reg(dev);
        if reg.is_null() {
            return None;
        }
        let reg_name = cstr_lossy(sys::ggml_backend_reg_name(reg));
        let name = cstr_lossy(sys::ggml_backend_dev_name(dev));
        let is_rpc = (reg_name == "RPC" || reg_name.starts_with("RPC[")) && name.starts_with("RPC");
        is_rpc.then(|| cstr_lossy(sys::ggml_backend_dev_description(dev)))
    }
}

/// `Err` naming the first endpoint whose connection has failed (patched build; the
/// upstream build cannot tell, and aborts on failures instead).
pub(crate) fn check_endpoints(endpoints: &[String]) -> Result<()> {
    let Some(failed) = raw::procs().endpoint_failed else {
        return Ok(());
    };
    for endpoint in endpoints {
        let c = c_string(endpoint)?;
        // SAFETY: the contract's signature; the endpoint is NUL-terminated.
        if unsafe { failed(c.as_ptr()) } {
            return Err(Error::Rpc {
                endpoint: endpoint.clone(),
                reason: "the connection failed (server gone, hung past the I/O timeout, or a \
                         malformed reply); drop the contexts and the model that use it, then \
                         load again"
                    .into(),
            });
        }
    }
    Ok(())
}

/// After `llama_decode`/`llama_encode` returned `rc` on a context whose model uses
/// `endpoints` (non-empty): waits for the outputs, then checks the connections. `Err`
/// means the context must not be used again.
///
/// # Safety
/// `ctx` must be a valid context.
pub(crate) unsafe fn check_after_run(
    ctx: *mut sys::llama_context,
    endpoints: &[String],
    rc: i32,
) -> Result<()> {
    if rc == 0 {
        // SAFETY: valid context per this function's contract. The outputs are read here,
        // which is when a lost last GRAPH_COMPUTE shows.
        unsafe { sys::llama_synchronize(ctx) };
    }
    check_endpoints(endpoints)?;
    if rc < -1 {
        // A failed compute on a model with remote layers: its state is unknown.
        return Err(Error::Rpc {
            endpoint: endpoints.join(","),
            reason: format!(
                "compute failed with code {rc}; the context's state is unknown, create a new \
                 one"
            ),
        });
    }
    Ok(())
}
