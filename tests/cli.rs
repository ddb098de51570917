//! The examples and benchmark runners answer `--help` with their usage on
//! stdout and exit 0, and a bad argument with one line on stderr and exit 2
//! (never a panic and its backtrace).
//!
//! A plain `cargo test` builds the examples beside the test binaries
//! (`target/<profile>/examples/`) and this test checks every one of them.
//! A run that selects targets (`--test cli`, `cargo llvm-cov --tests`)
//! builds no example: those not found are skipped, with a note on stderr
//! (as is an example whose required feature is off).

use std::path::PathBuf;
use std::process::Command;

/// Every example, with the features it requires.
const EXAMPLES: &[(&str, Option<&str>)] = &[
    ("async_select", Some("async")),
    ("basic_usage", None),
    ("demo", None),
    ("growth", None),
    ("icount", None),
    ("latency", None),
    ("multiple_consumers", None),
    ("profile_push", None),
    ("scaling", None),
    ("soak", None),
    ("stress_test", None),
];

/// Whether the feature `f` is enabled in this build.
fn enabled(f: &str) -> bool {
    f == "async" && cfg!(feature = "async")
}

/// The built example `name`, if it was built.
fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/cli-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The examples built for this run.
fn built() -> Vec<(&'static str, PathBuf)> {
    EXAMPLES
        .iter()
        .filter(|(_, feature)| feature.is_none_or(enabled))
        .map(|&(name, _)| (name, example(name)))
        .filter(|(name, path)| {
            let found = path.exists();
            if !found {
                eprintln!("{name}: not built in this run ({path:?}), skipped");
            }
            found
        })
        .collect()
}

#[test]
fn help_prints_the_usage_and_exits_0() {
    for (name, path) in built() {
        for flag in ["--help", "-h"] {
            let out = Command::new(&path).arg(flag).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{name} {flag}: {out:?}");
            assert!(
                stdout.starts_with(&format!("usage: {name}")),
                "{name} {flag}: {stdout:?}"
            );
        }
    }
}

#[test]
fn a_bad_argument_is_one_line_and_exit_2() {
    for (name, path) in built() {
        let out = Command::new(&path).arg("--no-such-flag").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr:?}");
        assert!(
            stderr.starts_with(&format!("{name}: ")),
            "{name}: {stderr:?}"
        );
        assert!(out.stdout.is_empty(), "{name} ran: {out:?}");
    }
}

#[test]
fn a_bad_value_is_one_line_and_exit_2() {
    for (name, args) in [
        ("latency", &["--rate", "fast"][..]),
        ("latency", &["--secs"][..]),
        ("scaling", &["--pairs", "4"][..]),
        ("scaling", &["--pairs", "0x1"][..]),
        ("growth", &["--modes", "nope"][..]),
        ("soak", &["5q"][..]),
        ("stress_test", &["--secs", "0"][..]),
        ("profile_push", &["many"][..]),
        ("icount", &[][..]),
    ] {
        let path = example(name);
        if !path.exists() {
            eprintln!("{name}: not built in this run, skipped");
            continue;
        }
        let out = Command::new(path).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {out:?}");
        assert_eq!(stderr.lines().count(), 1, "{name} {args:?}: {stderr:?}");
    }
}
