//! Applying a new configuration to the running sources: what the reload
//! diff decides (start, restart, stop or leave alone each source) and the
//! order it does it in, so that only the sources that change stop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::{Supervisor, lock};
use crate::config::{self, ConfigErrors, SourceConfig};
use crate::metrics;
use crate::pipeline::{Mode, SourceStatus};
use crate::telemetry;
use crate::validate;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration has errors; the running one is kept.
    #[error("configuration invalid; the running configuration is kept:\n{0}")]
    Invalid(ConfigErrors),
    /// A task of the daemon failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a reload did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadSummary {
    /// Sources started for the first time.
    pub added: Vec<String>,
    /// Sources restarted with a new configuration.
    pub changed: Vec<String>,
    /// Sources drained and stopped.
    pub removed: Vec<String>,
    /// Sources left running untouched.
    pub unchanged: usize,
}

impl Supervisor {
    /// Re-reads the main file and the drop-ins and applies the difference:
    /// sources whose configuration changed are drained and restarted, new
    /// ones start, removed (or disabled) ones drain and stop, and the others
    /// keep running untouched. The whole new configuration is checked first
    /// (files and plugin options, as `tributary validate` does); if anything
    /// is wrong, nothing changes, every problem is logged with its file,
    /// line and key, and the failure is counted.
    ///
    /// Changes to `[kafka]`, `[offsets]`, `[http]` and `[plugins]` need a
    /// restart; a reload logs that they were not applied. Plugin libraries
    /// are the ones loaded at start.
    ///
    /// This is the one place a reload happens (SIGHUP, the drop-in watcher):
    /// the right place to tell a service manager that a reload is under way.
    pub async fn reload(self: &Arc<Self>) -> Result<ReloadSummary, ReloadError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let started = Instant::now();
        tracing::info!("Reloading the configuration.");
        let current = self.config();
        let this = self.clone();
        let (new, errors) = tokio::task::spawn_blocking(move || {
            let (new, mut errors) =
                config::load_all(&current.main_file, this.conf_dir_arg.as_deref());
            if errors.is_empty() {
                errors.extend(validate::check_sources(&new, &this.registry));
            }
            (new, errors)
        })
        .await
        .map_err(|e| ReloadError::Internal(e.to_string()))?;
        if !errors.is_empty() {
            telemetry::emit(telemetry::ReloadError { errors: &errors });
            let errors = ConfigErrors(errors);
            *lock(&self.last_reload_error) = Some(errors.to_string());
            return Err(ReloadError::Invalid(errors));
        }
        let current = self.config();
        for (section, changed) in [
            ("kafka", current.kafka != new.kafka),
            ("offsets", current.offsets != new.offsets),
            ("http", current.http != new.http),
            ("plugins", current.plugins != new.plugins),
        ] {
            if changed {
                tracing::warn!(
                    section,
                    "Changes to this section take effect after a restart; not applied."
                );
            }
        }
        let wanted: BTreeMap<&str, &SourceConfig> = new
            .sources
            .iter()
            .filter(|s| s.enabled)
            .map(|s| (s.name.as_str(), s))
            .collect();
        let mut summary = ReloadSummary::default();
        let mut draining = Vec::new();
        {
            let sources = lock(&self.sources);
            for (name, entry) in sources.iter() {
                match wanted.get(name.as_str()) {
                    None => summary.removed.push(name.clone()),
                    Some(config) if **config != entry.config => summary.changed.push(name.clone()),
                    Some(_) => summary.unchanged += 1,
                }
            }
            for name in wanted.keys() {
                if !sources.contains_key(*name) {
                    summary.added.push((*name).to_owned());
                }
            }
        }
        // Stop what goes away or changes, all at once, then wait for each
        // to drain and commit.
        {
            let mut sources = lock(&self.sources);
            for name in summary.removed.iter().chain(&summary.changed) {
                if let Some(entry) = sources.get_mut(name) {
                    if let Some(control) = &entry.control {
                        control.send_modify(|d| d.mode = Mode::Stop);
                    }
                    if let Some(task) = entry.task.take() {
                        draining.push(task);
                    }
                }
            }
        }
        for task in draining {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "A source task failed while stopping.");
            }
        }
        {
            let mut sources = lock(&self.sources);
            for name in &summary.removed {
                sources.remove(name);
                metrics::global().remove_source(name);
                tracing::info!(source = %name, "Source removed by reload.");
            }
            for name in summary.changed.iter().chain(&summary.added) {
                let Some(config) = wanted.get(name.as_str()) else {
                    continue;
                };
                let status = match sources.get(name) {
                    // Counters carry on across a restart of the same plugin.
                    Some(old) if old.config.source_type == config.source_type => old.status.clone(),
                    _ => Arc::new(SourceStatus::new(name, &config.source_type)),
                };
                let entry = self.launch((*config).clone(), status);
                sources.insert(name.clone(), entry);
            }
        }
        let mut applied = (*current).clone();
        applied.sources = new.sources.clone();
        applied.files = new.files.clone();
        *lock(&self.config) = Arc::new(applied);
        *lock(&self.last_reload_error) = None;
        self.units_redefined();
        telemetry::emit(telemetry::ReloadApplied {
            added: &summary.added,
            changed: &summary.changed,
            removed: &summary.removed,
            unchanged: summary.unchanged,
            took: started.elapsed(),
        });
        Ok(summary)
    }
}
