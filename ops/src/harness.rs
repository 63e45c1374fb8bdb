//! What the op tests share to run each case on every device: the devices to compare with the
//! CPU, and the bookkeeping of each device's `supports_op` verdict against what the test
//! expects of it, so that a case a device rejects is reported as skipped by name and never
//! passes silently.

use std::fmt;
use std::sync::{Mutex, MutexGuard};

use crate::{Device, Error};

/// Whether a device is expected to accept a case (see [`verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The device must accept the op and compute it within the tolerance.
    Supported,
    /// The device must reject the op (so that a graph scheduler keeps it on the CPU).
    Unsupported,
    /// No expectation (a device kind the tests know nothing about): a rejection is reported as
    /// skipped, an accepted op must still be right.
    Unknown,
}

/// Every device except the CPU, in registry order: the ones compared with the CPU and the
/// reference. With this crate's `vulkan` feature, at least one of them must be a Vulkan device
/// (on a machine without a GPU, Mesa's lavapipe, which ggml lists only when
/// `GGML_VK_VISIBLE_DEVICES` names it), and with its `cuda` feature a CUDA device, so that a
/// run cannot pass without testing the backend it was built for.
pub fn accelerators() -> Vec<Device> {
    let devices: Vec<Device> = Device::all().into_iter().filter(|d| !d.is_cpu()).collect();
    if cfg!(feature = "vulkan") {
        assert!(
            devices.iter().any(Device::is_vulkan),
            "built with the vulkan feature but no Vulkan device is visible (devices: {:?}); \
             on a machine without a GPU install Mesa's lavapipe and set GGML_VK_VISIBLE_DEVICES=0",
            Device::all()
        );
    }
    if cfg!(feature = "cuda") {
        assert!(
            devices.iter().any(Device::is_cuda),
            "built with the cuda feature but no CUDA device is visible (devices: {:?})",
            Device::all()
        );
    }
    devices
}

/// A process-wide turn to compute: hold it while a graph computes. ggml's worker threads spin
/// while they wait for each other, so two tests computing at once on a small machine slow each
/// other down badly. Taken inside [`exclusive`] where both are held, never the other way round.
pub fn serial() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A process-wide turn on the devices other than the CPU: hold it for everything done with an
/// op on such a device (building, uploading, computing, reading back, dropping). Test threads
/// run concurrently, and ggml-vulkan is not safe against two threads allocating and submitting on
/// one device at once (lavapipe crashes).
pub fn exclusive() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Turns the result of building `case` on `device` into the op to compute, or `None` when the
/// device rejected it; checks the verdict against `expect` (panicking on a mismatch) and prints
/// a `SKIPPED` line naming the case for every rejection. Errors other than a device's rejection
/// panic.
pub fn verdict<T>(
    device: Device,
    case: &dyn fmt::Display,
    built: Result<T, Error>,
    expect: Expect,
) -> Option<T> {
    match built {
        Ok(op) => {
            assert!(
                expect != Expect::Unsupported,
                "{case}: {device} accepts the op, but it must report it unsupported \
                 (it does not implement what this case asks for)"
            );
            Some(op)
        }
        Err(Error::DeviceUnsupported { op, .. }) => {
            eprintln!("SKIPPED on {device} (supports_op rejects {op}): {case}");
            assert!(
                expect != Expect::Supported,
                "{case}: {device} rejects {op}, but it is expected to run it"
            );
            None
        }
        Err(e) => panic!("{case} on {device}: {e}"),
    }
}

/// Counts of what one test did on one device, printed at its end.
#[derive(Debug, Default)]
pub struct Tally {
    /// Cases computed and compared.
    pub passed: usize,
    /// Cases the device rejected.
    pub skipped: usize,
}

impl Tally {
    /// Records a [`verdict`].
    pub fn count<T>(&mut self, op: &Option<T>) {
        if op.is_some() {
            self.passed += 1;
        } else {
            self.skipped += 1;
        }
    }
}
