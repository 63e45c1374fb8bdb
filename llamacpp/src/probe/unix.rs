//! The raw process calls of [`Model::probe`](crate::Model::probe): pipes, the fork, the
//! forked child's set-up and exit, reading both pipes against the deadline, reaping.
//!
//! This file is the probe's OS-level raw layer: every `libc` call of the probe is here,
//! each in a safe function, so `probe/mod.rs` carries no `unsafe`. (Moving them into
//! `crate::raw` would only rename them: they are process calls, not llama.cpp handles.)
//! The one llama.cpp call, the child's abort hook, stays here too: it is part of the
//! child's set-up and only sound in the single-threaded child.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::{ChildOutcome, REPORT_MAX, STDERR_TAIL};
use crate::Result;

/// A pipe whose ends close on exec (the child never execs; other children the
/// application spawns meanwhile must not inherit them).
pub(super) fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    #[cfg(target_os = "linux")]
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    // SAFETY: as above (pipe2 is not on every Unix; the flag is set below).
    #[cfg(not(target_os = "linux"))]
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the call succeeded: both descriptors are open and owned by nobody else.
    let ends = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(not(target_os = "linux"))]
    for fd in [&ends.0, &ends.1] {
        // SAFETY: an open descriptor we own. (Not atomic with its creation: a child another
        // thread spawns in between could inherit an end, which only delays our EOF until
        // that child execs or exits.)
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(ends)
}

/// The page size in bytes (`None` if the system does not say).
pub(super) fn page_size() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).ok()
}

/// Forks. The child closes its copies of the two read ends and runs [`child_main`] with
/// the write ends of `report` and `err` (it never returns from here); the parent closes its
/// copies of the write ends and gets the child's id and the read ends.
///
/// A fork of a multithreaded process is only a hazard for the child (a lock another
/// thread held at the fork stays held there), and the child is exactly the process we are
/// prepared to lose: a stall there ends as a timeout in the parent, which itself only
/// reads two pipes and waits.
pub(super) fn fork_child(
    report: (OwnedFd, OwnedFd),
    err: (OwnedFd, OwnedFd),
    limit: Option<u64>,
    work: impl FnOnce() -> Result<super::ProbeReport>,
) -> std::io::Result<(libc::pid_t, OwnedFd, OwnedFd)> {
    let ((report_r, report_w), (err_r, err_w)) = (report, err);
    // SAFETY: fork has no preconditions; the child only runs `child_main`, which never
    // returns (it ends in `_exit`), and shares nothing with the parent afterwards.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        drop(report_r);
        drop(err_r);
        child_main(report_w.as_raw_fd(), err_w.as_raw_fd(), limit, work);
    }
    drop(report_w);
    drop(err_w);
    Ok((pid, report_r, err_r))
}

/// The child: limits, standard error to the pipe, the work, its outcome as JSON on
/// the report pipe, `_exit`. Never returns, never unwinds.
fn child_main(
    report: RawFd,
    err: RawFd,
    limit: Option<u64>,
    work: impl FnOnce() -> Result<super::ProbeReport>,
) -> ! {
    // SAFETY: plain system calls on descriptors this process owns; `rl` is a valid
    // rlimit. Standard output goes to the stderr pipe too, so nothing the child
    // prints reaches the application's output.
    unsafe {
        libc::dup2(err, 2);
        libc::dup2(err, 1);
        if let Some(limit) = limit {
            let rl = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            libc::setrlimit(libc::RLIMIT_AS, &rl);
        }
        // An uncaught C++ exception would otherwise start gdb for a backtrace, in a
        // grandchild that keeps the pipes open.
        libc::setenv(c"GGML_NO_BACKTRACE".as_ptr(), c"1".as_ptr(), 1);
        // The crate's abort hook goes through `tracing` and Rust's stderr lock;
        // this one writes the message straight to the pipe.
        llamacpp_sys::ggml_set_abort_callback(Some(child_on_abort));
    }
    // The child's copy of the flag: its llama.cpp log lines feed error messages but
    // not the application's `tracing` subscriber (whose locks may be held).
    crate::backend::set_logging(false);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    let outcome = match outcome {
        Ok(Ok(r)) => ChildOutcome::Passed(r),
        Ok(Err(e)) => ChildOutcome::Refused(e.to_string()),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            ChildOutcome::Refused(format!("the probe panicked: {what}"))
        }
    };
    let bytes = serde_json::to_vec(&outcome).unwrap_or_default();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        // SAFETY: `rest` is valid for its length; `report` is open.
        let n = unsafe { libc::write(report, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            break;
        }
        rest = &rest[n as usize..];
    }
    // SAFETY: ends the child without running the parent's atexit handlers or
    // flushing its copies of the parent's buffers.
    unsafe { libc::_exit(0) }
}

