//! [`probe`]: a pure-Rust HELLO + DEVICE_COUNT exchange with a server, under a deadline,
//! before any C code connects (the upstream C client aborts the process when a server is
//! unreachable or speaks another version, and has no timeouts).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::Endpoint;
use crate::error::{Error, Result};

/// `RPC_CMD_HELLO`, then the u64 size of its 24-byte request (connection capabilities).
const HELLO: u8 = 14;
const HELLO_REQ_SIZE: u64 = 24;
/// major, minor, patch, padding, 24 capability bytes.
const HELLO_RSP_SIZE: u64 = 28;
/// `RPC_CMD_DEVICE_COUNT` (empty request), answered by a u32 count.
const DEVICE_COUNT: u8 = 15;
const DEVICE_COUNT_RSP_SIZE: u64 = 4;

/// What a server said about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerInfo {
    /// Its protocol version (major, minor, patch). This project's patched build sets bit
    /// `0x80` of the major version, so it never pairs with an upstream build.
    pub version: (u8, u8, u8),
    /// How many devices it serves (at least 1).
    pub devices: u32,
}

/// Asks the server at `endpoint` for its protocol version and device count, and checks
/// that this library can use it. The whole exchange (connect, HELLO, DEVICE_COUNT, close)
/// ends within `timeout`, apart from resolving a DNS name, which the system resolver does
/// without one.
///
/// A server serves one client at a time: while another client is connected, it does not
/// answer, and the probe times out.
///
/// ```no_run
/// use std::time::Duration;
///
/// let endpoint = "127.0.0.1:50052".parse()?;
/// let info = llamacpp::rpc::probe(&endpoint, Duration::from_secs(2))?;
/// println!("protocol {:?}, {} devices", info.version, info.devices);
/// # Ok::<(), llamacpp::Error>(())
/// ```
pub fn probe(endpoint: &Endpoint, timeout: Duration) -> Result<ServerInfo> {
    let err = |reason: String| Error::Rpc {
        endpoint: endpoint.to_string(),
        reason,
    };
    if timeout.is_zero() {
        return Err(err("the probe timeout is zero".into()));
    }
    let deadline = Instant::now() + timeout;
    let mut stream = connect(endpoint, deadline).map_err(err)?;
    let info = exchange(&mut stream, endpoint, deadline, timeout);
    // Leave before the C client connects: the server takes one client at a time.
    let _ = stream.shutdown(Shutdown::Both);
    info
}

fn connect(endpoint: &Endpoint, deadline: Instant) -> std::result::Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (endpoint.host(), endpoint.port())
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve the host: {e}"))?
        .filter(SocketAddr::is_ipv4)
        .collect();
    if addrs.is_empty() {
        return Err("the host has no IPv4 address (ggml-rpc speaks IPv4 only)".into());
    }
    let mut last = String::new();
    for addr in addrs {
        let Some(left) = remaining(deadline) else {
            break;
        };
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                last = format!("connection refused by {addr} (is the server running?)");
            }
            Err(e) if is_timeout(&e) => last = format!("no connection to {addr} in time"),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    if last.is_empty() {
        last = "no connection in time".into();
    }
    Err(last)
}

fn exchange(
    stream: &mut TcpStream,
    endpoint: &Endpoint,
    deadline: Instant,
    timeout: Duration,
) -> Result<ServerInfo> {
    let io = |e: std::io::Error| Error::Rpc {
        endpoint: endpoint.to_string(),
        reason: describe_io(&e, timeout),
    };
    let mut hello = vec![HELLO];
    hello.extend_from_slice(&HELLO_REQ_SIZE.to_le_bytes());
    hello.extend_from_slice(&[0u8; HELLO_REQ_SIZE as usize]);
    write_all(stream, &hello, deadline).map_err(io)?;
    let rsp = read_reply(stream, HELLO_RSP_SIZE, deadline, endpoint, timeout)?;
    let version = (rsp[0], rsp[1], rsp[2]);
    check_version(endpoint, version, super::raw::wire_version())?;

    let mut count = vec![DEVICE_COUNT];
    count.extend_from_slice(&0u64.to_le_bytes());
    write_all(stream, &count, deadline).map_err(io)?;
    let rsp = read_reply(stream, DEVICE_COUNT_RSP_SIZE, deadline, endpoint, timeout)?;
    let devices = u32::from_le_bytes([rsp[0], rsp[1], rsp[2], rsp[3]]);
    if devices == 0 {
        return Err(Error::Rpc {
            endpoint: endpoint.to_string(),
            reason: "the server has no devices".into(),
        });
    }
    Ok(ServerInfo { version, devices })
}

