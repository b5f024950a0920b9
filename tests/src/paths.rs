//! Where the build put the binaries under test.
//!
//! The tests run the daemon and load plugins exactly as cargo built them for
//! the current profile, so paths are derived from the test executable itself
//! rather than from a hard-coded `target/debug`: `cargo test --release` then
//! exercises the release build without any extra configuration.

use std::path::{Path, PathBuf};

/// `target/<profile>`, the directory holding the daemon binary and the plugin
/// cdylibs of the profile the tests were built with.
///
/// Test executables live in `target/<profile>/deps/`, so this is the parent of
/// the executable's directory.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe
        .parent()
        .expect("the test executable lives in a directory");
    // `cargo test` puts test executables in `deps/`; an example or a binary
    // built from this crate would sit directly in `target/<profile>/`.
    if deps.file_name().is_some_and(|name| name == "deps") {
        deps.parent()
            .expect("deps/ has a parent: target/<profile>")
            .to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// The `tributary` daemon binary of the current profile.
///
/// Cargo does not build another package's binaries for this crate's tests
/// (the daemon is deliberately not a dependency, so the harness compiles even
/// while the daemon does not), hence the explicit hint.
///
/// # Panics
/// If the binary does not exist.
pub fn daemon_bin() -> PathBuf {
    let bin = target_dir().join("tributary");
    assert!(
        bin.is_file(),
        "{} does not exist; build it first: cargo build --workspace",
        bin.display()
    );
    bin
}

/// The cdylib `lib<name>.so` of the current profile, e.g.
/// `plugin_lib("tributary_datagen")` or `plugin_lib("tributary_fixture_faulty")`
/// (the name is the crate name with `-` replaced by `_`).
///
/// Does not check that the file exists: tests of the "missing plugin" kind
/// want a path that is absent.
pub fn plugin_lib(name: &str) -> PathBuf {
    target_dir().join(format!("lib{name}.so"))
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository root")
        .to_path_buf()
}

/// Compiles the C file `source` into `dir/libtributary_<name>.so` against
/// the SDK's header only, with warnings as errors, as a plugin author would
/// (`$CC`, else `cc`).
///
/// # Panics
/// If the compiler fails; its output is in the message.
pub fn build_c_plugin(source: &Path, dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the plugin directory");
    let out = dir.join(format!("libtributary_{name}.so"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let result = std::process::Command::new(&cc)
        .args([
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-O2",
        ])
        .arg("-I")
        .arg(repo_root().join("plugins/sdk/include"))
        .arg("-o")
        .arg(&out)
        .arg(source)
        .output()
        .unwrap_or_else(|e| panic!("run {cc}: {e}"));
    assert!(
        result.status.success(),
        "{cc} failed on {}:\n{}{}",
        source.display(),
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    out
}
