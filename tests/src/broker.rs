//! Kafka brokers for tests: librdkafka's in-process mock cluster, and Apache
//! Kafka run as a child process (see [`crate::kafka`]).
//!
//! The mock is always available and can inject faults; Apache Kafka is what
//! users run, and catches what a mock of librdkafka's own making cannot
//! (sequence-number checks for idempotent producers, transactions, restarts
//! on the same log). Tests that count records run against every broker in
//! [`brokers_under_test`].

use std::fmt;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::kafka::{KAFKA_ENV, KafkaBroker, kafka_available, shared_kafka};

/// The mock cluster type rdkafka hands out.
pub type Mock = MockCluster<'static, DefaultProducerContext>;

/// How long a topic gets to show all its partitions after creation.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Which broker implementation a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrokerKind {
    /// librdkafka's mock cluster, in the test process.
    Mock,
    /// Apache Kafka: the test binary's shared broker.
    Kafka,
}

impl BrokerKind {
    /// `"mock"` or `"kafka"`, for messages and test-dir labels.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Mock => "mock",
            BrokerKind::Kafka => "kafka",
        }
    }
}

impl fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The brokers record-counting tests must pass against: always the mock,
/// plus Apache Kafka when Java and Maven are here (see
/// [`kafka_available`]). When Kafka is skipped, a note says so on stderr,
/// visible even for passing tests.
///
/// # Panics
/// If `CI=true` and Kafka cannot run: CI must test against a real broker.
pub fn brokers_under_test() -> Vec<BrokerKind> {
    if kafka_available() {
        return vec![BrokerKind::Mock, BrokerKind::Kafka];
    }
    // Once per test binary, written to the real stderr: libtest captures
    // `eprintln!` of passing tests, and a skip nobody sees is a silent one.
    static NOTE: std::sync::Once = std::sync::Once::new();
    NOTE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "note: Apache Kafka cannot run here (java/mvn missing or {KAFKA_ENV}=0): the \
             Kafka variants of broker tests are SKIPPED, only the mock broker runs"
        );
    });
    vec![BrokerKind::Mock]
}

/// The broker a test that runs once should use: Apache Kafka when it can
/// run here, else the mock (with the note of [`brokers_under_test`]).
pub fn broker_of_record() -> BrokerKind {
    *brokers_under_test()
        .last()
        .expect("the mock is always under test")
}

/// A running broker of either kind. Dropping a mock stops it; the shared
/// Apache Kafka outlives the handle (it belongs to the test binary).
#[derive(Debug)]
pub enum Broker {
    /// The in-process mock; see [`Broker::mock`] for fault injection.
    Mock(MockBroker),
    /// Apache Kafka, and the suffix that makes this handle's topic names
    /// its own on a broker other tests share.
    Kafka(&'static KafkaBroker, String),
}

impl Broker {
    /// Starts a one-node mock, or takes the test binary's shared Apache
    /// Kafka (started on first use). `_dir` is the test's directory; the
    /// shared broker lives in a directory of its own.
    pub fn start(kind: BrokerKind, _dir: &Path) -> Broker {
        match kind {
            BrokerKind::Mock => Broker::start_mock(1),
            BrokerKind::Kafka => Broker::on_kafka(shared_kafka()),
        }
    }

    /// Starts a mock cluster of `brokers` nodes (3 lets tests take one down
    /// and move partition leadership).
    pub fn start_mock(brokers: i32) -> Broker {
        Broker::Mock(MockBroker::start(brokers))
    }

    /// A handle on `broker` with topic names of its own.
    pub fn on_kafka(broker: &'static KafkaBroker) -> Broker {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Broker::Kafka(broker, format!("-t{n}"))
    }

    /// The topic name this test uses for `base`: `base` itself on a mock of
    /// its own, `base` with a unique suffix on a shared broker.
    pub fn topic(&self, base: &str) -> String {
        match self {
            Broker::Mock(_) => base.to_owned(),
            Broker::Kafka(_, suffix) => format!("{base}{suffix}"),
        }
    }

    /// The `bootstrap.servers` list for clients and the daemon config.
    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Mock(m) => m.bootstrap(),
            Broker::Kafka(k, _) => k.bootstrap().to_owned(),
        }
    }

    /// Creates `name` with `partitions` partitions and waits until every
    /// partition has a leader in metadata, so a producer started next does
    /// not race topic creation. On a shared broker, pass a name from
    /// [`topic`](Self::topic).
    ///
    /// # Panics
    /// If creation fails or the topic is not ready within 15 s.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        match self {
            Broker::Mock(m) => m.create_topic(name, partitions),
            Broker::Kafka(..) => create_topic_with_admin(&self.bootstrap(), name, partitions),
        }
        wait_for_topic(&self.bootstrap(), name, partitions);
    }

    /// The broker's kind.
    pub fn broker_kind(&self) -> BrokerKind {
        match self {
            Broker::Mock(_) => BrokerKind::Mock,
            Broker::Kafka(..) => BrokerKind::Kafka,
        }
    }

    /// `"mock"` or `"kafka"`.
    pub fn kind(&self) -> &'static str {
        self.broker_kind().name()
    }

    /// The mock cluster, for fault injection (`broker_down`,
    /// `request_errors`, `partition_leader`, ...).
    ///
    /// # Panics
    /// If this is not a mock broker: fault tests only make sense on the mock.
    pub fn mock(&self) -> &Mock {
        self.as_mock()
            .unwrap_or_else(|| panic!("fault injection needs the mock broker, not {}", self.kind()))
    }

    /// The mock cluster if this is the mock broker.
    pub fn as_mock(&self) -> Option<&Mock> {
        match self {
            Broker::Mock(m) => Some(&m.cluster),
            Broker::Kafka(..) => None,
        }
    }

    /// The Apache Kafka process behind this handle.
    ///
    /// # Panics
    /// If this is the mock.
    pub fn kafka(&self) -> &'static KafkaBroker {
        match self {
            Broker::Kafka(k, _) => k,
            Broker::Mock(_) => panic!("this test needs Apache Kafka, not the mock"),
        }
    }
}

