//! Kafka brokers for tests: librdkafka's in-process mock cluster, and Tansu,
//! a real Kafka-protocol broker run as a child process.
//!
//! The mock is always available and can inject faults; Tansu catches what a
//! mock of librdkafka's own making cannot (a different implementation of the
//! protocol). Tests that count records run against every broker in
//! [`brokers_under_test`].

use std::fmt;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::process;

/// The mock cluster type rdkafka hands out.
pub type Mock = MockCluster<'static, DefaultProducerContext>;

/// Environment variable naming the Tansu binary, checked before `PATH`.
pub const TANSU_BIN_ENV: &str = "TANSU_BIN";

/// How long Tansu gets to answer metadata requests after spawning.
const TANSU_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a topic gets to show all its partitions after creation.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Which broker implementation a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BrokerKind {
    /// librdkafka's mock cluster, in the test process.
    Mock,
    /// A Tansu process with in-memory storage.
    Tansu,
}

impl BrokerKind {
    /// `"mock"` or `"tansu"`, for messages and test-dir labels.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Mock => "mock",
            BrokerKind::Tansu => "tansu",
        }
    }
}

impl fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The brokers record-counting tests must pass against: always the mock,
/// plus Tansu when its binary is found (see [`tansu_bin`]). When Tansu is
/// skipped, a note says so on stderr, visible even for passing tests.
///
/// # Panics
/// If `CI=true` and Tansu is not found: CI must test against a real broker,
/// and silently skipping it would turn a broken CI image into green runs.
pub fn brokers_under_test() -> Vec<BrokerKind> {
    if tansu_bin().is_some() {
        return vec![BrokerKind::Mock, BrokerKind::Tansu];
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but no Tansu binary found (set {TANSU_BIN_ENV}, put tansu on PATH, \
         or cargo install tansu)"
    );
    // Once per test binary, written to the real stderr: libtest captures
    // `eprintln!` of passing tests, and a skip nobody sees is a silent one.
    static NOTE: std::sync::Once = std::sync::Once::new();
    NOTE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "note: Tansu not found ({TANSU_BIN_ENV}, PATH, ~/.cargo/bin): the Tansu \
             variants of broker tests are SKIPPED, only the mock broker runs"
        );
    });
    vec![BrokerKind::Mock]
}

/// The Tansu binary: `$TANSU_BIN`, else `tansu` on `PATH`, else
/// `~/.cargo/bin/tansu` (where `cargo install` puts it, even when that
/// directory is not on the test runner's `PATH`).
///
/// # Panics
/// If `TANSU_BIN` is set but names no file: an explicit choice that does not
/// work is an error, not a reason to fall back.
pub fn tansu_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(TANSU_BIN_ENV) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "{TANSU_BIN_ENV}={} is not a file",
            bin.display()
        );
        return Some(bin);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("tansu"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = Path::new(&home).join(".cargo/bin/tansu");
        p.is_file().then_some(p)
    })
}

/// A running broker of either kind. Dropping it stops the broker.
#[derive(Debug)]
pub enum Broker {
    /// The in-process mock; see [`Broker::mock`] for fault injection.
    Mock(MockBroker),
    /// A Tansu child process.
    Tansu(TansuBroker),
}

impl Broker {
    /// Starts a broker of `kind`: a one-node mock, or Tansu logging into
    /// `dir/tansu.log`.
    pub fn start(kind: BrokerKind, dir: &Path) -> Broker {
        match kind {
            BrokerKind::Mock => Broker::start_mock(1),
            BrokerKind::Tansu => Broker::start_tansu(dir),
        }
    }

    /// Starts a mock cluster of `brokers` nodes (3 lets tests take one down
    /// and move partition leadership).
    pub fn start_mock(brokers: i32) -> Broker {
        Broker::Mock(MockBroker::start(brokers))
    }

    /// Starts Tansu on a free loopback port; see [`TansuBroker::start`].
    pub fn start_tansu(dir: &Path) -> Broker {
        Broker::Tansu(TansuBroker::start(dir))
    }

    /// The `bootstrap.servers` list for clients and the daemon config.
    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Mock(m) => m.bootstrap(),
            Broker::Tansu(t) => t.bootstrap(),
        }
    }

    /// Creates `name` with `partitions` partitions and waits until every
    /// partition has a leader in metadata, so a producer started next does
    /// not race topic creation.
    ///
    /// # Panics
    /// If creation fails or the topic is not ready within 15 s.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        match self {
            Broker::Mock(m) => m.create_topic(name, partitions),
            Broker::Tansu(t) => t.create_topic(name, partitions),
        }
        wait_for_topic(&self.bootstrap(), name, partitions);
    }

    /// The broker's kind.
    pub fn broker_kind(&self) -> BrokerKind {
        match self {
            Broker::Mock(_) => BrokerKind::Mock,
            Broker::Tansu(_) => BrokerKind::Tansu,
        }
    }

    /// `"mock"` or `"tansu"`.
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
            Broker::Tansu(_) => None,
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

