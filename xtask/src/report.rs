//! The per-patch table that `check`, `refresh` and `canary` print.

use llamacpp_patchkit::series::{Outcome, Status};

/// How many patches ended up in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Patches that applied.
    pub applies: usize,
    /// Patches the tree already has.
    pub upstream: usize,
    /// Patches that conflict.
    pub conflicts: usize,
}

impl Tally {
    /// Whether every patch applied.
    pub fn clean(&self) -> bool {
        self.upstream == 0 && self.conflicts == 0
    }

    /// The error for an unclean series, if it is one.
    pub fn into_result(self) -> llamacpp_patchkit::Result<()> {
        if self.clean() {
            Ok(())
        } else {
            Err(llamacpp_patchkit::Error::SeriesUnclean {
                conflicts: self.conflicts,
                upstream: self.upstream,
            })
        }
    }
}

/// The verdict column for one patch.
pub fn verdict(status: &Status) -> String {
    match status {
        Status::Applies => "applies".into(),
        Status::AlreadyApplied => "ALREADY UPSTREAM (reverse-applies: drop it)".into(),
        Status::Conflicts(e) => format!("CONFLICT: {e}"),
    }
}

/// Prints one line per patch and a summary; returns the counts.
pub fn print(outcomes: &[Outcome]) -> Tally {
    let width = outcomes
        .iter()
        .map(|o| o.name.len())
        .max()
        .unwrap_or(0)
        .max("patch".len());
    println!("  {:width$}  result", "patch");
    let mut tally = Tally::default();
    for o in outcomes {
        match o.status {
            Status::Applies => tally.applies += 1,
            Status::AlreadyApplied => tally.upstream += 1,
            Status::Conflicts(_) => tally.conflicts += 1,
        }
        println!("  {:width$}  {}", o.name, verdict(&o.status));
    }
    println!(
        "{} patch{}: {} appl{}, {} already upstream, {} conflicting",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "es" },
        tally.applies,
        if tally.applies == 1 { "ies" } else { "y" },
        tally.upstream,
        tally.conflicts
    );
    tally
}
