//! End-to-end tests of the `patches` binary on a tiny fake pinned tree.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use llamacpp_patchkit::tree;

/// `l01` .. `l20`, one per line.
fn twenty_lines() -> String {
    (1..=20).map(|i| format!("l{i:02}\n")).collect()
}

/// A format-patch style file changing `l03` -> `L03` and `old17` -> `new17` in
/// `src/a.c` (the tree has `l17`).
fn a_patch(subject: &str, old17: &str, new17: &str) -> String {
    format!(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n\
         From: Test Author <test@example.invalid>\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\n\
         Subject: [PATCH] {subject}\n\
         \n\
         Why: a test.\n\
         ---\n\
         diff --git a/src/a.c b/src/a.c\n\
         --- a/src/a.c\n\
         +++ b/src/a.c\n\
         @@ -1,6 +1,6 @@\n l01\n l02\n-l03\n+L03\n l04\n l05\n l06\n\
         @@ -14,7 +14,7 @@\n l14\n l15\n l16\n-{old17}\n+{new17}\n l18\n l19\n l20\n"
    )
}

/// A scratch workspace: a pin file, a source cache holding the pinned fake tree,
/// and `patches/`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// The pristine tree holds `src/a.c` with `a_c`, and the pin matches it.
    fn new(a_c: &str, patches: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Self { dir };
        let staging = fixture.dir.path().join("staging");
        fs::create_dir_all(staging.join("src")).unwrap();
        fs::write(staging.join("src/a.c"), a_c).unwrap();
        fs::write(staging.join("CMakeLists.txt"), "project(fake C)\n").unwrap();
        let hash = tree::tree_hash(&tree::manifest(&staging).unwrap());
        let pin = format!(
            "package = fake-sys\nversion = 1.2.3\ncrate-sha256 = 00\nsubdir = llama.cpp\ntree-sha256 = {hash}\nupstream-id = fake-1.2.3\n"
        );
        fs::write(fixture.pin(), pin).unwrap();
        // The cache entry the tool derives from the pin: package-version-hash prefix.
        let entry = fixture
            .source_cache()
            .join(format!("fake-sys-1.2.3-{}", &hash[..16]));
        fs::create_dir_all(&entry).unwrap();
        fs::rename(&staging, entry.join("llama.cpp")).unwrap();
        fs::create_dir_all(fixture.patches()).unwrap();
        let mut series = String::from("# test series\n");
        for (name, text) in patches {
            fs::write(fixture.patches().join(name), text).unwrap();
            series.push_str(name);
            series.push('\n');
        }
        fs::write(fixture.patches().join("series"), series).unwrap();
        fixture
    }

    fn pin(&self) -> PathBuf {
        self.dir.path().join("UPSTREAM")
    }

    fn source_cache(&self) -> PathBuf {
        self.dir.path().join("sources")
    }

    /// The pristine tree inside the source cache.
    fn pristine(&self) -> PathBuf {
        let entry = fs::read_dir(self.source_cache())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        entry.path().join("llama.cpp")
    }

    fn patches(&self) -> PathBuf {
        self.dir.path().join("patches")
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `patches --pin ... --source-cache ... --patches ... ARGS`.
    fn run(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_patches"))
            .arg("--pin")
            .arg(self.pin())
            .arg("--source-cache")
            .arg(self.source_cache())
            .arg("--patches")
            .arg(self.patches())
            .args(args)
            .env_remove("LLAMACPP_SYS_SOURCE_CACHE")
            .output()
            .unwrap();
        Run::from(output)
    }
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ok={}\n--- stdout\n{}--- stderr\n{}",
            self.ok, self.stdout, self.stderr
        )
    }
}

/// The result column of `name`'s row in a `check`/`refresh` table.
fn verdict<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(name))
        .map_or("(no row)", str::trim_start)
}

fn good() -> Fixture {
    Fixture::new(
        &twenty_lines(),
        &[("0001-good.patch", a_patch("good change", "l17", "L17"))],
    )
}

