//! RPC servers in the benchmark: `-rpc`'s endpoints registered as devices (in whichever process
//! loads the model), the hidden `rpc-server` subcommand, and the loopback servers
//! `compare --rpc-local` starts for each build.
//!
//! As upstream's llama-bench, every server is registered once, before any model loads; each adds
//! devices named `RPC0`, `RPC1`, ... in order, which `-dev` then picks. The records name the
//! servers where upstream's do: each RPC device is a GPU-type device whose description is its
//! server's endpoint, so the endpoints are in `gpu_info`, and `backends` gets `RPC`.

mod local;
mod plan;
pub mod server;

use crate::{Result, err};

pub use llamacpp_bench_core::protocol::RpcDevice;
pub use local::LocalServers;
pub use plan::{CompareRpc, RpcPlan};

/// Checks `host:port` as the safe crate reads it (an IPv4 address or a DNS name, a port), so
/// that a typo is an error naming the endpoint rather than a failed connection.
pub fn check_endpoint(e: &str) -> Result<()> {
    e.parse::<llamacpp::rpc::Endpoint>()
        .map(|_| ())
        .map_err(err)
}

/// Whether `name` is a device an RPC server added (`RPC0`, `RPC1`, ...).
pub fn is_rpc_device(name: &str) -> bool {
    name.strip_prefix("RPC")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Registers each distinct endpoint of `servers` once, in order, and returns the devices they
/// added. A server that cannot be reached, speaks another wire version or has no devices is an
/// error naming it; nothing aborts the process (the safe crate probes each server first).
pub fn register(servers: &[String]) -> Result<Vec<RpcDevice>> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for e in servers {
        // ggml caches a server by the canonical form of its endpoint: `-rpc a,a` adds it once.
        let canonical = e
            .parse::<llamacpp::rpc::Endpoint>()
            .map_err(|x| format!("-rpc: {x}"))?
            .to_string();
        if seen.contains(&canonical) {
            continue;
        }
        let devices =
            llamacpp::rpc::add_rpc_server(&canonical).map_err(|x| format!("-rpc: {x}"))?;
        seen.push(canonical);
        out.extend(devices.into_iter().map(|d| RpcDevice {
            name: d.name,
            description: d.description,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_need_a_host_and_a_port() {
        for ok in ["127.0.0.1:50052", "localhost:1", "10.0.0.2:65535"] {
            check_endpoint(ok).unwrap();
        }
        for bad in [
            "127.0.0.1",
            ":50052",
            "127.0.0.1:",
            "127.0.0.1:0",
            "127.0.0.1:70000",
            "host:port",
            "[::1]:50052",
        ] {
            let e = check_endpoint(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn rpc_devices_are_recognised_by_name() {
        assert!(is_rpc_device("RPC0") && is_rpc_device("RPC12"));
        assert!(!is_rpc_device("RPC") && !is_rpc_device("CPU") && !is_rpc_device("RPCx"));
    }
}
