//! The patch series on a scratch tree: a good series applies, a broken patch
//! fails with its name, file and hunk, an already-applied patch is detected.

use std::fs;
use std::path::Path;

use llamacpp_patchkit::Error;
use llamacpp_patchkit::overlay::Overlay;
use llamacpp_patchkit::series::{Patch, Series, Status};

/// `l01` .. `l20`, one per line.
fn twenty_lines() -> String {
    (1..=20).map(|i| format!("l{i:02}\n")).collect()
}

/// A scratch upstream tree: `src/a.c` (20 lines), `src/b.c`, `docs/old.txt`.
fn scratch_tree(root: &Path) {
    fs::create_dir_all(root.join("src")).unwrap();
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::write(root.join("src/a.c"), twenty_lines()).unwrap();
    fs::write(root.join("src/b.c"), "int b;\n").unwrap();
    fs::write(root.join("docs/old.txt"), "old one\nold two\n").unwrap();
}

/// Wraps diffs in a `git format-patch` style header.
fn patch_text(subject: &str, diffs: &[&str]) -> String {
    format!(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n\
         From: Test Author <test@example.invalid>\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\n\
         Subject: [PATCH] {subject}\n\
         \n\
         Why the change is needed.\n\
         \n\
         Upstream status: test fixture.\n\
         ---\n\
         {}",
        diffs.concat()
    )
}

fn patch(name: &str, subject: &str, diffs: &[&str]) -> Patch {
    Patch::from_text(name, &patch_text(subject, diffs))
}

/// Two hunks on `src/a.c`: l03 -> L03 and l17 -> `new17`.
fn a_two_hunks(new17: &str) -> String {
    format!(
        "diff --git a/src/a.c b/src/a.c\n\
         --- a/src/a.c\n\
         +++ b/src/a.c\n\
         @@ -1,6 +1,6 @@\n l01\n l02\n-l03\n+L03\n l04\n l05\n l06\n\
         @@ -14,7 +14,7 @@\n l14\n l15\n l16\n-l17\n+{new17}\n l18\n l19\n l20\n"
    )
}

/// Like [`a_two_hunks`], but hunk 2 expects `x17` where the tree has `l17`.
const A_BROKEN_HUNK_2: &str = "diff --git a/src/a.c b/src/a.c\n\
    --- a/src/a.c\n\
    +++ b/src/a.c\n\
    @@ -1,6 +1,6 @@\n l01\n l02\n-l03\n+L03\n l04\n l05\n l06\n\
    @@ -14,7 +14,7 @@\n l14\n l15\n l16\n-x17\n+L17\n l18\n l19\n l20\n";

const B_CHANGE: &str = "diff --git a/src/b.c b/src/b.c\n\
    --- a/src/b.c\n\
    +++ b/src/b.c\n\
    @@ -1 +1 @@\n-int b;\n+int b = 1;\n";

const CREATE_NEW: &str = "diff --git a/src/new.c b/src/new.c\n\
    new file mode 100644\n\
    --- /dev/null\n\
    +++ b/src/new.c\n\
    @@ -0,0 +1,2 @@\n+int n;\n+int m;\n";

const DELETE_OLD: &str = "diff --git a/docs/old.txt b/docs/old.txt\n\
    deleted file mode 100644\n\
    --- a/docs/old.txt\n\
    +++ /dev/null\n\
    @@ -1,2 +0,0 @@\n-old one\n-old two\n";

fn read(overlay: &Overlay, rel: &str) -> Option<String> {
    overlay
        .read(rel)
        .unwrap()
        .map(|b| String::from_utf8(b).unwrap())
}

#[test]
fn good_series_applies_in_order() {
    let dir = tempfile::tempdir().unwrap();
    scratch_tree(dir.path());
    // The second patch's context is the first patch's result: order matters.
    let second = "diff --git a/src/a.c b/src/a.c\n--- a/src/a.c\n+++ b/src/a.c\n\
        @@ -2,3 +2,3 @@\n l02\n-L03\n+M03\n l04\n";
    let series = Series {
        patches: vec![
            patch("0001-a.patch", "a", &[&a_two_hunks("L17"), B_CHANGE]),
            patch("0002-m.patch", "m", &[second]),
        ],
    };
    let mut overlay = Overlay::new(dir.path());
    series.apply(&mut overlay).unwrap();
    let a = read(&overlay, "src/a.c").unwrap();
    assert!(a.starts_with("l01\nl02\nM03\nl04\n"), "{a}");
    assert!(a.contains("\nl16\nL17\nl18\n"), "{a}");
    assert_eq!(read(&overlay, "src/b.c").as_deref(), Some("int b = 1;\n"));
    assert_eq!(
        overlay.changed_paths().collect::<Vec<_>>(),
        ["src/a.c", "src/b.c"]
    );
    // The base tree on disk is never written.
    assert_eq!(
        fs::read_to_string(dir.path().join("src/a.c")).unwrap(),
        twenty_lines()
    );

    // Reversed, the second patch no longer finds its context.
    let reversed = Series {
        patches: series.patches.iter().rev().cloned().collect(),
    };
    let err = reversed.apply(&mut Overlay::new(dir.path())).unwrap_err();
    assert!(err.to_string().contains("0002-m.patch"), "{err}");
}

