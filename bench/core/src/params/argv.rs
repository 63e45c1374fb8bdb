//! Rewriting upstream's single-dash long flags into a form clap parses.
//!
//! clap only knows one-letter short flags, so `-ngl 99` would be read as `-n`
//! with the value `gl`. Upstream spells many flags that way (`-ngl`, `-ub`,
//! `-ctk`, `-fa`, `-oe`, ...). Rather than hand-parse everything, the flags are
//! declared with hidden long aliases (`--ngl`) and this pass adds the second
//! dash to any token in flag position whose name is a long flag or alias of
//! the command being parsed. Tokens in value position (after a flag that takes
//! a value), after `--`, and single-letter flags are left alone, so `-n 128`,
//! `-p512` and `-ngl -1` keep their meaning. An unknown single-dash word
//! (`-nglx`) also gets the second dash, so clap reports it as an unknown flag
//! rather than reading it as `-n glx`.
//!
//! Like upstream, `_` in a `--long_flag` is read as `-` (`--n_prompt`).

use std::ffi::OsString;

use clap::{Arg, Command};

/// Rewrites `args` (without the program name, or with it when `cmd` expects a
/// binary name) for `cmd`: single-dash long flags get a second dash, and
/// underscores in `--long_flags` become dashes. Subcommand names switch to the
/// subcommand's flags, so one pass handles `llama-bench compare -ngl 99`.
pub fn normalize_args<I, T>(cmd: &Command, args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut built = cmd.clone();
    built.build();
    let mut current: &Command = &built;
    let mut out = Vec::new();
    let mut expect_value = false;
    let mut raw = false;
    for arg in args {
        let arg: OsString = arg.into();
        if raw || expect_value {
            expect_value = false;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            raw = true;
            out.push(arg);
        } else if let Some(long) = text.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n.replace('_', "-"), Some(v)),
                None => (long.replace('_', "-"), None),
            };
            expect_value = value.is_none() && find_long(current, &name).is_some_and(takes_value);
            out.push(match value {
                Some(v) => format!("--{name}={v}").into(),
                None => format!("--{name}").into(),
            });
        } else if let Some(short) = text.strip_prefix('-').filter(|s| !s.is_empty()) {
            if short.chars().count() > 1 {
                if let Some(a) = find_long(current, short) {
                    expect_value = takes_value(a);
                    out.push(format!("--{short}").into());
                } else if short.chars().all(|c| c.is_ascii_alphabetic() || c == '-') {
                    // An unknown word like `-nglx`: as `--nglx`, clap reports it
                    // as unknown (with a suggestion) instead of reading `-n glx`.
                    out.push(format!("--{short}").into());
                } else {
                    // `-p512`, `-1`: clap decides.
                    out.push(arg);
                }
            } else {
                let c = short.chars().next();
                expect_value = current
                    .get_arguments()
                    .find(|a| a.get_short() == c)
                    .is_some_and(takes_value);
                out.push(arg);
            }
        } else {
            if let Some(sub) = current.find_subcommand(text) {
                current = sub;
            }
            out.push(arg);
        }
    }
    out
}

/// The argument whose long name or one of whose aliases is `name`.
fn find_long<'a>(cmd: &'a Command, name: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(name)
            || a.get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&name))
    })
}

/// Whether the argument consumes the next token as its value.
fn takes_value(a: &Arg) -> bool {
    a.get_action().takes_values()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        Command::new("t")
            .no_binary_name(true)
            .arg(Arg::new("n").short('n').long("n-gen").num_args(1))
            .arg(
                Arg::new("ngl")
                    .long("n-gpu-layers")
                    .alias("ngl")
                    .num_args(1),
            )
            .arg(Arg::new("v").short('v').action(clap::ArgAction::SetTrue))
            .subcommand(Command::new("compare").arg(Arg::new("fa").long("flash-attn").alias("fa")))
    }

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(&cmd(), args.iter().copied())
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn adds_the_second_dash() {
        assert_eq!(norm(&["-ngl", "99"]), ["--ngl", "99"]);
        assert_eq!(norm(&["-n", "128", "-v"]), ["-n", "128", "-v"]);
        assert_eq!(norm(&["-n128"]), ["-n128"]);
        assert_eq!(norm(&["-nglx", "1"]), ["--nglx", "1"]);
    }

    #[test]
    fn leaves_values_alone() {
        assert_eq!(norm(&["-n", "-ngl"]), ["-n", "-ngl"]);
        assert_eq!(norm(&["-ngl", "-1"]), ["--ngl", "-1"]);
        assert_eq!(norm(&["--", "-ngl"]), ["--", "-ngl"]);
    }

    #[test]
    fn underscores_and_subcommands() {
        assert_eq!(norm(&["--n_gen", "4"]), ["--n-gen", "4"]);
        assert_eq!(norm(&["--n_gen=4"]), ["--n-gen=4"]);
        assert_eq!(norm(&["compare", "-fa", "1"]), ["compare", "--fa", "1"]);
    }
}
