//! A throwaway Debian root: `debootstrap --variant=minbase` of the host's
//! suite, cached as a tarball, unpacked per test and entered with `chroot`.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use tributary_tests::{log_tail, output_text};

use super::tools::{run, tool};

/// The host's suite (`VERSION_CODENAME`) and the first `deb` mirror that
/// serves it in the host's APT sources; `TRIBUTARY_DEB_MIRROR` overrides
/// the mirror.
pub fn host_suite_and_mirror() -> Option<(String, String)> {
    let os = std::fs::read_to_string("/etc/os-release").ok()?;
    let suite = os
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))?
        .trim_matches('"')
        .to_owned();
    if let Some(mirror) = std::env::var_os("TRIBUTARY_DEB_MIRROR") {
        return Some((suite, mirror.to_string_lossy().into_owned()));
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| Some(e.ok()?.path())).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let name = file.to_string_lossy();
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if name.ends_with(".sources") {
            // deb822: paragraphs of `Types:`, `URIs:`, `Suites:`.
            for paragraph in text.split("\n\n") {
                let value = |key: &str| {
                    paragraph
                        .lines()
                        .find_map(|l| l.strip_prefix(key))
                        .map(str::trim)
                        .unwrap_or("")
                };
                if value("Types:").split_whitespace().any(|t| t == "deb")
                    && value("Suites:").split_whitespace().any(|s| s == suite)
                    && let Some(uri) = value("URIs:").split_whitespace().next()
                {
                    return Some((suite, uri.to_owned()));
                }
            }
        } else if name.ends_with(".list") {
            // One-line: `deb [options] URI suite components`.
            for line in text.lines() {
                let words: Vec<&str> = line
                    .split_whitespace()
                    .filter(|w| !w.starts_with('['))
                    .collect();
                if words.first() == Some(&"deb") && words.get(2) == Some(&suite.as_str()) {
                    return Some((suite, words[1].to_owned()));
                }
            }
        }
    }
    None
}

/// A short stable hash, to name the cached root after what it includes.
fn fnv(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("{:08x}", hash >> 32)
}

/// A tarball of `debootstrap --variant=minbase SUITE` with `include`d
/// packages, made once and cached. `Err` says why the mirror cannot be
/// reached; any other failure fails the test.
pub fn base_root_tarball(
    suite: &str,
    mirror: &str,
    include: &[String],
    scratch: &Path,
) -> Result<PathBuf, String> {
    let arch =
        String::from_utf8_lossy(&run(Command::new("dpkg").arg("--print-architecture")).stdout)
            .trim()
            .to_owned();
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME")
        .join("tributary");
    let key = format!("{mirror} {}", include.join(","));
    let tarball = cache.join(format!("debootstrap-{suite}-{arch}-{}.tar", fnv(&key)));
    if tarball.is_file() {
        return Ok(tarball);
    }

    let release = format!("{}/dists/{suite}/Release", mirror.trim_end_matches('/'));
    let reachable =
        run(Command::new("wget").args(["-q", "--spider", "--timeout=15", "--tries=2", &release]))
            .status
            .success();
    if !reachable {
        return Err(format!(
            "the mirror does not answer ({release}); set TRIBUTARY_DEB_MIRROR"
        ));
    }
    let root = scratch.join("debootstrap");
    let log = scratch.join("debootstrap.log");
    let started = Instant::now();
    let status = Command::new(tool("debootstrap").unwrap())
        .args([
            "--variant=minbase",
            &format!("--include={}", include.join(",")),
        ])
        .args([suite, root.to_str().unwrap(), mirror])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::options().append(true).open(&log).unwrap(),
        ))
        .status()
        .expect("run debootstrap");
    assert!(
        status.success(),
        "debootstrap {suite} from {mirror} failed:\n{}",
        log_tail(&log, 40)
    );
    // The downloaded .debs are not part of the system.
    for deb in std::fs::read_dir(root.join("var/cache/apt/archives")).unwrap() {
        let deb = deb.unwrap().path();
        if deb.extension() == Some(OsStr::new("deb")) {
            std::fs::remove_file(deb).unwrap();
        }
    }
    std::fs::create_dir_all(&cache).unwrap();
    let partial = cache.join(format!(".debootstrap-{}.tar.partial", std::process::id()));
    let out = run(Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&partial)
        .arg("."));
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        panic!("tar the new root: {}", output_text(&out));
    }
    // A rename: another test process sees the whole file or none.
    std::fs::rename(&partial, &tarball).unwrap();
    eprintln!(
        "debootstrap {suite} ({}): {:.0} s, cached in {}",
        include.join(","),
        started.elapsed().as_secs_f64(),
        tarball.display()
    );
    Ok(tarball)
}

/// An unpacked root with `/proc` mounted; unmounted on drop, before the
/// test directory holding the root is removed.
pub struct Chroot {
    pub root: PathBuf,
}

impl Chroot {
    pub fn unpack(tarball: &Path, root: PathBuf) -> Chroot {
        std::fs::create_dir(&root).unwrap();
        let out = run(Command::new("tar")
            .args(["--numeric-owner", "-xf"])
            .arg(tarball)
            .arg("-C")
            .arg(&root));
        assert!(
            out.status.success(),
            "unpack {}: {}",
            tarball.display(),
            output_text(&out)
        );
        let out = run(Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(root.join("proc")));
        assert!(out.status.success(), "mount /proc: {}", output_text(&out));
        Chroot { root }
    }

    /// `rel` (an absolute path inside the root) seen from the host.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// A command inside the root with a clean, non-interactive environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("chroot");
        cmd.arg(&self.root)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(&mut self.command(args))
    }

    /// Runs `args` inside the root and insists on success.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = output_text(&out);
        assert!(
            out.status.success(),
            "{args:?} in the chroot failed:\n{text}"
        );
        text
    }

    /// Every path in the root except the ones dpkg, the kernel and this
    /// test change whatever the package does.
    pub fn tree(&self) -> BTreeSet<String> {
        const VOLATILE: &[&str] = &[
            "/proc",
            "/sys",
            "/dev",
            "/run",
            "/tmp",
            "/var/tmp",
            "/var/log",
            "/var/cache",
            "/var/lib/dpkg",
            "/var/lib/apt",
        ];
        let mut out = BTreeSet::new();
        let mut stack = vec![self.root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                let rel = format!("/{}", path.strip_prefix(&self.root).unwrap().display());
                if VOLATILE.contains(&rel.as_str()) {
                    continue;
                }
                if entry.file_type().unwrap().is_dir() {
                    stack.push(path);
                }
                out.insert(rel);
            }
        }
        out
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        let proc = self.root.join("proc");
        let unmounted = Command::new("umount")
            .arg(&proc)
            .status()
            .is_ok_and(|s| s.success())
            || Command::new("umount")
                .arg("-l")
                .arg(&proc)
                .status()
                .is_ok_and(|s| s.success());
        if !unmounted {
            eprintln!("could not unmount {}", proc.display());
        }
    }
}