#[test]
fn broken_patch_fails_with_its_name_file_and_hunk() {
    let dir = tempfile::tempdir().unwrap();
    scratch_tree(dir.path());
    let broken = patch("0002-broken.patch", "broken", &[A_BROKEN_HUNK_2]);
    let mut overlay = Overlay::new(dir.path());
    match broken.apply(&mut overlay) {
        Err(Error::HunkFailed {
            patch,
            file,
            hunk,
            old_start,
            old_len,
        }) => {
            assert_eq!(patch, "0002-broken.patch");
            assert_eq!(file, "src/a.c");
            assert_eq!(hunk, 2);
            assert_eq!((old_start, old_len), (14, 7));
        }
        other => panic!("expected HunkFailed, got {other:?}"),
    }
    let message = broken.apply(&mut overlay).unwrap_err().to_string();
    assert!(
        message.contains("0002-broken.patch")
            && message.contains("src/a.c")
            && message.contains("hunk #2"),
        "{message}"
    );
    // Hunk 1 applied in memory, but nothing of the failed patch is kept.
    assert_eq!(overlay.changed_paths().count(), 0);
    assert!(matches!(
        broken.status(&overlay),
        Status::Conflicts(Error::HunkFailed { hunk: 2, .. })
    ));
}

#[test]
fn already_applied_patch_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    scratch_tree(dir.path());
    let p = patch("0001-a.patch", "a", &[&a_two_hunks("L17"), CREATE_NEW]);
    let mut overlay = Overlay::new(dir.path());
    assert!(matches!(p.status(&overlay), Status::Applies));
    p.apply(&mut overlay).unwrap();
    assert!(matches!(p.status(&overlay), Status::AlreadyApplied));

    // Upstream took the change: the pristine tree on disk already has it.
    let taken = tempfile::tempdir().unwrap();
    overlay.sync_to(taken.path()).unwrap();
    assert!(matches!(
        p.status(&Overlay::new(taken.path())),
        Status::AlreadyApplied
    ));

    // A tree that has neither the old nor the new text conflicts.
    fs::write(
        dir.path().join("src/a.c"),
        twenty_lines().replace("l17", "z17"),
    )
    .unwrap();
    assert!(matches!(
        p.status(&Overlay::new(dir.path())),
        Status::Conflicts(_)
    ));
}

#[test]
fn creates_and_deletes_files() {
    let dir = tempfile::tempdir().unwrap();
    scratch_tree(dir.path());
    let p = patch("0001-files.patch", "files", &[CREATE_NEW, DELETE_OLD]);
    let mut overlay = Overlay::new(dir.path());
    p.apply(&mut overlay).unwrap();
    assert_eq!(
        read(&overlay, "src/new.c").as_deref(),
        Some("int n;\nint m;\n")
    );
    assert_eq!(read(&overlay, "docs/old.txt"), None);

    let out = tempfile::tempdir().unwrap();
    overlay.sync_to(out.path()).unwrap();
    assert_eq!(
        fs::read_to_string(out.path().join("src/new.c")).unwrap(),
        "int n;\nint m;\n"
    );
    assert!(!out.path().join("docs/old.txt").exists());
    assert_eq!(
        fs::read_to_string(out.path().join("src/a.c")).unwrap(),
        twenty_lines()
    );

    // Creating again: the file exists. Deleting a file with other contents: refused.
    let again = p.apply(&mut overlay).unwrap_err().to_string();
    assert!(
        again.contains("src/new.c") && again.contains("already exists"),
        "{again}"
    );
    fs::write(
        dir.path().join("docs/old.txt"),
        "old one\nold two\nlocal line\n",
    )
    .unwrap();
    let delete = patch("0002-del.patch", "del", &[DELETE_OLD]);
    let err = delete.apply(&mut Overlay::new(dir.path())).unwrap_err();
    assert!(
        matches!(&err, Error::FileMismatch { file, .. } if file == "docs/old.txt"),
        "{err}"
    );
}

