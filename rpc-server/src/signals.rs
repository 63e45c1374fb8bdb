//! Waiting for SIGINT/SIGTERM without a handler: both are blocked in every thread and
//! taken with `sigwait` by the main thread, which then stops the server cleanly.

/// SIGINT and SIGTERM, blocked for this thread and the threads it starts later.
pub struct StopSignals {
    #[cfg(unix)]
    set: libc::sigset_t,
}

impl StopSignals {
    /// Blocks the signals (call before starting threads).
    #[cfg(unix)]
    pub fn block() -> std::io::Result<StopSignals> {
        // SAFETY: an all-zero sigset_t is a valid value to initialise with sigemptyset.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t owned here; the calls only write to it and to
        // this thread's signal mask.
        let rc = unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(StopSignals { set })
    }

    /// Waits for SIGINT or SIGTERM and says which came.
    #[cfg(unix)]
    pub fn wait(&self) -> std::io::Result<&'static str> {
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `self.set` is an initialised set of signals blocked in every thread;
            // `sig` is a valid place for the result.
            let rc = unsafe { libc::sigwait(&self.set, &mut sig) };
            match (rc, sig) {
                (0, libc::SIGINT) => return Ok("SIGINT"),
                (0, libc::SIGTERM) => return Ok("SIGTERM"),
                (0, _) | (libc::EINTR, _) => continue,
                (e, _) => return Err(std::io::Error::from_raw_os_error(e)),
            }
        }
    }

    /// Elsewhere the default handlers end the process; this only has to wait.
    #[cfg(not(unix))]
    pub fn block() -> std::io::Result<StopSignals> {
        Ok(StopSignals {})
    }

    /// Waits forever (the process ends on Ctrl-C or when killed).
    #[cfg(not(unix))]
    pub fn wait(&self) -> std::io::Result<&'static str> {
        loop {
            std::thread::park();
        }
    }
}
