//! [`Endpoint`]: where an RPC server listens, checked before any C code sees it.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A ggml-rpc server address: an IPv4 literal or a DNS name, and a port (1-65535).
///
/// ggml-rpc speaks TCP over IPv4 only and splits an endpoint at its first `:`, so IPv6
/// addresses are rejected here rather than misread there.
///
/// ```
/// use llamacpp::rpc::Endpoint;
///
/// let e: Endpoint = "127.0.0.1:50052".parse()?;
/// assert_eq!((e.host(), e.port()), ("127.0.0.1", 50052));
/// assert_eq!(e.to_string(), "127.0.0.1:50052");
/// assert!("gpu-box.local:50052".parse::<Endpoint>().is_ok());
/// assert!("[::1]:50052".parse::<Endpoint>().is_err());
/// assert!("127.0.0.1".parse::<Endpoint>().is_err());
/// # Ok::<(), llamacpp::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    /// An endpoint from its parts, with the same checks as parsing `host:port`.
    pub fn new(host: &str, port: u16) -> Result<Endpoint> {
        let err = |reason: String| Error::Rpc {
            endpoint: format!("{host}:{port}"),
            reason,
        };
        check_host(host).map_err(err)?;
        if port == 0 {
            return Err(err(
                "port 0 is not a server's port (expected 1-65535)".into()
            ));
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }

    /// The host: an IPv4 literal or a DNS name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Endpoint> {
        let err = |reason: &str| Error::Rpc {
            endpoint: s.to_string(),
            reason: format!("{reason} (expected host:port, host an IPv4 address or a DNS name)"),
        };
        if s.starts_with('[') || s.matches(':').count() > 1 {
            return Err(err("IPv6 addresses are not supported by ggml-rpc"));
        }
        let Some((host, port)) = s.split_once(':') else {
            return Err(err("no port"));
        };
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("the port is not a number"));
        }
        let port: u16 = match port.parse() {
            Ok(p) if p > 0 => p,
            _ => return Err(err("the port is outside 1-65535")),
        };
        check_host(host).map_err(|reason| err(&reason))?;
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// An IPv4 literal, or a DNS name of letters, digits and hyphens in dot-separated labels.
fn check_host(host: &str) -> std::result::Result<(), String> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    if host.contains(':') || host.starts_with('[') {
        return Err("IPv6 addresses are not supported by ggml-rpc".into());
    }
    // All digits and dots: it must be a complete dotted quad (C's resolver would read
    // `127.1` or `10.0.0.256` in surprising ways).
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match host.parse::<Ipv4Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("{host:?} is not a valid IPv4 address")),
        };
    }
    if host.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is neither an IPv4 address nor a DNS name"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_endpoints_parse_and_print_back() {
        for s in [
            "127.0.0.1:50052",
            "10.0.0.7:1",
            "192.168.1.20:65535",
            "localhost:50052",
            "gpu-box.example.org:8080",
            "a1:2",
        ] {
            let e: Endpoint = s.parse().unwrap();
            assert_eq!(e.to_string(), s);
        }
        let e: Endpoint = "host:0080".parse().unwrap();
        assert_eq!((e.host(), e.port()), ("host", 80));
        assert_eq!(
            Endpoint::new("127.0.0.1", 9).unwrap().to_string(),
            "127.0.0.1:9"
        );
    }

    #[test]
    fn junk_is_rejected_with_a_reason() {
        for (s, why) in [
            ("", "no port"),
            ("127.0.0.1", "no port"),
            (":50052", "empty host"),
            ("127.0.0.1:", "not a number"),
            ("127.0.0.1:0", "outside"),
            ("127.0.0.1:65536", "outside"),
            ("127.0.0.1:99999999999999999999", "outside"),
            ("127.0.0.1:+80", "not a number"),
            ("127.0.0.1:80 ", "not a number"),
            ("127.0.0.1:-1", "not a number"),
            ("[::1]:50052", "IPv6"),
            ("::1:50052", "IPv6"),
            ("fe80::1", "IPv6"),
            ("127.1:50052", "IPv4"),
            ("10.0.0.256:50052", "IPv4"),
            ("my host:1", "neither"),
            ("-bad.example:1", "neither"),
            ("bad..example:1", "neither"),
            ("host_name:1", "neither"),
            ("hôte:1", "neither"),
        ] {
            let e = s.parse::<Endpoint>().unwrap_err().to_string();
            assert!(e.contains(why), "{s:?}: {e}");
        }
        assert!(Endpoint::new("127.0.0.1", 0).is_err());
        assert!(Endpoint::new("", 1).is_err());
        assert!(Endpoint::new(&"a".repeat(64), 1).is_err());
    }
}
