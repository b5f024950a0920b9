//! Apache Kafka for tests: a single KRaft node (combined broker and
//! controller) started through `scripts/kafka run`, the script users run too.
//!
//! A JVM broker takes seconds to start, so a test binary shares one
//! ([`shared_kafka`]) and every test takes its own topics and group ids.
//! Tests that stop, restart or freeze the broker start their own
//! ([`KafkaBroker::start`]) so they cannot disturb the others.
//!
//! The broker is a child of a thread that lives as long as the test process,
//! with `PR_SET_PDEATHSIG`: a test binary killed by a CI timeout takes its
//! broker with it. A normal exit (passing or failing tests alike) stops the
//! shared broker by PID and removes its directory through `atexit`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::process;
use crate::tls::{Ca, openssl_available};

/// Set to `0` to skip the Apache Kafka variants of tests on a machine
/// without Java (never honoured when `CI=true`).
pub const KAFKA_ENV: &str = "TRIBUTARY_KAFKA";

/// How long a broker gets to answer metadata after its process starts: a
/// cold JVM on a busy 2-core machine, the first start also formats storage.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a clean broker shutdown may take before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// `scripts/kafka` in this checkout.
pub fn kafka_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .join("scripts/kafka")
}

/// Whether Apache Kafka can be run here: Java and Maven on `PATH` (the
/// script fetches the jars once), unless [`KAFKA_ENV`] is `0`.
///
/// # Panics
/// If `CI=true` and Java or Maven is missing: CI must test against the
/// real broker, and silently skipping it would turn a broken image green.
pub fn kafka_available() -> bool {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !ci && std::env::var(KAFKA_ENV).as_deref() == Ok("0") {
        return false;
    }
    let found = ["java", "mvn"].iter().all(|tool| on_path(tool));
    assert!(
        found || !ci,
        "CI=true but java or mvn is not on PATH: Apache Kafka cannot run"
    );
    found
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// The listeners of a broker started with TLS material.
#[derive(Debug, Clone)]
pub struct SecureListeners {
    /// `127.0.0.1:PORT` of the SSL listener.
    pub ssl: String,
    /// `127.0.0.1:PORT` of the SASL_SSL (SCRAM-SHA-512) listener.
    pub sasl_ssl: String,
    /// The CA that signed the broker's certificate (`ca.crt` beside it).
    pub ca: PathBuf,
}

/// One Apache Kafka node. Dropping it stops the process (by PID) and
/// removes its data directory.
#[derive(Debug)]
pub struct KafkaBroker {
    /// The instance directory: `server.properties`, log dirs, `kafka.log`.
    dir: PathBuf,
    tls: Option<PathBuf>,
    bootstrap: String,
    secure: Option<SecureListeners>,
    child: Mutex<Option<Child>>,
}

impl KafkaBroker {
    /// Starts a broker whose instance lives in `dir` (created), with an SSL
    /// and a SASL_SSL listener when `tls` names a directory holding
    /// `server.crt`, `server.key` and the `ca.crt` that signed them. Waits
    /// until it answers metadata.
    ///
    /// # Panics
    /// If the broker does not come up within 120 s; its log tail is printed.
    pub fn start(dir: &Path, tls: Option<&Path>) -> KafkaBroker {
        fetch_once();
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let mut broker = KafkaBroker {
            dir: dir.to_path_buf(),
            tls: tls.map(Path::to_path_buf),
            bootstrap: String::new(),
            secure: None,
            child: Mutex::new(None),
        };
        let child = broker.spawn();
        *broker.lock() = Some(child);
        broker.bootstrap = broker.wait_for_file("bootstrap");
        broker.secure = tls.map(|tls| {
            let listeners = broker.wait_for_file("listeners");
            let find = |name: &str| {
                listeners
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|a| a.trim().to_owned()))
                    .unwrap_or_else(|| panic!("no {name} listener in {listeners:?}"))
            };
            SecureListeners {
                ssl: find("SSL "),
                sasl_ssl: find("SASL_SSL "),
                ca: tls.join("ca.crt"),
            }
        });
        broker.wait_ready();
        broker
    }

    /// `127.0.0.1:PORT` of the plaintext listener.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The TLS listeners, if started with TLS material.
    pub fn secure(&self) -> Option<&SecureListeners> {
        self.secure.as_ref()
    }

    /// The broker's own log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("kafka.log")
    }

    /// The process id of the running broker.
    ///
    /// # Panics
    /// If it is stopped.
    pub fn pid(&self) -> u32 {
        self.lock().as_ref().expect("the broker runs").id()
    }

    /// A clean stop (SIGTERM, SIGKILL after 30 s); the data directory stays
    /// for [`start_again`](Self::start_again).
    pub fn stop(&self) {
        if let Some(mut child) = self.lock().take() {
            process::terminate(&mut child, STOP_GRACE);
        }
    }

    /// Starts the stopped broker on the same data directory and ports.
    pub fn start_again(&self) {
        let child = self.spawn();
        *self.lock() = Some(child);
        self.wait_ready();
    }

    /// Freezes the process (SIGSTOP): connections stay open, nothing
    /// answers, as with a hung broker or a partitioned network.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws a [`pause`](Self::pause)d broker (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let mut guard = self.lock();
        let child = guard.as_mut().expect("the broker runs");
        process::signal(child, signal);
    }

    /// Creates a SCRAM-SHA-512 user with Kafka's own `kafka-configs`.
    ///
    /// # Panics
    /// If the tool fails.
    pub fn add_scram_user(&self, name: &str, password: &str) {
        process::run_ok(
            Command::new(kafka_script())
                .args(["add-user", name, password])
                .env("KAFKA_DATA", &self.dir)
                .env("KAFKA_HEAP", "256m"),
        );
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn spawn(&self) -> Child {
        let mut cmd = Command::new(kafka_script());
        cmd.arg("run").env("KAFKA_DATA", &self.dir);
        match &self.tls {
            Some(tls) => cmd.env("KAFKA_TLS_DIR", tls),
            None => cmd.env_remove("KAFKA_TLS_DIR"),
        };
        // Settings of a user's own Kafka must not leak into the test broker.
        for var in [
            "KAFKA_OPTS",
            "KAFKA_HEAP_OPTS",
            "KAFKA_LOG4J_OPTS",
            "JAVA_TOOL_OPTIONS",
        ] {
            cmd.env_remove(var);
        }
        spawn_from_keeper(cmd, self.log_path())
    }

    /// The content of a file the script writes before it starts Java.
    fn wait_for_file(&self, name: &str) -> String {
        let path = self.dir.join(name);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&path)
                && !text.trim().is_empty()
            {
                return text.trim().to_owned();
            }
            self.check_alive(&format!("before writing {name}"));
            assert!(
                Instant::now() < deadline,
                "Kafka wrote no {} within {READY_TIMEOUT:?}; log:\n{}",
                path.display(),
                process::log_tail(&self.log_path(), 30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn check_alive(&self, when: &str) {
        let exited = self
            .lock()
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten());
        if let Some(status) = exited {
            panic!(
                "Kafka exited ({status}) {when}; log:\n{}",
                process::log_tail(&self.log_path(), 40)
            );
        }
    }

    /// Polls metadata until the broker lists itself, then waits until it
    /// serves idempotent producers.
    fn wait_ready(&self) {
        self.wait_for_metadata();
        self.warm_up();
    }

    /// A new broker answers metadata before it can hand out producer ids
    /// ("coordinator load in progress"); a daemon started then queues a
    /// whole file before its first acknowledgement, which is not what a
    /// test of a running broker means to measure. One idempotent record
    /// delivered proves the broker is fully up.
    fn warm_up(&self) {
        let topic = "__tributary_harness_warmup";
        let exists = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create::<BaseConsumer>()
            .expect("metadata client")
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .is_ok_and(|md| {
                md.topics()
                    .iter()
                    .any(|t| t.error().is_none() && !t.partitions().is_empty())
            });
        if !exists {
            crate::broker::create_topic_with_admin(&self.bootstrap, topic, 1);
        }
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "60000")
            .create()
            .expect("warm-up producer");
        producer
            .send(BaseRecord::<(), str>::to(topic).payload("warm-up"))
            .map_err(|(e, _)| e)
            .expect("queue the warm-up record");
        producer.flush(READY_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "Kafka at {} did not take an idempotent record: {e}",
                self.bootstrap
            )
        });
    }

    /// Polls metadata until the broker lists itself.
    fn wait_for_metadata(&self) {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", "tributary-test-harness")
            .create()
            .expect("metadata client");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive("during start");
            let last = match client.fetch_metadata(None, Duration::from_secs(1)) {
                Ok(md) if !md.brokers().is_empty() => return,
                Ok(_) => "metadata lists no brokers".to_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "Kafka at {} not ready within {READY_TIMEOUT:?}: {last}; log:\n{}",
                self.bootstrap,
                process::log_tail(&self.log_path(), 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill_and_remove(&self) {
        if let Some(mut child) = self.lock().take() {
            process::kill9(&mut child);
        }
        if std::env::var_os(crate::KEEP_ENV).is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- Kafka at {}, last lines of {} ---\n{}\n---",
                self.bootstrap,
                self.log_path().display(),
                process::log_tail(&self.log_path(), 20)
            );
        }
        self.kill_and_remove();
    }
}