/// ggml's abort message, written to the child's standard error (the pipe) before
/// ggml calls `abort()`.
extern "C" fn child_on_abort(message: *const std::ffi::c_char) {
    // SAFETY: ggml passes a NUL-terminated buffer valid for this call.
    let bytes = unsafe { std::ffi::CStr::from_ptr(message) }.to_bytes();
    for part in [b"ggml abort: ".as_slice(), bytes, b"\n"] {
        // SAFETY: `part` is valid for its length; a failed write loses the message only.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
}

/// Reads both pipes until the child closes them (it exited) or the deadline passes
/// (the child is then killed). Returns the report, the tail of standard error and
/// whether the deadline passed.
pub(super) fn collect(
    pid: libc::pid_t,
    report: OwnedFd,
    err: OwnedFd,
    deadline: Instant,
) -> std::io::Result<(Vec<u8>, Vec<u8>, bool)> {
    let mut files = [Some(File::from(report)), Some(File::from(err))];
    let mut bufs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut chunk = vec![0u8; 64 * 1024];
    while files.iter().any(Option::is_some) {
        let now = Instant::now();
        if now >= deadline {
            kill(pid);
            return Ok((Vec::new(), std::mem::take(&mut bufs[1]), true));
        }
        let ms = (deadline - now).as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        let mut pfds: Vec<libc::pollfd> = files
            .iter()
            .flatten()
            .map(|f| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `pfds` is a valid array of its length.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            kill(pid);
            return Err(e);
        }
        for p in pfds.iter().filter(|p| p.revents != 0) {
            let i = usize::from(files[1].as_ref().is_some_and(|f| f.as_raw_fd() == p.fd));
            let Some(file) = files[i].as_mut() else {
                continue;
            };
            match file.read(&mut chunk) {
                Ok(0) => files[i] = None,
                Ok(k) => {
                    let buf = &mut bufs[i];
                    buf.extend_from_slice(&chunk[..k]);
                    if i == 1 && buf.len() > 2 * STDERR_TAIL {
                        buf.drain(..buf.len() - STDERR_TAIL);
                    }
                    if i == 0 && buf.len() > REPORT_MAX {
                        // A report this long is not ours: treat it as none.
                        buf.clear();
                        files[i] = None;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => files[i] = None,
            }
        }
    }
    let [report, mut err] = bufs;
    if err.len() > STDERR_TAIL {
        err.drain(..err.len() - STDERR_TAIL);
    }
    Ok((report, err, false))
}

fn kill(pid: libc::pid_t) {
    // SAFETY: `pid` is our child, not yet reaped (so the id cannot have been reused).
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// How the child ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Status {
    Exited(i32),
    Signaled(i32),
}

/// Reaps the child.
pub(super) fn wait(pid: libc::pid_t) -> std::io::Result<Status> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer; `pid` is our unreaped child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(if libc::WIFSIGNALED(status) {
        Status::Signaled(libc::WTERMSIG(status))
    } else {
        Status::Exited(libc::WEXITSTATUS(status))
    })
}

/// What the tests' children do to end in the ways a probe tells apart.
#[cfg(test)]
pub(super) mod test_support {
    /// Straight to fd 2 (the test harness captures `eprintln!`).
    pub(crate) fn write_stderr(s: &str) {
        // SAFETY: `s` is valid for its length.
        unsafe { libc::write(2, s.as_ptr().cast(), s.len()) };
    }

    /// Ends the (child) process at once with `code`.
    pub(crate) fn exit_now(code: i32) -> ! {
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) }
    }

    /// Raises `signal` with its default action (Rust's stack-overflow handler, or a
    /// sanitizer's, would otherwise catch a SIGSEGV).
    pub(crate) fn raise_default(signal: i32) -> ! {
        // SAFETY: raises the signal a wild pointer would, in the child, with its default
        // action; setting a handler to SIG_DFL and raising have no memory preconditions.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
        unreachable!("signal {signal} with its default action did not end the process")
    }
}
