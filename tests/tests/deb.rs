//! The Debian package as an operator gets it: `scripts/deb/build` makes a
//! lintian-clean package with the documented layout, and in a throwaway
//! Debian root the package installs with the service enabled, validates and
//! starts with no sources, keeps a changed conffile across an upgrade, and
//! leaves nothing behind once purged.
//!
//! The throwaway root is a `debootstrap --variant=minbase` of the host's own
//! suite, unpacked into a test directory and entered with `chroot`; dpkg,
//! the maintainer scripts and the daemon run inside it, so the host's dpkg
//! database, `/etc` and systemd are never touched. Making the root needs the
//! Debian mirror once; the result is cached in
//! `~/.cache/tributary/debootstrap-<suite>-<arch>-<hash>.tar`.
//!
//! The tests package the binaries of the profile they were built with
//! (`target/debug` under `cargo test`), compressed with gzip rather than
//! xz to save a minute per build; the layout and the scripts are the same.

mod deb {
    pub mod chroot;
    pub mod service;
    pub mod tools;
}

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use deb::chroot::{Chroot, base_root_tarball, host_suite_and_mirror};
use deb::service::start_like_systemd;
use deb::tools::{have_tools, run, skip};
use tributary_tests::*;

/// The shipped plugins, as `lib<name>.so` in `/usr/lib/tributary/plugins`.
const PLUGINS: &[&str] = &[
    "tributary_datagen",
    "tributary_logfile",
    "tributary_sysmetrics",
    "tributary_tables",
];

/// Runs `scripts/deb/build` on this profile's binaries; returns the package.
fn build_package(out: &Path, version: Option<&str>) -> PathBuf {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/deb/build"))
        .arg("--bin-dir")
        .arg(target_dir())
        .arg("--out")
        .arg(out)
        .args(["--compression", "gzip"]);
    if let Some(version) = version {
        cmd.args(["--version", version]);
    }
    let started = Instant::now();
    let result = cmd.output().expect("run scripts/deb/build");
    assert!(
        result.status.success(),
        "scripts/deb/build failed:\n{}",
        output_text(&result)
    );
    eprintln!(
        "scripts/deb/build: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    let deb = PathBuf::from(stdout.lines().last().expect("the package path").trim());
    assert!(deb.is_file(), "no package at {}", deb.display());
    deb
}

/// The package at the workspace version, built once per test process into
/// `target/<profile>/deb` (overwritten by the next run).
fn package() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| build_package(&target_dir().join("deb"), None))
}

