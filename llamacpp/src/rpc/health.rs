//! Which RPC servers a model uses, and whether their connections still work: the patched
//! client never aborts on a failed connection, but GRAPH_COMPUTE has no reply, so a
//! server lost during a decode's last micro-batch shows only when the outputs are read.

use super::raw;
use crate::error::{Error, Result, c_string};
use crate::raw::backend::RawDevice;

/// The endpoints of the RPC devices among `devices` (those a load may use: its device
/// list, or every registered device when it has none), each once. No network traffic.
pub(crate) fn model_endpoints(devices: Vec<RawDevice>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for dev in devices {
        if let Some(endpoint) = rpc_endpoint(dev)
            && !out.contains(&endpoint)
        {
            out.push(endpoint);
        }
    }
    out
}

/// The endpoint of an RPC device (its description), `None` for other devices.
fn rpc_endpoint(dev: RawDevice) -> Option<String> {
    let reg_name = dev.reg_name()?;
    let name = dev.name();
    let is_rpc = (reg_name == "RPC" || reg_name.starts_with("RPC[")) && name.starts_with("RPC");
    is_rpc.then(|| dev.description())
}

/// `Err` naming the first endpoint whose connection has failed (patched build; the
/// upstream build cannot tell, and aborts on failures instead).
pub(crate) fn check_endpoints(endpoints: &[String]) -> Result<()> {
    if !raw::detects_failures() {
        return Ok(());
    }
    for endpoint in endpoints {
        let c = c_string(endpoint)?;
        if raw::endpoint_failed(&c) {
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
/// `endpoints` (non-empty), and the caller waited for the outputs when `rc` is 0
/// (`RawContext::check_remote` does both): checks the connections. `Err` means the
/// context must not be used again.
pub(crate) fn check_after_run(endpoints: &[String], rc: i32) -> Result<()> {
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
