//! `llama-bench profile`'s report: where a step's time goes, op by op, and the bandwidth
//! each kind of matrix multiplication reaches reading its weights. The app measures; this
//! module turns the totals into rows and renders them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::table::{Align, Table};

/// One row of the profile: the nodes of one op (and, for a matmul, one weight role).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileRow {
    /// ggml op name (`MUL_MAT`, `MUL_MAT_ID`, `ADD`, ...).
    pub op: String,
    /// For a matmul, what its first source is: a weight's GGUF name without the
    /// `blk.N.` prefix and `.weight` suffix (`ffn_down_exps`, `attn_qkv`, `output`),
    /// else the node's name without its `-N` layer suffix (`kq`, `kqv`).
    pub role: Option<String>,
    /// Nodes per step.
    pub nodes_per_step: f64,
    /// Milliseconds per step, node by node.
    pub ms_per_step: f64,
    /// Share of the timed step's wall time (0..1).
    pub share: f64,
    /// Bytes of the first source (weights, or the K/V cache for attention) that the
    /// step's matmuls read: for `MUL_MAT_ID` only the experts the step uses. 0 for
    /// other ops.
    pub weight_bytes_per_step: f64,
    /// `weight_bytes_per_step / ms_per_step` in GB/s (rows with weight bytes only).
    pub gbs: Option<f64>,
    /// `gbs` as a share of the machine's read bandwidth (0..1).
    pub membw_share: Option<f64>,
}

/// The whole profile (`-o json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Model path.
    pub model: String,
    /// llama.cpp's description of the model.
    pub model_desc: String,
    /// Commit of the linked llama.cpp build.
    pub build_commit: String,
    /// Threads.
    pub threads: i32,
    /// Layers offloaded to a GPU.
    pub n_gpu_layers: i32,
    /// Tokens per step (one ubatch).
    pub batch: u32,
    /// Prompt tokens before the steps.
    pub n_prompt: u32,
    /// Untimed warm-up steps.
    pub n_warmup: u32,
    /// Timed decode steps.
    pub steps: u32,
    /// Mean wall time of a step without the timer and without a thread pool (worker
    /// threads started for every graph, as the benchmark runner decodes), in ms.
    pub step_ms_plain_no_pool: f64,
    /// Mean wall time of a step without the timer, on a thread pool, in ms.
    pub step_ms_plain: f64,
    /// Mean wall time of a step timed node by node (on a thread pool), in ms.
    pub step_ms_timed: f64,
    /// Sum of the node times per step, in ms.
    pub nodes_ms: f64,
    /// `step_ms_timed - nodes_ms`: graph building, scheduling and the output copy.
    pub outside_nodes_ms: f64,
    /// Read bandwidth of the machine with `threads` threads (as `llama-bench membw`), GB/s;
    /// 0 when layers are offloaded (not measured: the weights are read by a GPU).
    pub read_bandwidth_gbs: f64,
    /// Every matmul row together.
    pub matmuls: ProfileRow,
    /// Rows, slowest first.
    pub rows: Vec<ProfileRow>,
}

/// What the timed steps' nodes of one (op, role) added up to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NodeTotals {
    /// Nodes.
    pub nodes: u64,
    /// Their computing time.
    pub time: Duration,
    /// Weight bytes they read.
    pub bytes: u64,
}

impl ProfileRow {
    /// A row from its totals over `steps` steps, each `step_ms` long, on a machine that reads
    /// `bw` GB/s (0: not measured).
    pub fn from_totals(
        op: String,
        role: Option<String>,
        acc: &NodeTotals,
        steps: u32,
        step_ms: f64,
        bw: f64,
    ) -> ProfileRow {
        let steps = f64::from(steps.max(1));
        let ms = acc.time.as_secs_f64() * 1e3 / steps;
        let bytes = acc.bytes as f64 / steps;
        // Only matmuls read weights (`weight_bytes`).
        let gbs = (acc.bytes > 0 && ms > 0.0).then(|| bytes / (ms * 1e-3) / 1e9);
        ProfileRow {
            op,
            role,
            nodes_per_step: acc.nodes as f64 / steps,
            ms_per_step: ms,
            share: if step_ms > 0.0 { ms / step_ms } else { 0.0 },
            weight_bytes_per_step: bytes,
            gbs,
            membw_share: gbs.filter(|_| bw > 0.0).map(|g| g / bw),
        }
    }
}

