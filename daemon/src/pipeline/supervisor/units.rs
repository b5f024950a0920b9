//! Which sources run on this daemon when several share the work as a
//! cluster (`[cluster]`). Kafka's group protocol decides; the membership
//! (`crate::cluster`) tells the supervisor what it was given and what it
//! must give back, through [`Supervisor::acquire`] and
//! [`Supervisor::release`]. A source that reads this host (log files, host
//! metrics) is not a unit: it runs on every member.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Entry, SourceView, Supervisor, lock};
use crate::config::SourceConfig;
use crate::pipeline::{Mode, SourceState};

/// The units this member runs, and a counter of changes to the set of
/// units the configuration defines.
#[derive(Debug, Default)]
pub struct Units {
    owned: Mutex<BTreeSet<String>>,
    defined_version: AtomicU64,
}

impl Supervisor {
    /// Whether the daemon runs as a member of a cluster.
    pub fn clustered(&self) -> bool {
        self.units.is_some()
    }

    /// Whether `source` is a unit of cluster work (runs on one member at a
    /// time) rather than a source every member runs.
    pub(super) fn is_unit(&self, source: &SourceConfig) -> bool {
        self.units.is_some()
            && !self
                .registry
                .source_type(&source.source_type)
                .is_some_and(|t| t.reads_this_host)
    }

    pub(super) fn owns(&self, name: &str) -> bool {
        self.units
            .as_ref()
            .is_some_and(|u| lock(&u.owned).contains(name))
    }

    /// The units of work the configuration defines (enabled sources that
    /// do not read this host), in name order: what this member offers to
    /// run.
    pub fn defined_units(&self) -> Vec<String> {
        lock(&self.sources)
            .values()
            .filter(|e| self.is_unit(&e.config))
            .map(|e| e.config.name.clone())
            .collect()
    }

    /// Changes whenever a reload may have changed [`Self::defined_units`].
    pub fn defined_units_version(&self) -> u64 {
        self.units
            .as_ref()
            .map_or(0, |u| u.defined_version.load(Ordering::Acquire))
    }

    pub(super) fn units_redefined(&self) {
        if let Some(units) = &self.units {
            units.defined_version.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The units this member runs, in name order.
    pub fn owned_units(&self) -> Vec<String> {
        self.units
            .as_ref()
            .map(|u| lock(&u.owned).iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Starts `unit`, which Kafka assigned to this member. It resumes from
    /// the checkpoints its last owner committed (the Kafka store); an
    /// exactly-once unit's producer takes over its transactional id, which
    /// fences a previous owner that is still alive. Returns at once.
    /// `None` when no source of that name is configured here (it stays
    /// idle until a reload defines it).
    pub fn acquire(&self, unit: &str) -> Option<SourceView> {
        let units = self.units.as_ref()?;
        lock(&units.owned).insert(unit.to_owned());
        // A stop under way: the unit stays where its checkpoint is, for the
        // member that gets it next.
        if self.shutdown.is_cancelled() {
            return None;
        }
        let mut sources = lock(&self.sources);
        let entry = sources.get_mut(unit)?;
        if entry.task.is_none() && entry.status.state() == SourceState::Standby {
            *entry = self.launch(entry.config.clone(), entry.status.clone());
        }
        Some(SourceView::of(&entry.config, &entry.status))
    }

    /// Stops `unit`, which Kafka takes away from this member: it stops
    /// polling, its records in flight are delivered and its checkpoint
    /// committed (or its transaction committed) before this returns, so the
    /// next owner starts exactly where this one stopped.
    pub async fn release(&self, unit: &str) {
        let Some(units) = &self.units else {
            return;
        };
        lock(&units.owned).remove(unit);
        let task = {
            let mut sources = lock(&self.sources);
            let Some(entry) = sources.get_mut(unit) else {
                return;
            };
            if let Some(control) = &entry.control {
                control.send_modify(|d| d.mode = Mode::Stop);
            }
            entry.task.take()
        };
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(source = %unit, error = %e, "A source task failed while stopping.");
        }
        let mut sources = lock(&self.sources);
        if let Some(entry) = sources.get_mut(unit)
            && entry.task.is_none()
            && !self.owns(unit)
        {
            entry.status.set_state(SourceState::Standby);
            *entry = Entry {
                config: entry.config.clone(),
                status: entry.status.clone(),
                control: None,
                task: None,
            };
        }
    }
}
