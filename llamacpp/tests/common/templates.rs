//! Real models' chat templates, fetched at test time (never committed): the `.jinja` files that
//! llama.cpp keeps for its own template tests, from the llama-cpp-python source release that
//! vendors them, checked against a known SHA-256.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

const PACKAGE: &str = "llama-cpp-python==0.3.36";
const ARCHIVE: &str = "llama_cpp_python-0.3.36.tar.gz";
const SHA256: &str = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e";

static LOCK: Mutex<()> = Mutex::new(());

/// The text of the template file `name` (such as `Qwen-Qwen3-0.6B.jinja`).
///
/// # Panics
/// When the archive cannot be downloaded, has the wrong checksum, or lacks `name`: a test
/// that needs a real template fails rather than skips.
pub fn template(name: &str) -> String {
    let path = templates_dir().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("template {name} not in the fetched archive ({path:?}): {e}"))
}

/// The directory of extracted templates, fetching and extracting the archive the first time.
pub fn templates_dir() -> PathBuf {
    let dir = llamacpp_synth::cache_dir().join("templates");
    let done = dir.join("extracted");
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if done.is_dir() {
        return done;
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {dir:?}: {e}"));
    let archive = dir.join(ARCHIVE);
    if !archive.is_file() || sha256(&archive) != SHA256 {
        download(&dir);
    }
    let got = sha256(&archive);
    assert_eq!(
        got, SHA256,
        "{archive:?} has SHA-256 {got}, expected {SHA256}: refusing to use its templates"
    );
    // Extract into a private directory, then rename into place: other test processes never
    // see a half-extracted tree.
    let tmp = dir.join(format!(".extract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("create {tmp:?}: {e}"));
    let status = tool("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&tmp)
        .arg("--wildcards")
        .arg("*/vendor/llama.cpp/models/templates/*.jinja")
        .status()
        .unwrap_or_else(|e| panic!("cannot run tar: {e}"));
    assert!(
        status.success(),
        "tar failed to extract templates from {archive:?}"
    );
    let inner = tmp
        .join(ARCHIVE.trim_end_matches(".tar.gz"))
        .join("vendor/llama.cpp/models/templates");
    assert!(inner.is_dir(), "no templates directory in {archive:?}");
    if std::fs::rename(&inner, &done).is_err() && !done.is_dir() {
        panic!("cannot move {inner:?} to {done:?}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
    done
}

/// A command for an outside tool. Under `.ci/sanitize` and `.ci/tsan` the test binaries run
/// with the sanitizer runtime in `LD_PRELOAD`; a tool that inherited it would run under
/// LeakSanitizer too and abort at exit over its own leaks (tar did: exit 134, no templates).
fn tool(name: &str) -> Command {
    let mut command = Command::new(name);
    command.env_remove("LD_PRELOAD");
    command
}

fn download(dir: &Path) {
    let out = tool("pip")
        .args([
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            PACKAGE,
            "-d",
        ])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run pip to fetch {PACKAGE}: {e}"));
    assert!(
        out.status.success(),
        "pip download {PACKAGE} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
