//! A source's committed checkpoints, as the API reads and resets them. The
//! store does the work on a blocking thread; this part checks that the
//! source exists and, for a reset, that it is paused, stopped, finished or
//! failed (a source that runs, or will after its backoff, commits its own
//! checkpoints over a reset).

use super::{ControlError, Supervisor, lock};
use crate::offsets::Checkpoints;
use crate::pipeline::SourceState;

impl Supervisor {
    /// The committed checkpoints of a source.
    pub async fn offsets(&self, name: &str) -> Result<Checkpoints, ControlError> {
        if !lock(&self.sources).contains_key(name) {
            return Err(ControlError::NotFound(name.to_owned()));
        }
        let store = self.store.clone();
        let owned = name.to_owned();
        Ok(tokio::task::spawn_blocking(move || store.load(&owned))
            .await
            .map_err(|e| ControlError::Internal(e.to_string()))??)
    }

    /// Forgets the committed checkpoints of a source that is not running
    /// (paused, stopped, finished or failed), so its next run starts from
    /// the beginning of its input, as Kafka Connect's offset reset does.
    pub async fn reset_offsets(&self, name: &str) -> Result<(), ControlError> {
        {
            let sources = lock(&self.sources);
            let entry = sources
                .get(name)
                .ok_or_else(|| ControlError::NotFound(name.to_owned()))?;
            let state = entry.status.state();
            if !matches!(
                state,
                SourceState::Paused
                    | SourceState::Stopped
                    | SourceState::Finished
                    | SourceState::Failed
            ) {
                return Err(ControlError::Conflict {
                    name: name.to_owned(),
                    state: state.as_str(),
                    message: "pause it first; offsets of a running source cannot be reset",
                });
            }
        }
        let store = self.store.clone();
        let owned = name.to_owned();
        tokio::task::spawn_blocking(move || store.commit(&owned, &Checkpoints::new()))
            .await
            .map_err(|e| ControlError::Internal(e.to_string()))??;
        tracing::warn!(source = %name, "Offsets reset; the source starts from the beginning of its input when it runs again.");
        Ok(())
    }
}
