//! The installed unit's start, as systemd would run it on a fresh install.
//!
//! There is no systemd to ask inside a chroot, so its part is played here:
//! the unit's own `ExecStartPre=`, `ExecStart=` and `Environment=`, a
//! dynamic user with the unit's supplementary groups, the state directory,
//! the notify socket and the watchdog variable.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tributary_tests::{log_tail, output_text, wait_until};

use super::chroot::Chroot;
use super::tools::run;

/// The uid and gid the service runs as: the first of systemd's dynamic
/// range, as `DynamicUser=yes` would allocate.
const DYNAMIC_ID: u32 = 61184;

/// The installed daemon, started the way its unit starts it; killed on drop.
struct Service {
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `Key=` values of a unit file, in order.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// Runs the installed unit's `ExecStartPre=` and `ExecStart=` as systemd
/// would on a fresh install: as an unprivileged dynamic user with the `adm`
/// group, the state directory created for it, the unit's environment, a
/// notify socket and the watchdog, in a network namespace of its own (so
/// the shipped `127.0.0.1:9464` cannot collide). Returns once the daemon
/// has said READY=1 and is still running a few seconds later, after a
/// SIGTERM stop that drains and exits 0.
pub fn start_like_systemd(chroot: &Chroot, log: &Path) {
    let unit =
        std::fs::read_to_string(chroot.path("/lib/systemd/system/tributary.service")).unwrap();
    assert_eq!(unit_values(&unit, "Type"), ["notify"]);
    assert_eq!(
        unit_values(&unit, "DynamicUser"),
        ["yes"],
        "the unit names a static user"
    );
    assert!(unit_values(&unit, "User").is_empty());
    let [state] = unit_values(&unit, "StateDirectory")[..] else {
        panic!("one StateDirectory= expected:\n{unit}")
    };
    let groups = std::fs::read_to_string(chroot.path("/etc/group")).unwrap();
    let gid_of = |name: &str| -> String {
        groups
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f[0] == name).then(|| f[2].to_owned())
            })
            .unwrap_or_else(|| panic!("no group {name} in the root"))
    };
    let supplementary: Vec<String> = unit_values(&unit, "SupplementaryGroups")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(gid_of)
        .collect();
    let state_dir = chroot.path(&format!("/var/lib/{state}"));
    std::fs::create_dir(&state_dir).unwrap();
    std::os::unix::fs::chown(&state_dir, Some(DYNAMIC_ID), Some(DYNAMIC_ID)).unwrap();

    let notify_path = chroot.path("/run/tributary-notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    std::fs::set_permissions(&notify_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();

    let mut env = vec![
        "NOTIFY_SOCKET=/run/tributary-notify.sock".to_owned(),
        "WATCHDOG_USEC=30000000".to_owned(),
        format!("STATE_DIRECTORY=/var/lib/{state}"),
    ];
    env.extend(
        unit_values(&unit, "Environment")
            .iter()
            .map(|e| (*e).to_owned()),
    );
    let as_service = |exec: &str| -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$@\"",
            "sh",
            "chroot",
        ])
        .arg(format!("--userspec={DYNAMIC_ID}:{DYNAMIC_ID}"))
        .arg(format!("--groups={}", supplementary.join(",")))
        .arg(&chroot.root)
        .args(["env", "-i"])
        .args(&env)
        .args(exec.split_whitespace())
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null());
        cmd
    };

    for pre in unit_values(&unit, "ExecStartPre") {
        let out = run(&mut as_service(pre));
        assert!(
            out.status.success(),
            "ExecStartPre={pre}:\n{}",
            output_text(&out)
        );
    }
    let [exec_start] = unit_values(&unit, "ExecStart")[..] else {
        panic!("one ExecStart= expected:\n{unit}")
    };
    let log_file = std::fs::File::create(log).unwrap();
    let mut service = Service {
        child: as_service(exec_start)
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start the installed daemon"),
    };

    let until = |prefix: &str, wait: Duration| -> Option<String> {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = notify.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                if message.starts_with(prefix) {
                    return Some(message);
                }
            }
        }
        None
    };
    let ready = until("READY=1", Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "no READY=1 from the installed daemon:\n{}",
            log_tail(log, 30)
        )
    });
    assert!(ready.contains("0 source(s)"), "{ready}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        service.child.try_wait().unwrap().is_none(),
        "the daemon exited with no sources:\n{}",
        log_tail(log, 30)
    );
    // SAFETY: kill(2) on the PID of a child we have not reaped.
    unsafe { libc::kill(service.child.id() as libc::pid_t, libc::SIGTERM) };
    assert!(
        until("STOPPING=1", Duration::from_secs(10)).is_some(),
        "no STOPPING=1"
    );
    let exited = wait_until(Duration::from_secs(60), || {
        service.child.try_wait().unwrap().is_some()
    });
    assert!(exited, "no exit 60 s after SIGTERM");
    let status = service.child.wait().unwrap();
    assert!(status.success(), "{status:?}:\n{}", log_tail(log, 30));
    // The offset store of the shipped config is inside the state directory,
    // so the unprivileged daemon could create it.
    let offsets = state_dir.join("offsets");
    let meta = std::fs::metadata(&offsets)
        .unwrap_or_else(|e| panic!("no {}: {e}\n{}", offsets.display(), log_tail(log, 30)));
    assert_eq!(
        meta.uid(),
        DYNAMIC_ID,
        "{} is not the service's",
        offsets.display()
    );
    drop(notify);
    std::fs::remove_file(notify_path).unwrap();
}
