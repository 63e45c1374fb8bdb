//! Running git in a tree the tool made or reads.
//!
//! The user's global and system configuration is ignored, so commits and
//! `format-patch` output do not depend on who runs the tool (no signing, hooks,
//! diff prefixes or extra headers from someone's `~/.gitconfig`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use llamacpp_patchkit::mail::Header;
use llamacpp_patchkit::{Error, Result};

/// Who a commit is by, and when.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// A date git accepts (`GIT_AUTHOR_DATE`); `None` means now.
    pub date: Option<String>,
}

impl Identity {
    /// The identity of the base commit: fixed, so the same pin gives the same commit.
    pub fn tool() -> Self {
        Self {
            name: "llama-rs patches".into(),
            email: "patches@llama-rs.invalid".into(),
            date: Some("@946684800 +0000".into()),
        }
    }

    /// The author of a patch, as its header states.
    pub fn author(header: &Header) -> Self {
        Self {
            name: header.author_name.clone(),
            email: header.author_email.clone(),
            date: header.date.clone(),
        }
    }
}

/// A git work tree.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
}

impl Git {
    /// Git operating on `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn command<I, S>(&self, args: I) -> (Command, String)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(&self.dir);
        let args: Vec<_> = args
            .into_iter()
            .map(|a| a.as_ref().to_os_string())
            .collect();
        cmd.args(&args);
        let shown = format!(
            "git -C {} {}",
            self.dir.display(),
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1");
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_CEILING_DIRECTORIES",
        ] {
            cmd.env_remove(var);
        }
        (cmd, shown)
    }

    fn finish(shown: String, output: std::io::Result<Output>) -> Result<String> {
        match output {
            Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let tail: Vec<_> = err.lines().rev().take(6).collect();
                let tail: Vec<_> = tail.into_iter().rev().collect();
                Err(Error::Command {
                    command: shown,
                    message: format!("{}: {}", o.status, tail.join("\n")),
                })
            }
            Err(e) => Err(Error::Command {
                command: shown,
                message: format!("cannot run git: {e}"),
            }),
        }
    }

    /// Runs git with `args`; returns its standard output.
    pub fn run<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (mut cmd, shown) = self.command(args);
        Self::finish(shown, cmd.output())
    }

    /// Whether `git rev-parse --verify` resolves `rev` to a commit.
    pub fn has_commit(&self, rev: &str) -> bool {
        self.run(["rev-parse", "-q", "--verify", &format!("{rev}^{{commit}}")])
            .is_ok()
    }

    /// Stages every file (ignored ones too: the tree is what it is) and commits
    /// it as `who`, who is also the committer, with `message` exactly.
    pub fn commit_all(&self, who: &Identity, message: &str) -> Result<()> {
        self.run(["add", "-A", "-f", "."])?;
        let (mut cmd, shown) = self.command([
            "commit",
            "-q",
            "--allow-empty",
            "--no-verify",
            "--cleanup=verbatim",
            "-m",
            message,
        ]);
        for role in ["AUTHOR", "COMMITTER"] {
            cmd.env(format!("GIT_{role}_NAME"), &who.name)
                .env(format!("GIT_{role}_EMAIL"), &who.email);
            match &who.date {
                Some(date) => cmd.env(format!("GIT_{role}_DATE"), date),
                None => cmd.env_remove(format!("GIT_{role}_DATE")),
            };
        }
        Self::finish(shown, cmd.output()).map(drop)
    }
}