fn git_available() -> bool {
    Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Dev Eloper",
            "-c",
            "user.email=dev@example.invalid",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_accepts_a_good_series() {
    let r = good().run(&["check"]);
    assert!(r.ok, "{r:?}");
    assert!(r.stdout.contains("fake-sys 1.2.3 (tree verified)"), "{r:?}");
    assert_eq!(verdict(&r.stdout, "0001-good.patch"), "applies", "{r:?}");
    assert!(
        r.stdout
            .contains("1 patch: 1 applies, 0 already upstream, 0 conflicting"),
        "{r:?}"
    );
}

#[test]
fn check_names_the_conflicting_patch_file_and_hunk() {
    let f = Fixture::new(
        &twenty_lines(),
        &[
            ("0001-good.patch", a_patch("good", "l17", "L17")),
            ("0002-broken.patch", a_patch("broken", "x17", "Q17")),
        ],
    );
    let r = f.run(&["check"]);
    assert!(!r.ok, "{r:?}");
    assert_eq!(verdict(&r.stdout, "0001-good.patch"), "applies", "{r:?}");
    // 0002 meets the tree 0001 left, where hunk 1 no longer matches either.
    assert!(
        verdict(&r.stdout, "0002-broken.patch")
            .starts_with("CONFLICT: patch 0002-broken.patch does not apply: src/a.c: hunk #"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(
            "error: the series does not apply cleanly: 1 conflicting, 0 already upstream"
        ),
        "{r:?}"
    );

    let alone = Fixture::new(
        &twenty_lines(),
        &[("0001-broken.patch", a_patch("broken", "x17", "Q17"))],
    );
    let r = alone.run(&["check"]);
    assert!(!r.ok, "{r:?}");
    assert!(
        r.stdout.contains(
            "CONFLICT: patch 0001-broken.patch does not apply: src/a.c: hunk #2 (old lines 14..+7)"
        ),
        "{r:?}"
    );
}

#[test]
fn check_flags_a_patch_upstream_already_has() {
    let patched = twenty_lines().replace("l03", "L03").replace("l17", "L17");
    let r = Fixture::new(
        &patched,
        &[("0001-good.patch", a_patch("good", "l17", "L17"))],
    )
    .run(&["check"]);
    assert!(!r.ok, "{r:?}");
    assert_eq!(
        verdict(&r.stdout, "0001-good.patch"),
        "ALREADY UPSTREAM (reverse-applies: drop it)",
        "{r:?}"
    );
    assert!(
        r.stderr.contains("0 conflicting, 1 already upstream"),
        "{r:?}"
    );
}

#[test]
fn check_refuses_a_modified_pristine_tree() {
    let f = good();
    fs::write(f.pristine().join("src/a.c"), "edited\n").unwrap();
    let r = f.run(&["check"]);
    assert!(!r.ok, "{r:?}");
    assert!(r.stderr.contains("does not match the pin"), "{r:?}");
}

#[test]
fn tree_writes_the_patched_or_pristine_tree() {
    let f = good();
    let patched = f.out("patched");
    let r = f.run(&["tree", patched.to_str().unwrap()]);
    assert!(r.ok, "{r:?}");
    let a = fs::read_to_string(patched.join("src/a.c")).unwrap();
    assert_eq!(
        a,
        twenty_lines().replace("l03", "L03").replace("l17", "L17")
    );
    assert_eq!(
        fs::read_to_string(patched.join("CMakeLists.txt")).unwrap(),
        "project(fake C)\n"
    );

    let pristine = f.out("pristine");
    assert!(
        f.run(&["tree", "--upstream", pristine.to_str().unwrap()])
            .ok
    );
    let hash = f.run(&["hash", pristine.to_str().unwrap()]);
    let pin = fs::read_to_string(f.pin()).unwrap();
    assert!(
        hash.ok && pin.contains(&format!("tree-sha256 = {}", hash.stdout.trim())),
        "{hash:?}\n{pin}"
    );

    // A non-empty directory is left alone unless --force, which makes it match exactly.
    fs::write(patched.join("stray.txt"), "mine").unwrap();
    let r = f.run(&["tree", "--upstream", patched.to_str().unwrap()]);
    assert!(!r.ok && r.stderr.contains("is not empty"), "{r:?}");
    assert!(patched.join("stray.txt").exists());
    assert!(
        f.run(&["tree", "--upstream", "--force", patched.to_str().unwrap()])
            .ok
    );
    assert!(!patched.join("stray.txt").exists());
    assert_eq!(
        fs::read_to_string(patched.join("src/a.c")).unwrap(),
        twenty_lines()
    );
}

#[test]
fn tree_git_then_refresh_round_trips() {
    if !git_available() {
        eprintln!("git not found; skipping");
        return;
    }
    let f = good();
    let work = f.out("work");
    let w = work.to_str().unwrap();
    let r = f.run(&["tree", "--git", w]);
    assert!(r.ok, "{r:?}");
    assert_eq!(
        git(&work, &["log", "--format=%an <%ae> %ad %s", "--date=iso"]),
        "Test Author <test@example.invalid> 2024-01-01 00:00:00 +0000 good change\n\
         llama-rs patches <patches@llama-rs.invalid> 2000-01-01 00:00:00 +0000 fake-sys 1.2.3: pristine upstream tree\n"
    );
    assert_eq!(
        git(&work, &["log", "-1", "--format=%B"]),
        "good change\n\nWhy: a test.\n\n"
    );
    assert_eq!(
        git(&work, &["rev-list", "-n1", "upstream-base"]),
        git(&work, &["rev-parse", "HEAD~1"])
    );

    // Refreshing rewrites the hand-made patch in git's format, under the same name.
    let r = f.run(&["refresh", w]);
    assert!(r.ok, "{r:?}");
    assert!(r.stdout.contains("updated    0001-good.patch"), "{r:?}");
    let refreshed = fs::read_to_string(f.patches().join("0001-good.patch")).unwrap();
    assert!(
        refreshed.starts_with("From 0000000000000000000000000000000000000000 "),
        "{refreshed}"
    );
    assert!(
        refreshed.contains("Subject: [PATCH] good change\n") && refreshed.contains("\nindex "),
        "{refreshed}"
    );

    // A second round trip changes nothing.
    let again = f.out("again");
    assert!(f.run(&["tree", "--git", again.to_str().unwrap()]).ok);
    let r = f.run(&["refresh", again.to_str().unwrap()]);
    assert!(
        r.ok && r.stdout.contains("unchanged  0001-good.patch")
            && r.stdout.contains("unchanged  series"),
        "{r:?}"
    );

    // A new commit becomes a new patch; the existing name is kept.
    fs::write(again.join("src/new.c"), "int added;\n").unwrap();
    git(&again, &["add", "src/new.c"]);
    git(&again, &["commit", "-q", "-m", "add new.c\n\nBecause."]);
    let r = f.run(&["refresh", again.to_str().unwrap()]);
    assert!(r.ok, "{r:?}");
    let series = fs::read_to_string(f.patches().join("series")).unwrap();
    assert_eq!(
        series,
        "# test series\n0001-good.patch\n0002-add-new.c.patch\n"
    );
    let out = f.out("out");
    assert!(f.run(&["check"]).ok);
    assert!(f.run(&["tree", out.to_str().unwrap()]).ok);
    assert_eq!(
        fs::read_to_string(out.join("src/new.c")).unwrap(),
        "int added;\n"
    );
}

#[test]
fn refresh_refuses_a_tree_without_the_base_tag() {
    if !git_available() {
        eprintln!("git not found; skipping");
        return;
    }
    let f = good();
    let plain = f.out("plain");
    fs::create_dir_all(&plain).unwrap();
    git(&plain, &["init", "-q"]);
    let before = fs::read_to_string(f.patches().join("0001-good.patch")).unwrap();
    let r = f.run(&["refresh", plain.to_str().unwrap()]);
    assert!(
        !r.ok && r.stderr.contains("no `upstream-base` tag"),
        "{r:?}"
    );
    assert_eq!(
        fs::read_to_string(f.patches().join("0001-good.patch")).unwrap(),
        before
    );
}
