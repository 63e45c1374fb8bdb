//! The loopback servers `compare --rpc-local` starts: each a child process of this executable
//! (`llama-bench rpc-server`) running one build's library, bound to 127.0.0.1, killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::worker::this_exe_on;
use crate::{Result, err};

/// How long a server may take to start listening: it creates its CPU backend first.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One running server, killed on drop (also when starting it failed half-way).
struct Running {
    child: Child,
    /// Held open: the server exits when it closes (`--watch-stdin`), so that it does not outlive
    /// this process even if this process is killed.
    _stdin: ChildStdin,
}

/// The servers of one build.
pub struct LocalServers {
    /// `upstream` or `patched`.
    build: String,
    running: Vec<Running>,
    endpoints: Vec<String>,
}

impl LocalServers {
    /// Starts `n` servers with `threads` threads each, on the libraries of `lib_dir`; `verbose`
    /// keeps their llama.cpp log (why a request was refused) on standard error.
    pub fn start(
        build: &str,
        lib_dir: &str,
        n: usize,
        threads: i32,
        verbose: bool,
    ) -> Result<LocalServers> {
        let mut s = LocalServers {
            build: build.to_string(),
            running: Vec::with_capacity(n),
            endpoints: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let (running, endpoint) = s.start_one(lib_dir, threads, verbose)?;
            s.running.push(running);
            s.endpoints.push(endpoint);
        }
        Ok(s)
    }

    fn start_one(&self, lib_dir: &str, threads: i32, verbose: bool) -> Result<(Running, String)> {
        let mut cmd = this_exe_on(lib_dir)?;
        cmd.args(["rpc-server", "--host", "127.0.0.1", "--port", "0"])
            .args(["--threads", &threads.to_string(), "--watch-stdin"]);
        if verbose {
            cmd.arg("-v");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the {} RPC server: {e}", self.build))?;
        let stdin = child.stdin.take().ok_or("RPC server has no stdin")?;
        let stdout = child.stdout.take().ok_or("RPC server has no stdout")?;
        let running = Running {
            child,
            _stdin: stdin,
        };
        // The server's library prints to stdout too (upstream's a line per client): a thread
        // reads it to the end, so that the pipe never fills, and hands over the address line.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = rx.recv_timeout(START_TIMEOUT).map_err(|e| {
            format!(
                "the {} RPC server did not start listening: {}",
                self.build,
                match e {
                    mpsc::RecvTimeoutError::Timeout => "timed out".to_string(),
                    mpsc::RecvTimeoutError::Disconnected => "it exited".to_string(),
                }
            )
        })?;
        if !addr.starts_with("127.0.0.1:") {
            return Err(format!(
                "the {} RPC server listens on {addr}, not on 127.0.0.1",
                self.build
            ));
        }
        Ok((running, addr))
    }

    /// `host:port` of each server, in start order.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Process ids of the servers, in start order.
    pub fn pids(&self) -> Vec<u32> {
        self.running.iter().map(|r| r.child.id()).collect()
    }

    /// Whether every server is still running (one that died makes later results meaningless).
    pub fn check_alive(&mut self) -> Result<()> {
        for (r, e) in self.running.iter_mut().zip(&self.endpoints) {
            if let Some(status) = r.child.try_wait().map_err(err)? {
                return Err(format!(
                    "the {} RPC server on {e} exited ({status})",
                    self.build
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