/// A Tansu broker process with in-memory storage, listening on a free
/// 127.0.0.1 port. Its output goes to `tansu.log` in the test dir.
///
/// Stopped by PID on drop (SIGTERM, SIGKILL after 5 s, reaped), also when
/// the test panics. Tansu does not auto-create topics and does not implement
/// transactions.
#[derive(Debug)]
pub struct TansuBroker {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl TansuBroker {
    /// Starts Tansu and waits until it answers a metadata request.
    ///
    /// # Panics
    /// If Tansu is not installed, exits early (three times, each on a new
    /// port), or does not answer within 30 s; the tail of its log is printed.
    pub fn start(dir: &Path) -> TansuBroker {
        let bin = tansu_bin().expect("Tansu binary (see brokers_under_test)");
        let log = dir.join("tansu.log");
        // A port from a closed listener can be taken again before Tansu binds
        // it; a retry with a new port makes that race harmless.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = free_port();
            let mut cmd = tansu_command(&bin, port);
            let child = process::spawn_logged(&mut cmd, &log);
            let mut broker = TansuBroker {
                child,
                port,
                log: log.clone(),
            };
            match broker.wait_ready() {
                Ok(()) => return broker,
                Err(e) if attempts < 3 && e.exited => {
                    eprintln!("tansu exited during startup ({}), retrying", e.reason);
                }
                // The handle's Drop, running during this panic, prints the
                // tail of Tansu's log.
                Err(e) => panic!(
                    "tansu on port {port} not ready: {} (log: {})",
                    e.reason,
                    log.display()
                ),
            }
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Freezes the broker process (SIGSTOP): connections stay open but
    /// nothing answers, as with a hung or partitioned broker. (Killing and
    /// restarting Tansu 0.6 is no substitute: after a restart on SQLite
    /// storage it panics on the first idempotent produce of a known
    /// producer.)
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws a [`pause`](Self::pause)d broker (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid of our own child and a valid signal.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Tansu's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn create_topic(&self, name: &str, partitions: i32) {
        create_topic_with_admin(&self.bootstrap(), name, partitions);
    }

    /// Polls metadata until Tansu answers with at least one broker, or fails
    /// early if the process exits.
    fn wait_ready(&mut self) -> Result<(), NotReady> {
        let deadline = Instant::now() + TANSU_READY_TIMEOUT;
        let client: BaseConsumer = client_config(&self.bootstrap())
            .create()
            .expect("metadata client");
        let mut last = String::from("no answer yet");
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(NotReady {
                    reason: format!("exited with {status}; last error: {last}"),
                    exited: true,
                });
            }
            match client.fetch_metadata(None, Duration::from_millis(500)) {
                Ok(md) if !md.brokers().is_empty() => return Ok(()),
                Ok(_) => last = "metadata lists no brokers".to_owned(),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(NotReady {
                    reason: format!("no metadata within {TANSU_READY_TIMEOUT:?}: {last}"),
                    exited: false,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        let status = process::terminate(&mut self.child, Duration::from_secs(5));
        if std::thread::panicking() {
            eprintln!(
                "--- tansu pid {} ({}), last lines of {} ---\n{}\n---",
                self.child.id(),
                status.map_or_else(|| "killed".to_owned(), |s| s.to_string()),
                self.log.display(),
                process::log_tail(&self.log, 20)
            );
        }
    }
}

/// Why Tansu did not come up.
struct NotReady {
    reason: String,
    /// The process exited (maybe the port was taken): worth a retry.
    exited: bool,
}

/// The Tansu 0.6 command line: one listener on loopback, advertised as
/// itself, in-memory storage (each test gets an empty broker and nothing
/// touches disk). 0.6 opens no other port (no metrics listener).
///
/// Tansu also reads its settings from environment variables; those that
/// could send it elsewhere are removed so the test environment cannot leak in.
fn tansu_command(bin: &Path, port: u16) -> Command {
    let url = format!("tcp://127.0.0.1:{port}");
    let mut cmd = Command::new(bin);
    cmd.arg("broker")
        .arg("--listener-url")
        .arg(&url)
        .arg("--advertised-listener-url")
        .arg(&url)
        .arg("--storage-engine")
        .arg("memory://tansu/");
    for var in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "SCHEMA_REGISTRY",
        "CLUSTER_ID",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
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
fn create_topic_with_admin(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
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
