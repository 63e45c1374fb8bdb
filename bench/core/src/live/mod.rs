//! Report rows of the live commands: `compare` (upstream and patched builds
//! run side by side) and `graph` (compute-graph statistics of each build).
//!
//! Both are serde types (for `-o json`) with a markdown renderer; [`check`] holds the
//! rules of `compare --check`.

pub mod check;
mod compare_row;
mod graph_stats;
pub mod profile;

pub use check::{CheckLimits, Correctness};
pub use compare_row::{CompareRow, compare_rows_markdown};
pub use graph_stats::{Build, GraphStats, Phase, graph_stats_markdown};

/// `1.50 GiB`, `12.00 MiB`, `3.00 KiB` or `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, f64); 3] = [
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("KiB", 1024.0),
    ];
    let b = bytes as f64;
    UNITS.iter().find(|(_, scale)| b >= *scale).map_or_else(
        || format!("{bytes} B"),
        |(unit, scale)| format!("{:.2} {unit}", b / scale),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_bytes() {
        assert_eq!(super::human_bytes(512), "512 B");
        assert_eq!(super::human_bytes(3 * 1024), "3.00 KiB");
        assert_eq!(super::human_bytes(12 << 20), "12.00 MiB");
        assert_eq!(super::human_bytes(3 << 29), "1.50 GiB");
    }
}
