//! What triggers a reload: SIGHUP, and a change in the drop-in directory.
//!
//! The directory is polled (names, sizes and modification times of its
//! `*.toml` files) rather than watched with inotify: one `readdir` a second
//! costs nothing, needs no extra dependency, and works on every file system,
//! including the network and overlay mounts containers use. A change is
//! acted on once the directory has looked the same for one more poll, so an
//! editor's save or a `cp` of several files leads to one reload of complete
//! files.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::pipeline::Supervisor;
use crate::signals::ReloadRequests;
use crate::systemd::Notifier;

/// How often the drop-in directory is looked at.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies a drop-in file's version: size and modification time.
type Snapshot = BTreeMap<OsString, (u64, Option<SystemTime>)>;

/// Reloads on each request and each settled change of `conf_dir` until
/// `shutdown`. Every reload goes through [`Supervisor::reload`].
pub async fn watch(
    supervisor: Arc<Supervisor>,
    notifier: Arc<Notifier>,
    requests: Option<ReloadRequests>,
    conf_dir: Option<PathBuf>,
    shutdown: CancellationToken,
) {
    let mut seen = conf_dir.as_deref().map(snapshot);
    loop {
        let requested = async {
            match &requests {
                Some(r) => r.notified().await,
                None => std::future::pending().await,
            }
        };
        let changed = async {
            match (&conf_dir, &mut seen) {
                (Some(dir), Some(seen)) => settled_change(dir, seen).await,
                _ => std::future::pending().await,
            }
        };
        let trigger = tokio::select! {
            () = requested => "signal",
            () = changed => "drop-in directory changed",
            () = shutdown.cancelled() => return,
        };
        tracing::info!(trigger, "Configuration reload triggered.");
        // systemd shows the unit as reloading until READY=1 again, whether
        // the new config was applied or rejected (the old one runs on).
        notifier.reloading();
        // The outcome is logged and counted by `reload`.
        let _ = supervisor.reload().await;
        notifier.ready(&format!(
            "Running {} source(s).",
            supervisor.statuses().len()
        ));
        if let (Some(dir), Some(seen)) = (&conf_dir, &mut seen) {
            *seen = snapshot(dir);
        }
    }
}

/// Returns once `dir` differs from `seen` and has stayed the same for one
/// more poll; `seen` then holds the settled state.
async fn settled_change(dir: &Path, seen: &mut Snapshot) {
    loop {
        tokio::time::sleep(POLL_INTERVAL).await;
        let mut now = snapshot(dir);
        if now == *seen {
            continue;
        }
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            let again = snapshot(dir);
            if again == now {
                break;
            }
            now = again;
        }
        *seen = now;
        return;
    }
}

/// The `*.toml` files of `dir` the loader would read (not hidden), with
/// size and modification time. A missing or unreadable directory is empty:
/// the reload that follows reports it.
fn snapshot(dir: &Path) -> Snapshot {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Snapshot::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name.ends_with(".toml")
        })
        .filter_map(|e| {
            let meta = std::fs::metadata(e.path()).ok()?;
            meta.is_file()
                .then(|| (e.file_name(), (meta.len(), meta.modified().ok())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sees_toml_files_only_and_their_changes() {
        let dir = std::env::temp_dir().join(format!("tributary-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.toml"), "x").unwrap();
        std::fs::write(dir.join("b.toml.tmp"), "x").unwrap();
        std::fs::write(dir.join(".hidden.toml"), "x").unwrap();
        let first = snapshot(&dir);
        assert_eq!(first.keys().collect::<Vec<_>>(), vec!["a.toml"]);
        std::fs::write(dir.join("a.toml"), "xy").unwrap();
        assert_ne!(snapshot(&dir), first);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(snapshot(&dir).is_empty());
    }
}
