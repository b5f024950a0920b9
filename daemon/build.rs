//! Records the git revision the daemon is built from, for `--version`.

use std::path::Path;
use std::process::Command;

fn main() {
    let revision = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=TRIBUTARY_GIT_REVISION={revision}");
    // Build again when the checked-out commit changes; outside a git
    // checkout (a source tarball) only when this script does.
    let watched: Vec<&str> = ["../.git/HEAD", "../.git/refs/heads"]
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .collect();
    if watched.is_empty() {
        println!("cargo:rerun-if-changed=build.rs");
    }
    for path in watched {
        println!("cargo:rerun-if-changed={path}");
    }
}