/// librdkafka's mock cluster, hosted by the test process.
///
/// Its brokers listen on 127.0.0.1 and are served by librdkafka threads, so a
/// daemon in another process can connect to it. The cluster is `!Send`: keep
/// the test on one thread. Unlike Kafka it does not implement CreateTopics,
/// so topics are created through the mock API.
pub struct MockBroker {
    cluster: Mock,
}

impl fmt::Debug for MockBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockBroker")
            .field("bootstrap", &self.cluster.bootstrap_servers())
            .finish()
    }
}

impl MockBroker {
    fn start(brokers: i32) -> MockBroker {
        let cluster = MockCluster::new(brokers).expect("create mock cluster");
        MockBroker { cluster }
    }

    fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    fn create_topic(&self, name: &str, partitions: i32) {
        self.cluster
            .create_topic(name, partitions, 1)
            .unwrap_or_else(|e| panic!("mock: create topic {name}: {e}"));
    }
}

/// The first port [`free_port`] hands out, and how many follow it.
const TEST_PORTS: (u16, u16) = (20_000, 10_000);

/// A port that was free on 127.0.0.1 a moment ago.
///
/// Ports come from 20000–29999, below Linux's ephemeral range
/// (32768–60999): a port the kernel hands out would be free to any outgoing
/// connection of a parallel test until the daemon binds it, and the test
/// would then talk to whatever else listens there. Each call of a test
/// process takes the next port of a sequence that starts at a place of its
/// own, so two tests of one binary never share one. `scripts/kafka` and
/// `scripts/schema-registry` take theirs from 30000–32767.
pub fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);
    let (first, count) = TEST_PORTS;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let start = u64::from(std::process::id()) * 7_919 + nanos;
    let _ = NEXT.compare_exchange(u64::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..count {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = first + u16::try_from(n % u64::from(count)).expect("below the count");
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {first}..{}", first + count);
}

/// Client settings shared by the harness's own short-lived clients.
fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "tributary-test-harness")
        .set("allow.auto.create.topics", "false");
    config
}

/// CreateTopics through the Admin API, for brokers that implement it.
pub(crate) fn create_topic_with_admin(bootstrap: &str, name: &str, partitions: i32) {
    create_topic_with_configs(bootstrap, name, partitions, &[]);
}

/// Creates topic `name` on a real Kafka with topic-level `configs` (such as
/// `max.message.bytes`).
///
/// # Panics
/// If Kafka refuses.
pub fn create_topic_with_configs(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    // The admin client's futures are completed by librdkafka's own thread; a
    // current-thread runtime only has to wait for them.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let results = runtime
        .block_on(admin.create_topics([&topic], &options))
        .unwrap_or_else(|e| panic!("create topic {name} on {bootstrap}: {e}"));
    for result in results {
        match result {
            Ok(_) => {}
            Err((topic, code)) => panic!("create topic {topic} on {bootstrap}: {code:?}"),
        }
    }
}

/// Deletes topic `name` on a real Kafka through an admin client.
///
/// # Panics
/// If Kafka refuses.
pub fn delete_topic_with_admin(bootstrap: &str, name: &str) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let results = runtime
        .block_on(admin.delete_topics(&[name], &options))
        .unwrap_or_else(|e| panic!("delete topic {name} on {bootstrap}: {e}"));
    for result in results {
        if let Err((topic, code)) = result {
            panic!("delete topic {topic} on {bootstrap}: {code:?}");
        }
    }
}

/// Polls metadata until `name` has `partitions` partitions, each with a
/// leader.
fn wait_for_topic(bootstrap: &str, name: &str, partitions: i32) {
    let client: BaseConsumer = client_config(bootstrap).create().expect("metadata client");
    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    loop {
        let last = match client.fetch_metadata(Some(name), Duration::from_secs(1)) {
            Ok(md) => match md.topics().iter().find(|t| t.name() == name) {
                Some(t) if t.error().is_none() => {
                    let led = t.partitions().iter().filter(|p| p.leader() >= 0).count();
                    if led == partitions as usize {
                        return;
                    }
                    format!("{led} of {partitions} partitions have a leader")
                }
                Some(t) => format!("topic error {:?}", t.error()),
                None => "topic absent".to_owned(),
            },
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "topic {name} on {bootstrap} not ready within {TOPIC_READY_TIMEOUT:?}: {last}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
