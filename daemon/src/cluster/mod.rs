//! Cluster mode: daemons with the same `[cluster] group` share the sources
//! through Kafka's own consumer-group protocol. There is no coordinator of
//! the daemon's own: Kafka decides membership and assignment, the Kafka
//! offset store carries positions from one owner to the next, and an
//! exactly-once unit's transactional id fences an owner that comes back.
//!
//! Each unit of work (a source that does not read this host, or one shard
//! of a split source) has a work topic of one partition,
//! `tributary-cluster.<group>.<unit>`, created by whichever member sees it
//! first. Every member subscribes to the work topics of the units its
//! configuration defines, with an ordinary consumer group; the
//! cooperative-sticky assignor (or, with `protocol = "consumer"`, the
//! broker's KIP-848 assignor) spreads the partitions, and so the units,
//! over the members. No record is ever written to a work topic: the
//! partitions exist only to be assigned.
//!
//! The rebalance callbacks run on the membership thread
//! ([`membership`]): a partition taken away drains and commits its unit
//! before the callback returns, so the next owner starts exactly where this
//! one stopped; a partition given starts its unit.
//!
//! A topic per unit rather than one work topic with a partition per unit
//! needs no registry of which unit is which partition (no race between
//! members adding units at once, no topic growth), and a member is only
//! ever given units it has configured, so a rolling configuration change
//! never hands a member a unit it does not know. The price is the classic
//! protocol's group metadata, which lists every member's topics: see
//! `docs/scaling.md`.

mod group;
mod membership;
mod metrics;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rdkafka::ClientConfig;
use serde::Serialize;

use crate::config::{ClusterConfig, ClusterProtocol};
use crate::pipeline::Supervisor;
use crate::producer::{Kafka, ProducerError};

/// Why cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The membership consumer could not be created.
    #[error("cluster group `{group}`: cannot create its consumer: {message}")]
    Consumer {
        /// `[cluster] group`.
        group: String,
        /// librdkafka's reason.
        message: String,
    },
    /// A work topic could not be created.
    #[error("cluster group `{group}`: {source}")]
    Topics {
        /// `[cluster] group`.
        group: String,
        /// What Kafka said.
        source: ProducerError,
    },
    /// Two units would share one work topic name.
    #[error(
        "cluster group `{group}`: units `{first}` and `{second}` would share the work topic \
         `{topic}`; rename one of the sources"
    )]
    TopicClash {
        /// `[cluster] group`.
        group: String,
        /// One unit.
        first: String,
        /// The other.
        second: String,
        /// Their topic.
        topic: String,
    },
    /// The membership thread could not be spawned.
    #[error("cluster group `{group}`: cannot start its thread: {message}")]
    Thread {
        /// `[cluster] group`.
        group: String,
        /// The OS's reason.
        message: String,
    },
}

/// A running membership; [`Cluster::stop`] leaves the group.
pub struct Cluster {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("group", &self.shared.group)
            .field("member", &self.shared.member)
            .finish_non_exhaustive()
    }
}

/// What the membership thread, the rebalance callbacks and the API share.
struct Shared {
    group: String,
    protocol: ClusterProtocol,
    member: String,
    topic_prefix: String,
    supervisor: Arc<Supervisor>,
    kafka: Arc<Kafka>,
    runtime: tokio::runtime::Handle,
    /// Connection settings for the view's own short-lived client.
    client: ClientConfig,
    state: Mutex<MemberState>,
    metrics: metrics::ClusterMetrics,
}

/// This member as the API shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemberState {
    /// `joining` until the first assignment, `up`, then `leaving`.
    pub state: &'static str,
    /// Kafka's member id.
    pub member_id: String,
    /// The group generation (classic) or member epoch (consumer).
    pub generation: i32,
    /// Rebalances this member went through.
    pub rebalances: u64,
    /// The last one.
    pub last_rebalance: Option<Rebalanced>,
}

/// One rebalance as this member saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Rebalanced {
    /// When it ended, RFC 3339.
    pub at: String,
    /// Units given to this member.
    pub assigned: Vec<String>,
    /// Units taken away.
    pub revoked: Vec<String>,
    /// Whether they were taken away because this member was counted gone
    /// (a missed session): they were drained all the same, but another
    /// member may already run them.
    pub lost: bool,
    /// How long the callback took (draining and committing revoked units).
    pub took_ms: u64,
}

/// `GET /api/v1/cluster`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// `[cluster] group`.
    pub group: String,
    /// `classic/cooperative-sticky` or `consumer`.
    pub protocol: &'static str,
    /// This member.
    pub member: MemberView,
    /// Every member the group lists, with its units; only this member under
    /// `protocol = "consumer"`, whose groups the classic DescribeGroups
    /// request does not describe.
    pub members: Vec<PeerView>,
    /// Every unit this member's configuration defines, and its owner when
    /// known.
    pub units: Vec<UnitView>,
    /// Sources that run on every member (they read the host).
    pub every_member: Vec<String>,
    /// Why `members` holds only this member, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members_error: Option<String>,
}

/// This member in [`ClusterView`].
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// `[cluster] member`, or host name and HTTP port.
    pub name: String,
    /// Units it runs.
    pub units: Vec<String>,
    /// Its state.
    #[serde(flatten)]
    pub state: MemberState,
}

/// One member of the group.
#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    /// Its `[cluster] member` name.
    pub name: String,
    /// Kafka's member id.
    pub member_id: String,
    /// The host Kafka saw it connect from.
    pub host: String,
    /// Its units.
    pub units: Vec<String>,
}

