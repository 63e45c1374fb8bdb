//! `Model::probe`: files are loaded and decoded in a child process, and whatever happens
//! there comes back as a report or an `Err` while this process carries on.

mod common;

use std::time::Duration;

use llamacpp::{Context, ContextParams, Error, Model, ModelParams, ProbeFailure, ProbeOptions};
use llamacpp_synth::{MetaValue, write_gguf};

fn probe_failure(path: &std::path::Path, options: &ProbeOptions) -> ProbeFailure {
    match Model::probe(path, options) {
        Err(Error::Probe { failure, path: p }) => {
            assert_eq!(p, path);
            failure
        }
        other => panic!("expected a probe failure, got {other:?}"),
    }
}

#[test]
fn sound_files_pass_with_a_report() {
    for (path, arch) in [
        (common::dense_path(), "llama"),
        (common::qwen3next_path(), "qwen3next"),
    ] {
        let report = Model::probe(&path, &ProbeOptions::default()).expect("probe");
        let model = Model::load(&path, ModelParams::default()).unwrap();
        assert_eq!(report.architecture.as_deref(), Some(arch));
        assert_eq!(report.n_vocab, model.vocab().n_tokens());
        assert_eq!(report.n_params, model.n_params());
        let n = model
            .vocab()
            .tokenize("Hello world", true, false)
            .unwrap()
            .len();
        assert_eq!(report.n_tokens, n);
        assert!(report.logits_checked);
        assert!(report.elapsed > Duration::ZERO);
    }
}

#[test]
fn a_file_the_checks_refuse_is_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd-rope.gguf");
    let mut spec = common::dense_spec();
    spec.metadata
        .set("llama.rope.dimension_count", MetaValue::U32(7));
    write_gguf(&spec, &path, false).unwrap();
    match probe_failure(&path, &ProbeOptions::default()) {
        ProbeFailure::Refused(m) => assert!(m.contains("rope.dimension_count"), "{m}"),
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[test]
fn running_out_of_memory_ends_the_child_not_this_process() {
    // An address-space limit below what the load maps: the child fails on its first
    // large allocation, either as an error (llama.cpp throws) or by aborting (Rust's
    // allocation-failure handler); both come back as a failure, with a reason.
    let path = common::dense_path();
    let failure = probe_failure(&path, &ProbeOptions::default().memory_limit(Some(1 << 20)));
    match &failure {
        ProbeFailure::Refused(m) => assert!(!m.is_empty()),
        ProbeFailure::Crashed { signal, .. } => assert_eq!(*signal, 6, "{failure}"),
        other => panic!("unexpected {other:?}"),
    }
    // This process is untouched.
    let model = Model::load(&path, ModelParams::default()).unwrap();
    let mut ctx = Context::new(&model, ContextParams::default().n_ctx(64).n_threads(1)).unwrap();
    let prompt = common::prompt_logits(&mut ctx);
    assert!(prompt.iter().all(|x| x.is_finite()));
}

#[test]
fn a_child_past_its_deadline_is_killed() {
    let failure = probe_failure(
        &common::dense_path(),
        &ProbeOptions::default().timeout(Duration::ZERO),
    );
    assert_eq!(failure, ProbeFailure::TimedOut(Duration::ZERO));
    assert!(failure.to_string().contains("did not finish"));
}

/// Whether AddressSanitizer's runtime is loaded: its allocator (GCC 12's libasan) is not
/// fork-safe, so a child forked while another thread allocates can wait forever on its lock
/// (glibc's malloc resets its locks in the child; `.ci/sanitize` runs tests one at a time).
#[cfg(unix)]
fn under_asan() -> bool {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks a symbol up.
    !unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__asan_init".as_ptr()) }.is_null()
}

#[test]
fn probing_while_other_threads_decode() {
    // The fork happens while this process's other threads are inside llama.cpp; the
    // child must still get through (it needs none of their locks).
    #[cfg(unix)]
    if under_asan() {
        eprintln!("skipped: AddressSanitizer's allocator is not fork-safe");
        return;
    }
    let model = std::sync::Arc::new(common::dense());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (model, stop) = (model.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut ctx =
                    Context::new(&model, ContextParams::default().n_ctx(64).n_threads(1)).unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    common::prompt_logits(&mut ctx);
                }
            })
        })
        .collect();
    for _ in 0..3 {
        Model::probe(common::qwen3next_path(), &ProbeOptions::default()).expect("probe");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn missing_and_non_regular_paths_are_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    for path in [dir.path().join("absent.gguf"), dir.path().to_path_buf()] {
        assert!(matches!(
            Model::probe(&path, &ProbeOptions::default()),
            Err(Error::ModelLoad { .. })
        ));
    }
}

/// A model written under a file name that is not UTF-8 loads (the name used to be
/// converted lossily, so llama.cpp looked for another file).
#[cfg(unix)]
#[test]
fn a_path_that_is_not_utf8_loads() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"model-\xff.gguf"));
    std::fs::copy(common::dense_path(), &path).unwrap();
    let model = Model::load(&path, ModelParams::default()).expect("load");
    assert!(model.n_params() > 0);
    let report = Model::probe(&path, &ProbeOptions::default()).expect("probe");
    assert_eq!(report.n_params, model.n_params());
}
