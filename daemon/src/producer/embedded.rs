//! The embedded broker: librdkafka's in-process mock cluster.
//!
//! It speaks the real Kafka protocol on a loopback port, so the first run of
//! the daemon needs no broker install, and `tributary peek` or any Kafka
//! client (`kcat -b <address>`) can read what it produced. It keeps data in memory only: it is for trying tributary out
//! and for tests, not for production.
//!
//! The mock cluster handle is not `Send`, so it lives on a thread of its own
//! that serves topic-creation requests until it is shut down.
//!
//! Its port is chosen anew at every start, so the daemon also writes it to
//! [`ADDRESS_FILE`] in its state directory, where `tributary peek` finds it.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::types::RDKafkaErrorCode;

use super::ProducerError;

enum Request {
    CreateTopic {
        topic: String,
        partitions: i32,
        reply: mpsc::Sender<Result<(), String>>,
    },
}

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    bootstrap: String,
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a one-broker mock cluster.
    pub fn start() -> Result<Self, ProducerError> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
        let (req_tx, req_rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("embedded-broker".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Serve until every sender is dropped, then drop the cluster.
                for req in req_rx {
                    match req {
                        Request::CreateTopic {
                            topic,
                            partitions,
                            reply,
                        } => {
                            let r = match cluster.create_topic(&topic, partitions, 1) {
                                Ok(())
                                | Err(KafkaError::MockCluster(
                                    RDKafkaErrorCode::TopicAlreadyExists,
                                )) => Ok(()),
                                Err(e) => Err(e.to_string()),
                            };
                            let _ = reply.send(r);
                        }
                    }
                }
            })
            .map_err(|e| ProducerError::Embedded(e.to_string()))?;
        let bootstrap = ready_rx
            .recv()
            .map_err(|_| ProducerError::Embedded("the broker thread exited".into()))?
            .map_err(ProducerError::Embedded)?;
        Ok(EmbeddedBroker {
            bootstrap,
            requests: Some(req_tx),
            thread: Some(thread),
        })
    }

    /// The `host:port` list clients connect to.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates `topic` with `partitions` partitions (idempotent: creating an
    /// existing topic succeeds).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), ProducerError> {
        let (reply, rx) = mpsc::channel();
        let sent = self.requests.as_ref().is_some_and(|r| {
            r.send(Request::CreateTopic {
                topic: topic.to_owned(),
                partitions,
                reply,
            })
            .is_ok()
        });
        if !sent {
            return Err(ProducerError::Embedded("the broker is stopped".into()));
        }
        rx.recv()
            .map_err(|_| ProducerError::Embedded("the broker thread exited".into()))?
            .map_err(|message| ProducerError::CreateTopic {
                topic: topic.to_owned(),
                message,
            })
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The file in the state directory (`[offsets] dir`) naming the running
/// daemon's embedded broker: its address on the first line, the daemon's
/// process id on the second, so a file left behind by a killed daemon is
/// recognised as such.
pub const ADDRESS_FILE: &str = "embedded-broker";

/// The embedded broker's address as written to [`ADDRESS_FILE`]; the file is
/// removed when this is dropped, at the end of the run.
#[derive(Debug)]
pub struct Announcement {
    path: PathBuf,
}

impl Announcement {
    /// Writes `bootstrap` and this process's id to `state_dir/`[`ADDRESS_FILE`]
    /// (through a temporary file and a rename, so a reader never sees half
    /// of it).
    pub fn write(state_dir: &Path, bootstrap: &str) -> std::io::Result<Announcement> {
        std::fs::create_dir_all(state_dir)?;
        let path = state_dir.join(ADDRESS_FILE);
        let tmp = state_dir.join(format!("{ADDRESS_FILE}.tmp"));
        std::fs::write(&tmp, format!("{bootstrap}\n{}\n", std::process::id()))?;
        std::fs::rename(&tmp, &path)?;
        Ok(Announcement { path })
    }
}

impl Drop for Announcement {
    fn drop(&mut self) {
        // Another daemon on the same state directory may have replaced it.
        if read_announcement(&self.path).is_ok_and(|(_, pid)| pid == std::process::id()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The address and process id in `state_dir/`[`ADDRESS_FILE`]; `Ok(None)`
/// when there is no such file (no daemon with an embedded broker ran there,
/// or it stopped).
pub fn announced_address(state_dir: &Path) -> std::io::Result<Option<(String, u32)>> {
    match read_announcement(&state_dir.join(ADDRESS_FILE)) {
        Ok(found) => Ok(Some(found)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn read_announcement(path: &Path) -> std::io::Result<(String, u32)> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines().map(str::trim);
    let address = lines.next().filter(|a| !a.is_empty());
    let pid = lines.next().and_then(|p| p.parse().ok());
    match (address, pid) {
        (Some(address), Some(pid)) => Ok((address.to_owned(), pid)),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "expected the broker's address and the daemon's process id on two lines",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_announced_address_is_read_back_and_removed_at_the_end_of_the_run() {
        let dir = std::env::temp_dir().join(format!("tributary-announce-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(announced_address(&dir).unwrap().is_none());
        let announcement = Announcement::write(&dir, "127.0.0.1:40123").unwrap();
        assert_eq!(
            announced_address(&dir).unwrap(),
            Some(("127.0.0.1:40123".to_owned(), std::process::id()))
        );
        drop(announcement);
        assert!(announced_address(&dir).unwrap().is_none());
        std::fs::write(dir.join(ADDRESS_FILE), "garbage").unwrap();
        assert!(announced_address(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
