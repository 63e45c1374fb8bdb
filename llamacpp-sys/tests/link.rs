//! The linked library is the one `build_info` describes, in either variant.
//!
//! Run once as is (patched) and once with `LLAMACPP_SYS_PATCHES=none` (upstream);
//! with the `side-by-side` feature the other variant is also loaded in a child
//! process, so one run covers both.

use std::ffi::CStr;

use llamacpp_sys::build_info;

fn loaded_commit() -> String {
    // SAFETY: ggml_commit returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(llamacpp_sys::ggml_commit()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn calls_into_the_library() {
    // SAFETY: llama_backend_init may be called more than once; the others only read global state.
    unsafe {
        llamacpp_sys::llama_backend_init();
        assert!(llamacpp_sys::llama_max_devices() >= 1);
        let info = CStr::from_ptr(llamacpp_sys::llama_print_system_info())
            .to_string_lossy()
            .into_owned();
        assert!(info.contains("CPU"), "system info: {info}");
        assert!(llamacpp_sys::ggml_backend_dev_count() >= 1);
    }
}

#[test]
fn loaded_library_reports_this_build() {
    assert_eq!(loaded_commit(), build_info::BUILD_COMMIT);
}

#[test]
fn build_info_matches_the_variant() {
    match build_info::VARIANT {
        "patched" => {
            assert!(!build_info::PATCHES.is_empty());
            let hash = build_info::SERIES_HASH.expect("patched build has a series hash");
            assert_eq!(
                build_info::BUILD_COMMIT,
                format!("{}+p{hash}", build_info::UPSTREAM_ID)
            );
        }
        "upstream" => {
            assert!(build_info::PATCHES.is_empty());
            assert_eq!(build_info::SERIES_HASH, None);
            assert_eq!(build_info::BUILD_COMMIT, build_info::UPSTREAM_ID);
        }
        other => assert_eq!(other, "prebuilt"),
    }
    assert_eq!(build_info::UPSTREAM_PACKAGE, "llama-cpp-sys-2");
    assert!(build_info::BACKENDS.contains(&"CPU"));
}

/// In a child started by `other_variant_loads_in_a_child`: print what was loaded.
#[test]
fn child_print_commit() {
    if std::env::var_os("LLAMACPP_SYS_TEST_CHILD").is_some() {
        println!("loaded-commit={}", loaded_commit());
    }
}

#[test]
fn other_variant_loads_in_a_child() {
    let Some(other) = build_info::OTHER_LIB_DIR else {
        eprintln!("skipped: built without the side-by-side feature");
        return;
    };
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_print_commit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LLAMACPP_SYS_TEST_CHILD", "1")
        .env("LD_LIBRARY_PATH", other)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(commit) = stdout
        .split("loaded-commit=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
    else {
        panic!(
            "child printed no commit; stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    assert_ne!(
        commit,
        build_info::BUILD_COMMIT,
        "child loaded the same variant"
    );
    assert!(commit.starts_with(build_info::UPSTREAM_ID), "{commit}");
}