/// A control field of a package file.
fn field(deb: &Path, name: &str) -> String {
    let out = Command::new("dpkg-deb")
        .arg("--field")
        .arg(deb)
        .arg(name)
        .output()
        .expect("run dpkg-deb");
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Package names in a `Depends:` value, first alternative of each.
fn depends_names(depends: &str) -> Vec<String> {
    depends
        .split(',')
        .filter_map(|dep| dep.split('|').next())
        .filter_map(|dep| dep.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn package_is_lintian_clean_with_the_documented_layout() {
    if !have_tools(&["dpkg-deb", "dpkg-shlibdeps", "strip", "lintian"]) {
        return;
    }
    let deb = package();

    let listing = Command::new("dpkg-deb")
        .arg("--contents")
        .arg(deb)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    // `-rw-r--r-- root/root  1945 2026-01-01 00:00 ./etc/tributary/...`
    let entries: Vec<(&str, &str, &str)> = listing
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((
                cols.first()?.to_owned(),
                cols.get(1)?.to_owned(),
                cols.get(5)?.to_owned(),
            ))
        })
        .collect();
    let mode_of = |path: &str| {
        entries
            .iter()
            .find(|(_, _, p)| p.trim_start_matches('.') == path)
            .map(|(m, _, _)| *m)
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"))
    };
    assert!(
        entries.iter().all(|(_, owner, _)| *owner == "root/root"),
        "files not owned by root:\n{listing}"
    );
    assert_eq!(mode_of("/usr/bin/tributary"), "-rwxr-xr-x");
    for plugin in PLUGINS {
        assert_eq!(
            mode_of(&format!("/usr/lib/tributary/plugins/lib{plugin}.so")),
            "-rw-r--r--"
        );
    }
    for path in [
        "/lib/systemd/system/tributary.service",
        "/etc/tributary/tributary.toml",
        "/etc/tributary/conf.d/README",
        "/usr/share/doc/tributary/copyright",
        "/usr/share/doc/tributary/changelog.Debian.gz",
        "/usr/share/doc/tributary/README.md",
        "/usr/share/man/man1/tributary.1.gz",
    ] {
        assert_eq!(mode_of(path), "-rw-r--r--", "{path}");
    }
    // Every repository drop-in is shipped, and none under a name the daemon
    // reads: a fresh install runs no source.
    let dropins: Vec<String> = std::fs::read_dir(repo_root().join("config/conf.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    assert!(!dropins.is_empty());
    for name in &dropins {
        mode_of(&format!("/etc/tributary/conf.d/{name}.example"));
    }
    assert!(
        !entries.iter().any(|(_, _, p)| p.starts_with("./etc/")
            && p.ends_with(".toml")
            && p.contains("conf.d")),
        "a drop-in would be read on a fresh install:\n{listing}"
    );
    assert!(
        !entries.iter().any(|(_, _, p)| p.starts_with("./var/")),
        "state is systemd's to create (StateDirectory=):\n{listing}"
    );

    let depends = depends_names(&field(deb, "Depends"));
    for needed in ["libc6", "libssl3", "zlib1g", "procps"] {
        assert!(
            depends.iter().any(|d| d == needed),
            "Depends lacks {needed}: {depends:?}"
        );
    }

    let out = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--display-info", "--pedantic"])
        .arg(deb)
        .output()
        .unwrap();
    let text = output_text(&out);
    eprintln!("lintian:\n{text}");
    assert!(out.status.success(), "lintian:\n{text}");
}

#[test]
fn build_refuses_binaries_that_are_missing() {
    if !have_tools(&["dpkg-deb", "dpkg-shlibdeps", "strip"]) {
        return;
    }
    let dir = TempDir::new("deb-missing");
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/deb/build"))
        .arg("--bin-dir")
        .arg(dir.path())
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("does not exist; build it first"),
        "no hint to build first:\n{text}"
    );
    assert!(!dir.join("out").exists(), "{text}");

    let out = Command::new("bash")
        .arg(repo_root().join("scripts/deb/build"))
        .args(["--version", "not a version"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("is not a Debian version"),
        "{}",
        output_text(&out)
    );
}

#[test]
fn man_page_names_every_subcommand() {
    let page = std::fs::read_to_string(repo_root().join("scripts/deb/tributary.1")).unwrap();
    let out = Command::new(daemon_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 4, "no commands in:\n{help}");
    for command in commands {
        assert!(
            page.contains(&format!(".B tributary {command}")),
            "scripts/deb/tributary.1 does not describe `tributary {command}`"
        );
    }
}

/// Type and permission bits of a path inside the root, and whether root
/// owns it.
fn mode(chroot: &Chroot, path: &str) -> (u32, bool) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(chroot.path(path))
        .unwrap_or_else(|e| panic!("{path} is not installed: {e}"));
    (meta.mode() & 0o7777, meta.uid() == 0 && meta.gid() == 0)
}

/// `<status> <version>` of the package in the root's dpkg database.
fn dpkg_status(chroot: &Chroot) -> String {
    let out = chroot.run(&[
        "dpkg-query",
        "--show",
        "--showformat=${Status} ${Version}",
        "tributary",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The `*.toml.example` drop-ins installed in `/etc/tributary/conf.d`.
fn installed_examples(chroot: &Chroot) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(chroot.path("/etc/tributary/conf.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml.example"))
        .collect();
    names.sort();
    names
}

/// Files, modes and conffiles as installed; no account is created.
fn check_installed_layout(chroot: &Chroot) {
    assert_eq!(mode(chroot, "/usr/bin/tributary"), (0o755, true));
    for plugin in PLUGINS {
        let path = format!("/usr/lib/tributary/plugins/lib{plugin}.so");
        assert_eq!(mode(chroot, &path), (0o644, true), "{path}");
    }
    for path in [
        "/lib/systemd/system/tributary.service",
        "/etc/tributary/tributary.toml",
        "/etc/tributary/conf.d/README",
        "/usr/share/doc/tributary/copyright",
    ] {
        assert_eq!(mode(chroot, path), (0o644, true), "{path}");
    }
    assert_eq!(mode(chroot, "/etc/tributary/conf.d"), (0o755, true));
    let examples = installed_examples(chroot);
    assert!(examples.len() >= 4, "{examples:?}");
    let conffiles = chroot.ok(&[
        "dpkg-query",
        "--show",
        "--showformat=${Conffiles}",
        "tributary",
    ]);
    let expected = ["tributary.toml", "conf.d/README"]
        .map(str::to_owned)
        .into_iter()
        .chain(examples.iter().map(|e| format!("conf.d/{e}")));
    for conffile in expected {
        assert!(
            conffiles.contains(&format!(" /etc/tributary/{conffile} ")),
            "{conffile} is not a conffile:\n{conffiles}"
        );
    }
    let passwd = std::fs::read_to_string(chroot.path("/etc/passwd")).unwrap();
    assert!(
        !passwd.contains("tributary"),
        "DynamicUser=yes needs no account:\n{passwd}"
    );
}

/// The shipped config validates with the installed plugins, and so does
/// every example once enabled.
fn check_installed_config_validates(chroot: &Chroot) {
    let validated = chroot.ok(&[
        "tributary",
        "validate",
        "--config",
        "/etc/tributary/tributary.toml",
    ]);
    assert!(validated.contains("0 source(s)"), "{validated}");
    let plugins = chroot.ok(&["tributary", "plugins", "list"]);
    for plugin in PLUGINS {
        assert!(
            plugins.contains(&format!("/usr/lib/tributary/plugins/lib{plugin}.so")),
            "{plugin} not found by the installed daemon:\n{plugins}"
        );
    }
    let conf_d = chroot.path("/etc/tributary/conf.d");
    let examples = installed_examples(chroot);
    for example in &examples {
        std::fs::copy(
            conf_d.join(example),
            conf_d.join(example.trim_end_matches(".example")),
        )
        .unwrap();
    }
    let all = chroot.ok(&["tributary", "validate"]);
    assert!(
        all.contains(&format!("in {} file(s)", examples.len() + 1)),
        "{all}"
    );
    for example in &examples {
        std::fs::remove_file(conf_d.join(example.trim_end_matches(".example"))).unwrap();
    }
}

/// Enabled by the maintainer scripts, and a unit systemd accepts in the
/// installed layout (binary paths resolved inside the root).
fn check_enabled_and_verified(chroot: &Chroot) {
    let wants = chroot.path("/etc/systemd/system/multi-user.target.wants/tributary.service");
    assert_eq!(
        std::fs::read_link(&wants).expect("no multi-user.target.wants link"),
        Path::new("/lib/systemd/system/tributary.service")
    );
    let root = format!("--root={}", chroot.root.display());
    let enabled = run(Command::new("systemctl").args([&root, "is-enabled", "tributary.service"]));
    assert_eq!(
        String::from_utf8_lossy(&enabled.stdout).trim(),
        "enabled",
        "{}",
        output_text(&enabled)
    );
    let verify = run(Command::new("systemd-analyze").args(["verify", &root, "tributary.service"]));
    let text = output_text(&verify);
    assert!(
        verify.status.success() && !text.contains("tributary"),
        "systemd-analyze verify:\n{text}"
    );
}

/// Gives the root the state a running service leaves: with
/// `DynamicUser=yes` systemd keeps it in `/var/lib/private/tributary`
/// behind a `/var/lib/tributary` link (and moves a plain directory there
/// on the next start).
fn move_state_where_dynamic_user_keeps_it(chroot: &Chroot) {
    use std::os::unix::fs::PermissionsExt;
    let private = chroot.path("/var/lib/private");
    if !private.exists() {
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::rename(chroot.path("/var/lib/tributary"), private.join("tributary")).unwrap();
    std::os::unix::fs::symlink("private/tributary", chroot.path("/var/lib/tributary")).unwrap();
    std::fs::write(
        chroot.path("/var/lib/tributary/offsets/source-orders.json"),
        "{}",
    )
    .unwrap();
}

#[test]
fn package_installs_upgrades_and_purges_in_a_chroot() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip("not root: chroot, mount and dpkg inside a root need it");
        return;
    }
    if !have_tools(&[
        "debootstrap",
        "wget",
        "dpkg-deb",
        "dpkg-shlibdeps",
        "strip",
        "chroot",
        "unshare",
        "ip",
        "mount",
        "tar",
        "systemd-analyze",
        "systemctl",
    ]) {
        return;
    }
    let Some((suite, mirror)) = host_suite_and_mirror() else {
        skip(
            "no Debian suite and mirror in /etc/os-release and /etc/apt (set TRIBUTARY_DEB_MIRROR)",
        );
        return;
    };
    let started = Instant::now();
    let dir = TempDir::new("deb-chroot");
    let first = package();
    let version = field(first, "Version");
    let (upstream, revision) = version.rsplit_once('-').expect("a Debian revision");
    let revision: u32 = revision.parse().expect("a numeric Debian revision");
    let next = format!("{upstream}-{}", revision + 1);
    let second = build_package(&dir.join("upgrade"), Some(&next));

    // The package's dependencies come with the cached root rather than from
    // the network on every run; systemd is there because the package is
    // for systemd hosts and `systemd-analyze verify --root` needs its units.
    let mut include = depends_names(&field(first, "Depends"));
    include.push("systemd".to_owned());
    include.sort();
    let tarball = match base_root_tarball(&suite, &mirror, &include, dir.path()) {
        Ok(tarball) => tarball,
        Err(reason) => return skip(&reason),
    };
    let chroot = Chroot::unpack(&tarball, dir.join("root"));
    eprintln!(
        "packages and root ready: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for deb in [first, second.as_path()] {
        std::fs::copy(deb, chroot.path("/tmp").join(deb.file_name().unwrap())).unwrap();
    }
    let in_root = |deb: &Path| format!("/tmp/{}", deb.file_name().unwrap().to_string_lossy());
    let before = chroot.tree();

    chroot.ok(&["dpkg", "--install", &in_root(first)]);
    assert_eq!(
        dpkg_status(&chroot),
        format!("install ok installed {version}")
    );
    check_installed_layout(&chroot);
    check_installed_config_validates(&chroot);
    check_enabled_and_verified(&chroot);
    start_like_systemd(&chroot, &dir.join("service.log"));
    move_state_where_dynamic_user_keeps_it(&chroot);

    // The administrator changes the main file and enables a drop-in.
    let main = chroot.path("/etc/tributary/tributary.toml");
    let shipped = std::fs::read_to_string(&main).unwrap();
    assert!(shipped.contains("\"127.0.0.1:9464\""), "{shipped}");
    let changed = shipped.replace("\"127.0.0.1:9464\"", "\"127.0.0.1:9465\"");
    std::fs::write(&main, &changed).unwrap();
    let conf_d = chroot.path("/etc/tributary/conf.d");
    std::fs::copy(
        conf_d.join("orders.toml.example"),
        conf_d.join("orders.toml"),
    )
    .unwrap();

    // Upgrade. The new package ships the same tributary.toml, so dpkg keeps
    // the changed one without asking; no --force-conf* option is given, as
    // one would hide a prompt that an unattended upgrade cannot answer.
    let upgrade = chroot.ok(&["dpkg", "--install", &in_root(&second)]);
    assert!(
        !upgrade.contains("Configuration file"),
        "dpkg asked about a conffile:\n{upgrade}"
    );
    assert_eq!(dpkg_status(&chroot), format!("install ok installed {next}"));
    assert_eq!(
        std::fs::read_to_string(&main).unwrap(),
        changed,
        "the changed conffile was not kept"
    );
    let etc: Vec<String> = std::fs::read_dir(&conf_d)
        .unwrap()
        .chain(std::fs::read_dir(chroot.path("/etc/tributary")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !etc.iter().any(|n| n.contains(".dpkg-")),
        "dpkg left conffile copies: {etc:?}"
    );
    check_enabled_and_verified(&chroot);
    let validated = chroot.ok(&["tributary", "validate"]);
    assert!(validated.contains("1 source(s)"), "{validated}");

    // Remove: the program goes; configuration and state stay.
    chroot.ok(&["dpkg", "--remove", "tributary"]);
    assert_eq!(
        dpkg_status(&chroot),
        format!("deinstall ok config-files {next}")
    );
    for gone in [
        "/usr/bin/tributary",
        "/usr/lib/tributary",
        "/lib/systemd/system/tributary.service",
        "/usr/share/doc/tributary",
    ] {
        assert!(!chroot.path(gone).exists(), "{gone} survived dpkg --remove");
    }
    assert_eq!(std::fs::read_to_string(&main).unwrap(), changed);
    assert!(conf_d.join("orders.toml").is_file());
    assert!(
        chroot
            .path("/var/lib/tributary/offsets/source-orders.json")
            .is_file()
    );

    // Purge: nothing is left, not even what the administrator added.
    chroot.ok(&["dpkg", "--purge", "tributary"]);
    let query = chroot.run(&["dpkg-query", "--show", "tributary"]);
    assert!(
        !query.status.success(),
        "still known to dpkg: {}",
        output_text(&query)
    );
    for gone in [
        "/etc/tributary",
        "/var/lib/tributary",
        "/var/lib/private/tributary",
        "/usr/lib/tributary",
        "/usr/bin/tributary",
        "/etc/systemd/system/multi-user.target.wants/tributary.service",
    ] {
        assert!(
            std::fs::symlink_metadata(chroot.path(gone)).is_err(),
            "{gone} survived the purge"
        );
    }
    let after = chroot.tree();
    let left: Vec<&String> = after.difference(&before).collect();
    let lost: Vec<&String> = before.difference(&after).collect();
    assert!(
        left.is_empty() && lost.is_empty(),
        "left behind: {left:?}; removed: {lost:?}"
    );
    eprintln!(
        "build, install, start, upgrade, remove, purge: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