/// The profile as markdown: a summary and one table.
pub fn profile_markdown(p: &Profile) -> String {
    let pct = |x: f64, of: f64| {
        if of > 0.0 {
            format!("{:+.0}%", 100.0 * (x / of - 1.0))
        } else {
            "?".into()
        }
    };
    let offload = if p.n_gpu_layers > 0 {
        format!(", {} layers offloaded", p.n_gpu_layers)
    } else {
        String::new()
    };
    let bandwidth = if p.read_bandwidth_gbs > 0.0 {
        format!("{:.2} GB/s", p.read_bandwidth_gbs)
    } else {
        "not measured (offloaded)".into()
    };
    let mut out = format!(
        "model: {} ({}), build {}, {} threads{}: {} steps of {} token(s) after a {}-token prompt and {} warm-up steps\n\
         step, plain: {:.2} ms on a thread pool, {:.2} ms starting threads per graph ({})\n\
         step, timed node by node on the pool: {:.2} ms ({}): nodes {:.2} ms, outside nodes {:.2} ms\n\
         read bandwidth (as `llama-bench membw`): {}\n\n",
        p.model_desc,
        p.model,
        p.build_commit,
        p.threads,
        offload,
        p.steps,
        p.batch,
        p.n_prompt,
        p.n_warmup,
        p.step_ms_plain,
        p.step_ms_plain_no_pool,
        pct(p.step_ms_plain_no_pool, p.step_ms_plain),
        p.step_ms_timed,
        pct(p.step_ms_timed, p.step_ms_plain),
        p.nodes_ms,
        p.outside_nodes_ms,
        bandwidth,
    );
    let mut t = Table::new([
        ("op", Align::Left),
        ("weight", Align::Left),
        ("nodes/step", Align::Right),
        ("ms/step", Align::Right),
        ("share", Align::Right),
        ("weight MB/step", Align::Right),
        ("GB/s", Align::Right),
        ("% of membw", Align::Right),
    ]);
    let cells = |r: &ProfileRow| {
        vec![
            r.op.clone(),
            r.role.clone().unwrap_or_default(),
            format!("{:.0}", r.nodes_per_step),
            format!("{:.3}", r.ms_per_step),
            format!("{:.1}%", 100.0 * r.share),
            if r.weight_bytes_per_step > 0.0 {
                format!("{:.1}", r.weight_bytes_per_step / 1e6)
            } else {
                String::new()
            },
            r.gbs.map_or(String::new(), |g| format!("{g:.1}")),
            r.membw_share
                .map_or(String::new(), |s| format!("{:.0}%", 100.0 * s)),
        ]
    };
    for r in &p.rows {
        t.push(cells(r));
    }
    t.push(vec![
        "(outside nodes)".into(),
        String::new(),
        String::new(),
        format!("{:.3}", p.outside_nodes_ms),
        if p.step_ms_timed > 0.0 {
            format!("{:.1}%", 100.0 * p.outside_nodes_ms / p.step_ms_timed)
        } else {
            String::new()
        },
    ]);
    t.push(cells(&p.matmuls));
    out.push_str(&t.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_turn_totals_into_per_step_rates() {
        let acc = NodeTotals {
            nodes: 8,
            time: Duration::from_millis(4),
            bytes: 4_000_000,
        };
        let r = ProfileRow::from_totals("MUL_MAT".into(), None, &acc, 2, 10.0, 4.0);
        assert_eq!(r.nodes_per_step, 4.0);
        assert_eq!(r.ms_per_step, 2.0);
        assert_eq!(r.share, 0.2);
        assert_eq!(r.weight_bytes_per_step, 2e6);
        assert_eq!(r.gbs, Some(1.0));
        assert_eq!(r.membw_share, Some(0.25));
        let add = NodeTotals { bytes: 0, ..acc };
        assert_eq!(
            ProfileRow::from_totals("ADD".into(), None, &add, 2, 10.0, 4.0).gbs,
            None
        );
    }

    #[test]
    fn markdown_has_the_summary_the_rows_and_the_matmul_total() {
        let mm = ProfileRow::from_totals(
            "MUL_MAT".into(),
            Some("ffn_up".into()),
            &NodeTotals {
                nodes: 4,
                time: Duration::from_millis(2),
                bytes: 2_000_000,
            },
            2,
            4.0,
            2.0,
        );
        let p = Profile {
            model: "m.gguf".into(),
            model_desc: "qwen3next ?B Q4_0".into(),
            build_commit: "abc+p1".into(),
            threads: 2,
            n_gpu_layers: 0,
            batch: 1,
            n_prompt: 8,
            n_warmup: 2,
            steps: 2,
            step_ms_plain_no_pool: 5.0,
            step_ms_plain: 4.0,
            step_ms_timed: 4.4,
            nodes_ms: 4.0,
            outside_nodes_ms: 0.4,
            read_bandwidth_gbs: 2.0,
            matmuls: ProfileRow {
                op: "all matmuls".into(),
                role: None,
                ..mm.clone()
            },
            rows: vec![mm],
        };
        let md = profile_markdown(&p);
        assert!(
            md.starts_with("model: qwen3next ?B Q4_0 (m.gguf), build abc+p1, 2 threads:"),
            "{md}"
        );
        assert!(
            md.contains("4.00 ms on a thread pool, 5.00 ms starting threads per graph (+25%)"),
            "{md}"
        );
        assert!(
            md.contains("read bandwidth (as `llama-bench membw`): 2.00 GB/s"),
            "{md}"
        );
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        // The header, the row, the time outside nodes and the matmul total.
        assert_eq!(rows.len(), 4, "{md}");
        assert!(
            rows[1].contains("MUL_MAT") && rows[1].contains("ffn_up"),
            "{md}"
        );
        assert!(rows[1].contains("25.0%"), "{md}");
        assert!(
            rows[2].contains("(outside nodes)") && rows[2].contains("9.1%"),
            "{md}"
        );
        assert!(
            rows[3].contains("all matmuls") && rows[3].contains("50%"),
            "{md}"
        );
    }
}
