//! The embedded broker: librdkafka's in-process mock cluster.
//!
//! It speaks the real Kafka protocol on a loopback port, so the first run of
//! the daemon needs no broker install, and `kcat -b <address>` can read what
//! it produced. It keeps data in memory only: it is for trying tributary out
//! and for tests, not for production.
//!
//! The mock cluster handle is not `Send`, so it lives on a thread of its own
//! that serves topic-creation requests until it is shut down.

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
