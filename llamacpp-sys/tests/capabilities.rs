//! `build_info::CAPABILITIES` is what the applied patches declare in the `Provides:` trailers
//! of their messages: every one of them, in series order, each once, well formed; and nothing
//! for the upstream variant (`LLAMACPP_SYS_PATCHES=none`) or a prebuilt install.
//!
//! Run once as is (patched) and once with `LLAMACPP_SYS_PATCHES=none` (upstream).

use std::path::Path;

use llamacpp_sys::build_info;

/// The `Provides:` lines of a patch file's message (before its `---` line), read plainly.
fn declared(file: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("patches")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .take_while(|l| *l != "---")
        .filter_map(|l| l.strip_prefix("Provides: "))
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn capabilities_are_the_applied_patches_declarations() {
    match build_info::VARIANT {
        "patched" => {
            let mut want: Vec<String> = Vec::new();
            for (file, _) in build_info::PATCHES {
                for c in declared(file) {
                    if !want.contains(&c) {
                        want.push(c);
                    }
                }
            }
            assert!(!want.is_empty(), "no patch declares a capability");
            assert_eq!(build_info::CAPABILITIES, want.as_slice());
        }
        "upstream" | "prebuilt" => assert!(
            build_info::CAPABILITIES.is_empty(),
            "{:?}",
            build_info::CAPABILITIES
        ),
        other => panic!("unexpected variant {other}"),
    }
}

#[test]
fn capabilities_are_distinct_lowercase_words() {
    for (i, c) in build_info::CAPABILITIES.iter().enumerate() {
        assert!(
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'),
            "{c:?}"
        );
        assert!(!build_info::CAPABILITIES[..i].contains(c), "{c} twice");
    }
}
