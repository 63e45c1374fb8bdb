//! The timing loop the `*_speed` examples share.

use std::time::Instant;

use crate::Error;

/// Median and fastest wall time of `reps` runs of `run` (at least one), in milliseconds, after
/// two warm-up runs.
///
/// ```
/// let (median, min) = llamacpp_ops::timing::median_min_ms(5, || Ok(()))?;
/// assert!(min <= median);
/// # Ok::<(), llamacpp_ops::Error>(())
/// ```
pub fn median_min_ms(
    reps: usize,
    mut run: impl FnMut() -> Result<(), Error>,
) -> Result<(f64, f64), Error> {
    let reps = reps.max(1);
    let mut times = Vec::with_capacity(reps);
    for i in 0..reps + 2 {
        let t = Instant::now();
        run()?;
        if i >= 2 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}