/// A reply: its u64 size (which must be `size`), then that many bytes.
fn read_reply(
    stream: &mut TcpStream,
    size: u64,
    deadline: Instant,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let err = |reason: String| Error::Rpc {
        endpoint: endpoint.to_string(),
        reason,
    };
    let mut head = [0u8; 8];
    read_exact(stream, &mut head, deadline).map_err(|e| err(describe_io(&e, timeout)))?;
    let got = u64::from_le_bytes(head);
    if got != size {
        return Err(err(format!(
            "malformed reply (size {got}, expected {size}): not a ggml-rpc server?"
        )));
    }
    let mut body = vec![0u8; size as usize];
    read_exact(stream, &mut body, deadline).map_err(|e| err(describe_io(&e, timeout)))?;
    Ok(body)
}

/// A client accepts a server of the same major version and a minor version no newer.
pub(super) fn check_version(
    endpoint: &Endpoint,
    server: (u8, u8, u8),
    client: (u8, u8, u8),
) -> Result<()> {
    if server.0 == client.0 && server.1 <= client.1 {
        return Ok(());
    }
    let patched = |major: u8| major & 0x80 != 0;
    let reason = match (patched(server.0), patched(client.0)) {
        (true, false) => "the server is this project's patched build and this client an \
             unpatched upstream build; patched and upstream builds must not be mixed (their \
             ops differ): use the same build on both sides"
            .to_string(),
        (false, true) => "the server is an unpatched upstream build and this client this \
             project's patched build; patched and upstream builds must not be mixed (their \
             ops differ): run a server built from this project"
            .to_string(),
        _ if server.0 != client.0 => "the major versions differ".to_string(),
        _ => "the server's minor version is newer than this client's".to_string(),
    };
    let v = |(a, b, c): (u8, u8, u8)| format!("{a}.{b}.{c}");
    Err(Error::RpcVersion {
        endpoint: endpoint.to_string(),
        server: v(server),
        client: v(client),
        reason,
    })
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn timed_out() -> std::io::Error {
    std::io::Error::from(ErrorKind::TimedOut)
}

fn write_all(stream: &mut TcpStream, mut buf: &[u8], deadline: Instant) -> std::io::Result<()> {
    while !buf.is_empty() {
        stream.set_write_timeout(Some(remaining(deadline).ok_or_else(timed_out)?))?;
        match stream.write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `read_exact` with one deadline for all its reads (each read's timeout is what is left).
fn read_exact(
    stream: &mut TcpStream,
    mut buf: &mut [u8],
    deadline: Instant,
) -> std::io::Result<()> {
    while !buf.is_empty() {
        stream.set_read_timeout(Some(remaining(deadline).ok_or_else(timed_out)?))?;
        match stream.read(buf) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

fn describe_io(e: &std::io::Error, timeout: Duration) -> String {
    if is_timeout(e) {
        format!(
            "no reply within {timeout:?} (the server serves one client at a time: is another \
             client connected? or it is hung, or not a ggml-rpc server)"
        )
    } else if e.kind() == ErrorKind::UnexpectedEof {
        "the server closed the connection (another protocol version, or not a ggml-rpc \
         server?)"
            .into()
    } else {
        format!("connection failed: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rules_follow_the_c_client() {
        let e: Endpoint = "127.0.0.1:1".parse().unwrap();
        assert!(check_version(&e, (7, 0, 0), (7, 0, 0)).is_ok());
        assert!(check_version(&e, (7, 0, 9), (7, 1, 0)).is_ok());
        assert!(check_version(&e, (135, 0, 0), (135, 0, 0)).is_ok());
        let msg = check_version(&e, (7, 2, 0), (7, 1, 0))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("minor"), "{msg}");
        let msg = check_version(&e, (6, 0, 0), (7, 0, 0))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("major"), "{msg}");
        let msg = check_version(&e, (135, 0, 0), (7, 0, 0))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("server is this project's patched build"),
            "{msg}"
        );
        assert!(msg.contains("135.0.0") && msg.contains("7.0.0"), "{msg}");
        let msg = check_version(&e, (7, 0, 0), (135, 0, 0))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("server is an unpatched upstream build"),
            "{msg}"
        );
    }
}
