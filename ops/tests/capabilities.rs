//! The capabilities the op tests query ([`capability::ALL`]) against what the build declares
//! ([`build_info::CAPABILITIES`], from the patches' `Provides:` trailers): the patched build
//! must declare every one, so that no case is skipped because a patch lost its trailer or the
//! tests misspell a name; the upstream build declares none.
//!
//! Run in both variants: `cargo test -p llamacpp-ops` (patched) and
//! `LLAMACPP_SYS_PATCHES=none cargo test -p llamacpp-ops` (upstream).

use llamacpp_ops::capability::{self, has};
use llamacpp_sys::build_info;

#[test]
fn every_queried_capability_is_declared_by_the_patched_build_and_none_by_upstream() {
    match build_info::VARIANT {
        "patched" => {
            let missing: Vec<&str> = capability::ALL
                .iter()
                .copied()
                .filter(|c| !has(c))
                .collect();
            assert!(
                missing.is_empty(),
                "the patched build does not declare {missing:?} (it declares {:?})",
                build_info::CAPABILITIES
            );
        }
        "upstream" | "prebuilt" => assert!(
            build_info::CAPABILITIES.is_empty(),
            "{} build declares {:?}",
            build_info::VARIANT,
            build_info::CAPABILITIES
        ),
        other => panic!("unexpected variant {other}"),
    }
    for c in capability::ALL {
        assert_eq!(has(c), build_info::CAPABILITIES.contains(c));
    }
}

#[test]
fn queried_capabilities_are_distinct() {
    let mut names = capability::ALL.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), capability::ALL.len(), "{:?}", capability::ALL);
}
