//! Command-line handling shared by the examples and the benchmark runners
//! (`mod cli;` in each): `-h` / `--help` anywhere prints the usage and exits
//! 0; a bad argument prints one line on stderr and exits 2. (A directory
//! without a `main.rs`, so cargo does not take it for an example.)
#![allow(dead_code)] // each program uses a different subset

use std::str::FromStr;

/// The arguments of one program, after its name.
pub struct Args {
    /// The program's name, for error lines.
    name: &'static str,
    /// The arguments not taken yet.
    rest: std::vec::IntoIter<String>,
}

impl Args {
    /// The process's arguments. With `-h` or `--help` among them, prints
    /// `usage` and exits 0.
    pub fn new(name: &'static str, usage: &str) -> Self {
        let all: Vec<String> = std::env::args().skip(1).collect();
        if all.iter().any(|a| a == "-h" || a == "--help") {
            println!("{}", usage.trim_end());
            std::process::exit(0);
        }
        Self {
            name,
            rest: all.into_iter(),
        }
    }

    /// A program that takes no argument: `--help` prints `usage`, anything
    /// else is an error.
    pub fn none(name: &'static str, usage: &str) {
        let mut args = Self::new(name, usage);
        if let Some(a) = args.next() {
            args.fail(format!("unexpected argument {a:?}"));
        }
    }

    /// The next argument.
    pub fn next(&mut self) -> Option<String> {
        self.rest.next()
    }

    /// The value after `flag`, as a string.
    pub fn value(&mut self, flag: &str) -> String {
        self.next()
            .unwrap_or_else(|| self.fail(format!("{flag} needs a value")))
    }

    /// The value after `flag`, parsed (`_` allowed in numbers: `1_000_000`).
    pub fn parsed<T: FromStr>(&mut self, flag: &str) -> T {
        let v = self.value(flag);
        self.parse(flag, &v)
    }

    /// `v`, the value of `flag`, parsed (`_` removed first).
    pub fn parse<T: FromStr>(&self, flag: &str, v: &str) -> T {
        v.replace('_', "")
            .parse()
            .unwrap_or_else(|_| self.fail(format!("{flag}: bad value {v:?}")))
    }

    /// The comma-separated list after `flag`, parsed.
    pub fn listed<T: FromStr>(&mut self, flag: &str) -> Vec<T> {
        let v = self.value(flag);
        self.list(flag, &v)
    }

    /// A comma-separated list of values of `flag`.
    pub fn list<T: FromStr>(&self, flag: &str, v: &str) -> Vec<T> {
        v.split(',').map(|s| self.parse(flag, s)).collect()
    }

    /// Prints `msg` as one line and exits 2.
    pub fn fail(&self, msg: impl std::fmt::Display) -> ! {
        fail(self.name, msg)
    }
}

/// Prints `name: msg (--help for usage)` on stderr and exits 2.
pub fn fail(name: &str, msg: impl std::fmt::Display) -> ! {
    eprintln!("{name}: {msg} (--help for usage)");
    std::process::exit(2)
}
