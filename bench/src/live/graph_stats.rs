//! Statistics of one build's compute graph for one phase (`llama-bench graph`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::human_bytes;
use crate::table::{Align, Table};

/// Which llama.cpp build a graph comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Build {
    /// The pinned source without the patch series.
    Upstream,
    /// The pinned source with the patch series.
    Patched,
}

/// Which graph: generation (one token) or prompt processing (a batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The one-token graph of text generation.
    Decode,
    /// The batch graph of prompt processing.
    Prompt,
}

impl fmt::Display for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Build::Upstream => "upstream",
            Build::Patched => "patched",
        })
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Decode => "decode",
            Phase::Prompt => "prompt",
        })
    }
}

/// Node and memory counts of one graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphStats {
    /// The build.
    pub build: Build,
    /// The phase.
    pub phase: Phase,
    /// Nodes in the graph.
    pub n_nodes: u64,
    /// Nodes that only copy data (`CPY`, `CONT`, `DUP`...).
    pub copy_nodes: u64,
    /// Bytes written by those copy nodes.
    pub copy_bytes: u64,
    /// Node count per ggml op name.
    pub ops: BTreeMap<String, u64>,
    /// Size of the compute buffer(s) the graph needs, in bytes.
    pub compute_buffer_bytes: u64,
}

/// The graphs as markdown: a summary table (one row per graph), then the op
/// counts with one column per graph (`-` where a graph has no such node).
pub fn graph_stats_markdown(stats: &[GraphStats]) -> String {
    let mut summary = Table::new([
        ("Build", Align::Left),
        ("Phase", Align::Left),
        ("Nodes", Align::Right),
        ("Copy nodes", Align::Right),
        ("Copy bytes", Align::Right),
        ("Compute buffer", Align::Right),
    ]);
    for s in stats {
        summary.push(vec![
            s.build.to_string(),
            s.phase.to_string(),
            s.n_nodes.to_string(),
            s.copy_nodes.to_string(),
            human_bytes(s.copy_bytes),
            human_bytes(s.compute_buffer_bytes),
        ]);
    }
    let mut columns = vec![("Op".to_owned(), Align::Left)];
    columns.extend(
        stats
            .iter()
            .map(|s| (format!("{} {}", s.build, s.phase), Align::Right)),
    );
    let mut ops = Table::new(columns);
    let names: BTreeSet<&String> = stats.iter().flat_map(|s| s.ops.keys()).collect();
    for name in names {
        let mut cells = vec![name.clone()];
        cells.extend(stats.iter().map(|s| {
            s.ops
                .get(name)
                .map_or_else(|| "-".to_owned(), u64::to_string)
        }));
        ops.push(cells);
    }
    format!("{}\n{}", summary.render(), ops.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(build: Build, cont: u64) -> GraphStats {
        GraphStats {
            build,
            phase: Phase::Decode,
            n_nodes: 100 + cont,
            copy_nodes: cont,
            copy_bytes: cont * 4096,
            ops: BTreeMap::from([("CONT".to_owned(), cont), ("MUL_MAT".to_owned(), 60)])
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            compute_buffer_bytes: 3 << 20,
        }
    }

    #[test]
    fn json_names_and_markdown() {
        let all = [stats(Build::Upstream, 8), stats(Build::Patched, 0)];
        let json = serde_json::to_string(&all[0]).unwrap();
        assert!(
            json.starts_with(r#"{"build":"upstream","phase":"decode","n_nodes":108,"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<GraphStats>(&json).unwrap(), all[0]);
        let md = graph_stats_markdown(&all);
        assert!(md.contains("| upstream | decode  |     108 |"), "{md}");
        assert!(
            md.contains("| patched  | decode  |     100 |            0 |"),
            "{md}"
        );
        assert!(
            md.contains("| Op      |   upstream decode |   patched decode |"),
            "{md}"
        );
        assert!(
            md.contains("| CONT    |                 8 |                - |"),
            "{md}"
        );
        assert!(
            md.contains("| MUL_MAT |                60 |               60 |"),
            "{md}"
        );
    }
}