#[test]
fn failure_in_second_file_leaves_overlay_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    scratch_tree(dir.path());
    let mut overlay = Overlay::new(dir.path());
    patch("0001-new.patch", "new", &[CREATE_NEW])
        .apply(&mut overlay)
        .unwrap();
    let two_files = patch("0002-two.patch", "two", &[B_CHANGE, A_BROKEN_HUNK_2]);
    let err = two_files.apply(&mut overlay).unwrap_err();
    assert!(
        matches!(&err, Error::HunkFailed { file, .. } if file == "src/a.c"),
        "{err}"
    );
    assert_eq!(
        read(&overlay, "src/b.c").as_deref(),
        Some("int b;\n"),
        "the first file's change must not stick"
    );
    assert_eq!(overlay.changed_paths().collect::<Vec<_>>(), ["src/new.c"]);
}

#[test]
fn check_reports_every_patch_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    scratch_tree(dir.path());
    let series = Series {
        patches: vec![
            patch("0001-a.patch", "a", &[&a_two_hunks("L17")]),
            patch("0002-a-again.patch", "a again", &[&a_two_hunks("L17")]),
            patch(
                "0003-broken.patch",
                "broken",
                &[&a_two_hunks("Q17").replace("-l17", "-y17")],
            ),
            patch("0004-b.patch", "b", &[B_CHANGE]),
        ],
    };
    let mut overlay = Overlay::new(dir.path());
    let outcomes = series.check(&mut overlay);
    let names: Vec<_> = outcomes.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "0001-a.patch",
            "0002-a-again.patch",
            "0003-broken.patch",
            "0004-b.patch"
        ]
    );
    assert!(matches!(outcomes[0].status, Status::Applies));
    assert!(matches!(outcomes[1].status, Status::AlreadyApplied));
    assert!(
        matches!(&outcomes[2].status, Status::Conflicts(Error::HunkFailed { patch, .. }) if patch == "0003-broken.patch")
    );
    assert!(matches!(outcomes[3].status, Status::Applies));
    assert_eq!(read(&overlay, "src/b.c").as_deref(), Some("int b = 1;\n"));
    assert!(read(&overlay, "src/a.c").unwrap().contains("\nL17\n"));
}

#[test]
fn series_loads_in_listed_order_and_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    fs::write(
        p.join("0001-a.patch"),
        patch_text("a", &[&a_two_hunks("L17")]),
    )
    .unwrap();
    fs::write(p.join("0002-b.patch"), patch_text("b", &[B_CHANGE])).unwrap();
    fs::write(
        p.join("0003-unlisted.patch"),
        patch_text("c", &[CREATE_NEW]),
    )
    .unwrap();
    fs::write(
        p.join("series"),
        "# comment\n\n0002-b.patch\n  0001-a.patch  \n",
    )
    .unwrap();
    let series = Series::load(p).unwrap();
    let names: Vec<_> = series.patches.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, ["0002-b.patch", "0001-a.patch"]);
    let hash = series.short_hash().unwrap();
    assert_eq!(hash.len(), 12);
    assert_eq!(Series::default().short_hash(), None);

    fs::write(
        p.join("0001-a.patch"),
        patch_text("a changed", &[&a_two_hunks("L17")]),
    )
    .unwrap();
    assert_ne!(Series::load(p).unwrap().short_hash().unwrap(), hash);
    assert_eq!(
        series.list_text(&["# c"]),
        "# c\n0002-b.patch\n0001-a.patch\n"
    );

    fs::write(p.join("series"), "0009-missing.patch\n").unwrap();
    let err = Series::load(p).unwrap_err().to_string();
    assert!(err.contains("0009-missing.patch"), "{err}");
}

#[test]
fn header_gives_author_subject_and_message() {
    let p = patch("0001-a.patch", "qwen3next: do a thing", &[B_CHANGE]);
    assert_eq!(p.subject(), "qwen3next: do a thing");
    let h = p.header().unwrap();
    assert_eq!(
        (h.author_name.as_str(), h.author_email.as_str()),
        ("Test Author", "test@example.invalid")
    );
    assert_eq!(h.date.as_deref(), Some("Mon, 1 Jan 2024 00:00:00 +0000"));
    assert_eq!(
        h.message(),
        "qwen3next: do a thing\n\nWhy the change is needed.\n\nUpstream status: test fixture.\n"
    );
    let bad = Patch::from_text("0002-bad.patch", "Subject: no author\n\n---\n");
    let err = bad.header().unwrap_err().to_string();
    assert!(
        err.contains("0002-bad.patch") && err.contains("From"),
        "{err}"
    );
}
