//! The default thread count (`-t`), chosen as upstream's `common_cpu_get_num_math`.

/// The number of threads upstream uses by default: on Linux, the number of
/// physical cores (distinct `thread_siblings` sets in sysfs); elsewhere, or when
/// sysfs says nothing, half the logical CPUs above four, else all of them.
///
/// Upstream additionally restricts hybrid x86 CPUs to their performance cores;
/// that needs CPUID and is not reproduced here.
pub fn default_threads() -> i32 {
    physical_cores_linux().unwrap_or_else(|| {
        let logical = std::thread::available_parallelism().map_or(4, |n| n.get());
        let n = if logical > 4 { logical / 2 } else { logical };
        i32::try_from(n).unwrap_or(i32::MAX)
    })
}

/// Counts distinct `/sys/devices/system/cpu/cpuN/topology/thread_siblings` masks.
fn physical_cores_linux() -> Option<i32> {
    let mut seen = std::collections::HashSet::new();
    for cpu in 0.. {
        let path = format!("/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings");
        let Ok(text) = std::fs::read_to_string(path) else {
            break;
        };
        seen.insert(text.lines().next().unwrap_or_default().to_owned());
    }
    if seen.is_empty() {
        None
    } else {
        i32::try_from(seen.len()).ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_threads_is_positive() {
        assert!(super::default_threads() >= 1);
    }
}