/// One unit in [`ClusterView`].
#[derive(Debug, Clone, Serialize)]
pub struct UnitView {
    /// The unit (a source, or `<source>@<i>of<n>`).
    pub unit: String,
    /// Its work topic.
    pub topic: String,
    /// The member that runs it, if known.
    pub owner: Option<String>,
}

impl Cluster {
    /// Joins the group on a thread of its own, which creates the work
    /// topics of the configured units (retrying while the broker is away)
    /// and subscribes to them. Units start as Kafka assigns them.
    ///
    /// # Errors
    /// If two units would share a work topic, or the consumer or its
    /// thread cannot be created.
    pub fn start(
        config: &ClusterConfig,
        http_port: Option<u16>,
        supervisor: Arc<Supervisor>,
        kafka: Arc<Kafka>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let member = config.member.clone().unwrap_or_else(|| {
            let host = crate::offsets::kafka::host_name();
            match http_port {
                Some(port) => format!("{host}:{port}"),
                None => format!("{host}:{}", std::process::id()),
            }
        });
        let shared = Arc::new(Shared {
            group: config.group.clone(),
            protocol: config.protocol,
            member,
            topic_prefix: format!("tributary-cluster.{}.", config.group),
            supervisor,
            client: crate::offsets::kafka::consumer_base(kafka.client_config()),
            kafka,
            runtime: tokio::runtime::Handle::current(),
            state: Mutex::new(MemberState {
                state: "joining",
                ..MemberState::default()
            }),
            metrics: metrics::ClusterMetrics::register(),
        });
        // A clash is a configuration mistake: refused at once. Creating the
        // work topics needs the broker, and is retried by the membership
        // thread while it is away, as sources wait for it.
        shared.work_topics()?;
        let consumer = membership::consumer(config, &shared)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("cluster-membership".to_owned())
                .spawn(move || membership::run(&consumer, &shared, &stop))
                .map_err(|e| ClusterError::Thread {
                    group: config.group.clone(),
                    message: e.to_string(),
                })?
        };
        tracing::info!(
            group = %shared.group,
            member = %shared.member,
            protocol = shared.protocol_name(),
            "Joining the cluster."
        );
        Ok(Arc::new(Cluster {
            shared,
            stop,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Leaves the group: units still owned are drained and committed
    /// first (on shutdown they already are), then Kafka is told this member
    /// is gone, so the others take its units at once rather than after the
    /// session timeout.
    pub async fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!(group = %self.shared.group, "The cluster membership thread failed.");
            }
        }
        lock(&self.shared.state).state = "left";
        tracing::info!(group = %self.shared.group, member = %self.shared.member, "Left the cluster.");
    }

    /// The group, its members and who runs what. Asks Kafka for the group's
    /// members (one DescribeGroups request, at most 5 s).
    pub async fn view(&self) -> ClusterView {
        let shared = self.shared.clone();
        let peers = tokio::task::spawn_blocking(move || group::describe(&shared))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let supervisor = &self.shared.supervisor;
        let owned = supervisor.owned_units();
        let me = MemberView {
            name: self.shared.member.clone(),
            units: owned.clone(),
            state: lock(&self.shared.state).clone(),
        };
        let (members, members_error) = match peers {
            Ok(peers) if !peers.is_empty() => (peers, None),
            Ok(_) => (Vec::new(), Some("the group lists no member".to_owned())),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut owners: BTreeMap<String, String> = members
            .iter()
            .flat_map(|p| p.units.iter().map(|u| (u.clone(), p.name.clone())))
            .collect();
        for unit in &owned {
            owners.insert(unit.clone(), me.name.clone());
        }
        let units = supervisor
            .defined_units()
            .into_iter()
            .map(|unit| UnitView {
                topic: self.shared.topic_of(&unit),
                owner: owners.get(&unit).cloned(),
                unit,
            })
            .collect();
        let defined = supervisor.defined_units();
        let every_member = supervisor
            .sources()
            .into_iter()
            .map(|s| s.name)
            .filter(|name| !defined.contains(name))
            .collect();
        ClusterView {
            group: self.shared.group.clone(),
            protocol: self.shared.protocol_name(),
            member: me,
            members,
            units,
            every_member,
            members_error,
        }
    }
}

impl Shared {
    fn protocol_name(&self) -> &'static str {
        match self.protocol {
            ClusterProtocol::Classic => "classic/cooperative-sticky",
            ClusterProtocol::Consumer => "consumer",
        }
    }

    /// The work topic of `unit`: the unit's name with the `@` of a shard
    /// (not allowed in topic names) written `.shard-`.
    fn topic_of(&self, unit: &str) -> String {
        format!("{}{}", self.topic_prefix, unit.replace('@', ".shard-"))
    }

    /// The unit of a work topic, among the units defined now.
    fn unit_of<'a>(&self, topic: &str, topics: &'a BTreeMap<String, String>) -> Option<&'a str> {
        topics.get(topic).map(String::as_str)
    }

    /// Work topic → unit, for every unit the configuration defines.
    fn work_topics(&self) -> Result<BTreeMap<String, String>, ClusterError> {
        let mut topics = BTreeMap::new();
        for unit in self.supervisor.defined_units() {
            let topic = self.topic_of(&unit);
            if let Some(first) = topics.insert(topic.clone(), unit.clone()) {
                return Err(ClusterError::TopicClash {
                    group: self.group.clone(),
                    first,
                    second: unit,
                    topic,
                });
            }
        }
        Ok(topics)
    }
}

/// RFC 3339 UTC of now, for the API.
fn now_rfc3339() -> String {
    crate::offsets::kafka::rfc3339(SystemTime::now())
}

/// Locks a mutex, recovering from poisoning (each update is one
/// assignment, so the value stays consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