/// The test binary's shared broker, started on first use. Besides its
/// plaintext listener it has an SSL and a SASL_SSL listener (a certificate
/// for `IP:127.0.0.1` from a CA made for this run) when `openssl` is here.
pub fn shared_kafka() -> &'static KafkaBroker {
    static SHARED: OnceLock<KafkaBroker> = OnceLock::new();
    extern "C" fn stop_shared() {
        if let Some(broker) = SHARED.get() {
            broker.kill_and_remove();
            // The TLS material beside the broker's directory.
            if let Some(parent) = broker.dir.parent()
                && std::env::var_os(crate::KEEP_ENV).is_none()
            {
                let _ = std::fs::remove_dir_all(parent);
            }
        }
    }
    SHARED.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tributary-kafka-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tls = dir.join("tls");
        let tls = openssl_available().then(|| {
            Ca::new(&tls, "ca").server_cert(&tls, &["IP:127.0.0.1"]);
            tls
        });
        let broker = KafkaBroker::start(&dir.join("broker"), tls.as_deref());
        // SAFETY: atexit(3) takes a plain function pointer; `stop_shared`
        // only reads a static and stops a child process.
        unsafe { libc::atexit(stop_shared) };
        broker
    })
}

/// Fetches the jars (a no-op once cached) before any start is timed: on a
/// new machine Maven takes longer than a broker start may.
///
/// # Panics
/// If the fetch fails; Maven's output is in the message.
fn fetch_once() {
    static FETCHED: OnceLock<()> = OnceLock::new();
    FETCHED.get_or_init(|| {
        process::run_ok(Command::new(kafka_script()).arg("fetch"));
    });
}

type SpawnJob = (Command, PathBuf, mpsc::Sender<Child>);

/// Spawns `cmd` (output to `log`) from a thread that never exits, so the
/// child's parent-death signal fires only when the whole test process dies,
/// not when the test thread that asked for it ends.
fn spawn_from_keeper(cmd: Command, log: PathBuf) -> Child {
    static KEEPER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (jobs, inbox) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("broker-keeper".into())
            .spawn(move || {
                for (mut cmd, log, reply) in inbox {
                    let _ = reply.send(process::spawn_logged(&mut cmd, &log));
                }
                // Every sender is a static: the loop ends only with the process.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the broker keeper thread");
        Mutex::new(jobs)
    });
    let (reply, child) = mpsc::channel();
    keeper
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send((cmd, log, reply))
        .expect("the broker keeper runs");
    child.recv().expect("the broker keeper spawned the broker")
}
