//! What an operator asks of one source (pause, resume, restart) and why a
//! request is refused. Every request becomes a change of the source's
//! [`Desired`] state, which its task follows; a restart of a source whose
//! task has ended launches it again instead. [`ControlError`] is also what
//! the offsets API answers with when it refuses.

use tokio::task::JoinHandle;

use super::{SourceView, Supervisor, lock};
use crate::offsets::OffsetError;
use crate::pipeline::{Desired, Mode, SourceState};

/// Why an operator's request about a source was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No enabled source has that name.
    #[error("no source named `{0}`")]
    NotFound(String),
    /// The request does not fit the source's state.
    #[error("source `{name}` is {state}: {message}")]
    Conflict {
        /// The source.
        name: String,
        /// Its state.
        state: &'static str,
        /// What to do instead.
        message: &'static str,
    },
    /// The offset store failed.
    #[error(transparent)]
    Offsets(#[from] OffsetError),
    /// A task of the daemon failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Supervisor {
    /// Drains the source and keeps it idle until [`Supervisor::resume`].
    pub fn pause(&self, name: &str) -> Result<SourceView, ControlError> {
        self.steer(name, |d| d.mode = Mode::Pause)
    }

    /// Lets a paused source run again, from its committed checkpoints.
    pub fn resume(&self, name: &str) -> Result<SourceView, ControlError> {
        self.steer(name, |d| d.mode = Mode::Run)
    }

    /// Drains the source and starts it again from its committed checkpoints
    /// (a paused source is resumed; a finished one runs again).
    pub fn restart(&self, name: &str) -> Result<SourceView, ControlError> {
        let mut sources = lock(&self.sources);
        let entry = sources
            .get_mut(name)
            .ok_or_else(|| ControlError::NotFound(name.to_owned()))?;
        if entry.task.as_ref().is_some_and(JoinHandle::is_finished) {
            tracing::info!(source = %name, "Source restarting on request.");
            *entry = self.launch(entry.config.clone(), entry.status.clone());
            return Ok(SourceView::of(&entry.config, &entry.status));
        }
        drop(sources);
        self.steer(name, |d| {
            d.mode = Mode::Run;
            d.generation += 1;
        })
    }

    fn steer(
        &self,
        name: &str,
        change: impl FnOnce(&mut Desired),
    ) -> Result<SourceView, ControlError> {
        let sources = lock(&self.sources);
        let entry = sources
            .get(name)
            .ok_or_else(|| ControlError::NotFound(name.to_owned()))?;
        let state = entry.status.state();
        let Some(control) = &entry.control else {
            return Err(ControlError::Conflict {
                name: name.to_owned(),
                state: state.as_str(),
                message: if state == SourceState::Standby {
                    "another member of the cluster runs it, or it waits to be assigned; see \
                     /api/v1/cluster"
                } else {
                    "it cannot run (see last_error); fix its configuration and reload"
                },
            });
        };
        if entry.task.as_ref().is_none_or(JoinHandle::is_finished) {
            return Err(ControlError::Conflict {
                name: name.to_owned(),
                state: state.as_str(),
                message: "its task has ended; restart it to run it again",
            });
        }
        control.send_modify(change);
        Ok(SourceView::of(&entry.config, &entry.status))
    }
}
