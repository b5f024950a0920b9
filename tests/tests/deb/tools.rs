//! The host side: which tools exist, and what a missing one means.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Whether this is CI, where every prerequisite is provided.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Says why a test does not run; under `CI=true` that is a failure, since
/// CI provides root, the tools and the mirror and a silent skip would hide
/// a broken CI image.
pub fn skip(reason: &str) {
    assert!(!ci(), "CI=true, but {reason}");
    eprintln!("skipping: {reason}");
}

/// `name` on `PATH` or in the sbin directories (debootstrap lives in
/// `/usr/sbin`, which a non-login `PATH` may lack).
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether every tool is installed; skips (or fails under CI) naming the
/// missing ones.
pub fn have_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| tool(t).is_none())
        .collect();
    if !missing.is_empty() {
        skip(&format!(
            "{missing:?} not installed (apt-get install debootstrap lintian dpkg-dev binutils iproute2 systemd)"
        ));
    }
    missing.is_empty()
}

/// Runs `cmd` to completion; a command that cannot start fails the test.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}
