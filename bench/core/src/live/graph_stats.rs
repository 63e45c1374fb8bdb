//! Statistics of one build's compute graph for one phase (`llama-bench graph`).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::human_bytes;
use crate::protocol::GraphCounts;
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

/// The counts of one build's graph for one phase: a row of `llama-bench graph`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphStats {
    /// The build.
    pub build: Build,
    /// The phase.
    pub phase: Phase,
    /// The counts, flattened into the row.
    #[serde(flatten)]
    pub counts: GraphCounts,
}

/// The graphs as markdown: a summary table (one row per graph), then the op
/// counts with one column per graph (`-` where a graph has no such node), then each
/// graph's node list where it was kept (`graph --nodes`).
pub fn graph_stats_markdown(stats: &[GraphStats]) -> String {
    let mut summary = Table::new([
        ("Build", Align::Left),
        ("Phase", Align::Left),
        ("Nodes", Align::Right),
        ("Copy nodes", Align::Right),
        ("Copy bytes", Align::Right),
        ("Gathered bytes", Align::Right),
        ("Compute buffer", Align::Right),
    ]);
    for s in stats {
        let c = &s.counts;
        summary.push(vec![
            s.build.to_string(),
            s.phase.to_string(),
            c.n_nodes.to_string(),
            c.copy_nodes.to_string(),
            human_bytes(c.copy_bytes),
            human_bytes(c.gather_bytes),
            human_bytes(c.compute_buffer_bytes),
        ]);
    }
    let mut columns = vec![("Op".to_owned(), Align::Left)];
    columns.extend(
        stats
            .iter()
            .map(|s| (format!("{} {}", s.build, s.phase), Align::Right)),
    );
    let mut ops = Table::new(columns);
    let names: BTreeSet<&String> = stats.iter().flat_map(|s| s.counts.ops.keys()).collect();
    for name in names {
        let mut cells = vec![name.clone()];
        cells.extend(stats.iter().map(|s| {
            s.counts
                .ops
                .get(name)
                .map_or_else(|| "-".to_owned(), u64::to_string)
        }));
        ops.push(cells);
    }
    let mut out = format!("{}\n{}", summary.render(), ops.render());
    for s in stats.iter().filter(|s| !s.counts.nodes.is_empty()) {
        out.push_str(&format!(
            "\n{} {} ({} nodes):\n",
            s.build,
            s.phase,
            s.counts.nodes.len()
        ));
        for (i, n) in s.counts.nodes.iter().enumerate() {
            out.push_str(&format!("{i:4} {n}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::BTreeMap;

    fn stats(build: Build, cont: u64) -> GraphStats {
        GraphStats {
            build,
            phase: Phase::Decode,
            counts: GraphCounts {
                n_nodes: 100 + cont,
                copy_nodes: cont,
                copy_bytes: cont * 4096,
                gather_bytes: 0,
                ops: BTreeMap::from([("CONT".to_owned(), cont), ("MUL_MAT".to_owned(), 60)])
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .collect(),
                compute_buffer_bytes: 3 << 20,
                nodes: Vec::new(),
            },
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
        assert!(!md.contains("nodes):"), "{md}");
        let mut listed = all[1].clone();
        listed.counts.nodes = vec!["MUL_MAT ffn_up-0 [8,1,1,1]".into()];
        let md = graph_stats_markdown(&[listed]);
        assert!(
            md.ends_with("patched decode (1 nodes):\n   0 MUL_MAT ffn_up-0 [8,1,1,1]\n"),
            "{md}"
        );
    }
}
