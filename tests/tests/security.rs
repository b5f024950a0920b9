//! TLS and SASL against a real Apache Kafka, and brokers that are not what
//! the configuration says: the daemon delivers over TLS with host-name
//! verification on; a wrong CA, a host-name mismatch, a wrong password, a
//! closed port, a port that is not Kafka and TLS spoken to a plaintext port
//! each fail promptly with an error naming the broker and the cause, in the
//! log and in `/ready`; a password from `${file:…}` is never shown.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use tributary_tests::*;

/// How long a misconfigured connection may take to be reported.
const PROMPT: Duration = Duration::from_secs(20);

/// The shared broker and its TLS listeners, or `None` (with the harness's
/// note) where Apache Kafka or openssl cannot run.
fn secure_kafka() -> Option<(&'static KafkaBroker, &'static SecureListeners)> {
    if !brokers_under_test().contains(&BrokerKind::Kafka) || !openssl_available() {
        return None;
    }
    let kafka = shared_kafka();
    let secure = kafka.secure().expect("the shared broker has TLS listeners");
    Some((kafka, secure))
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}

/// A spec for `bootstrap` with HTTP on and one datagen source `orders`
/// producing `count` records into `topic`.
fn spec(dir: &TempDir, bootstrap: &str, topic: &str, count: u64) -> ConfigSpec {
    ConfigSpec::new(bootstrap, dir.path()).with_http().drop_in(
        "orders.toml",
        datagen_source("orders", topic, count, 5_000, 11),
    )
}

/// Runs `spec` until its source has committed `count` records, stops it
/// with SIGTERM, and returns the daemon log; the oracle must then find the
/// records exactly once.
fn delivers(dir: &TempDir, broker: &Broker, topic: &str, spec: &ConfigSpec, count: u64) -> String {
    let config = write_config(dir.path(), spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let done = wait_until(Duration::from_secs(60), || {
        committed_seq(&dir.join("offsets"), "orders") == Some(count)
    });
    assert!(done, "nothing delivered:\n{}", daemon.log_text());
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let report = consume_seqs(&broker.bootstrap(), topic, count, Duration::from_secs(60));
    assert!(report.exactly_once(), "{report}");
    daemon.log_text()
}

/// What a daemon that cannot reach Kafka showed.
struct Failure {
    log: String,
    ready: serde_json::Value,
    elapsed: Duration,
}

/// Starts `spec`, waits until `/ready` explains the broken connection with
/// every string of `cause`, checks the log says it at error or warn level,
/// that nothing was committed, and that SIGTERM still stops the daemon
/// promptly.
fn fails_clearly(dir: &TempDir, spec: &ConfigSpec, cause: &[&str]) -> Failure {
    let config = write_config(dir.path(), spec);
    let address = spec.http_address().expect("HTTP is on");
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let started = Instant::now();
    let mut ready = serde_json::Value::Null;
    let explained = wait_until(PROMPT, || {
        // Whatever answers once the daemon is gone is not the daemon.
        assert!(
            daemon.is_running(),
            "the daemon exited instead of waiting for Kafka:\n{}",
            daemon.log_text()
        );
        let Ok(reply) = http_request(&address, "GET", "/ready", &[]) else {
            return false;
        };
        ready = reply.json();
        let error = ready["checks"]["kafka_reachable"]["error"]
            .as_str()
            .unwrap_or_default();
        reply.status == 503 && cause.iter().all(|c| error.contains(c))
    });
    let elapsed = started.elapsed();
    assert!(
        explained,
        "/ready does not say {cause:?} within {PROMPT:?}: {ready}\n{}",
        daemon.log_text()
    );
    let log = daemon.log_text();
    assert!(
        log.lines()
            .any(|l| (l.contains("ERROR") || l.contains("WARN"))
                && cause.iter().all(|c| l.contains(c))),
        "no log line says {cause:?}:\n{log}"
    );
    assert_eq!(
        committed_seq(&dir.join("offsets"), "orders"),
        None,
        "an offset was committed without a broker"
    );
    let stop = Instant::now();
    let status = daemon.sigterm_and_wait(Duration::from_secs(40));
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM: {status:?}\n{}",
        daemon.log_text()
    );
    eprintln!(
        "{cause:?}: explained after {elapsed:?}, stopped in {:?}: {}",
        stop.elapsed(),
        ready["checks"]["kafka_reachable"]["error"]
    );
    Failure {
        log: daemon.log_text(),
        ready,
        elapsed,
    }
}

#[test]
fn tls_delivers_with_host_name_verification_on() {
    let Some((kafka, secure)) = secure_kafka() else {
        return;
    };
    let dir = TempDir::new("tls-ok");
    let broker = Broker::on_kafka(kafka);
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 3);
    let spec = spec(&dir, &secure.ssl, &topic, 3_000)
        .kafka_option("security.protocol", "SSL")
        .kafka_option("ssl.ca.location", path_str(&secure.ca));
    let log = delivers(&dir, &broker, &topic, &spec, 3_000);
    assert!(!log.contains("verification are off"), "{log}");
}

#[test]
fn a_certificate_from_another_ca_fails_naming_the_broker() {
    let Some((kafka, secure)) = secure_kafka() else {
        return;
    };
    let dir = TempDir::new("tls-wrong-ca");
    let other = Ca::new(&dir.join("other-ca"), "other");
    let broker = Broker::on_kafka(kafka);
    let topic = broker.topic("orders");
    let spec = spec(&dir, &secure.ssl, &topic, 100)
        .kafka_option("security.protocol", "SSL")
        .kafka_option("ssl.ca.location", path_str(&other.cert));
    fails_clearly(&dir, &spec, &[&secure.ssl, "certificate verify failed"]);
}

#[test]
fn a_host_name_the_certificate_does_not_name_fails() {
    let Some((kafka, secure)) = secure_kafka() else {
        return;
    };
    // The certificate names IP 127.0.0.1 only; `localhost` reaches the same
    // listener under a name it does not carry.
    let dir = TempDir::new("tls-host-name");
    let port = secure.ssl.rsplit_once(':').expect("host:port").1;
    let by_name = format!("localhost:{port}");
    let broker = Broker::on_kafka(kafka);
    let topic = broker.topic("orders");
    let spec = spec(&dir, &by_name, &topic, 100)
        .kafka_option("security.protocol", "SSL")
        .kafka_option("ssl.ca.location", path_str(&secure.ca));
    fails_clearly(&dir, &spec, &[&by_name, "certificate verify failed"]);
}

#[test]
fn turning_verification_off_takes_a_key_that_names_the_risk() {
    let dir = TempDir::new("tls-insecure");
    // The librdkafka properties are refused, pointing at the named key.
    for (property, value) in [
        ("enable.ssl.certificate.verification", "false"),
        ("ssl.endpoint.identification.algorithm", "none"),
    ] {
        let spec = ConfigSpec::new("127.0.0.1:9", dir.path()).kafka_option(property, value);
        let config = write_config(dir.path(), &spec);
        let out = run_cli(
            &["validate", "--config", path_str(&config)],
            Duration::from_secs(30),
        );
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(
            text.contains(&format!("kafka.options.{property}"))
                && text.contains("kafka.insecure_skip_tls_verify = true"),
            "{text}"
        );
    }
    let Some((kafka, secure)) = secure_kafka() else {
        return;
    };
    // With the key, a certificate from an unknown CA under a name it does
    // not carry is accepted, and the log says what that means.
    let other = Ca::new(&dir.join("other-ca"), "other");
    let port = secure.ssl.rsplit_once(':').expect("host:port").1;
    let broker = Broker::on_kafka(kafka);
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 3);
    let spec = spec(&dir, &format!("localhost:{port}"), &topic, 1_000)
        .kafka_key("insecure_skip_tls_verify = true")
        .kafka_option("security.protocol", "SSL")
        .kafka_option("ssl.ca.location", path_str(&other.cert));
    let log = delivers(&dir, &broker, &topic, &spec, 1_000);
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("verification are off")),
        "{log}"
    );
}

/// A password no other text of the run contains by chance.
fn password(label: &str) -> String {
    format!("{label}-{:016x}", test_seed())
}

#[test]
fn sasl_scram_over_tls_delivers_and_never_shows_the_password() {
    let Some((kafka, secure)) = secure_kafka() else {
        return;
    };
    let dir = TempDir::new("sasl");
    let secret = password("s3cret");
    kafka.add_scram_user("ingest", &secret);
    let password_file = dir.join("kafka-password");
    std::fs::write(&password_file, format!("{secret}\n")).unwrap();
    let broker = Broker::on_kafka(kafka);
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 3);
    let count = 3_000;
    let spec = spec(&dir, &secure.sasl_ssl, &topic, count)
        .kafka_option("security.protocol", "SASL_SSL")
        .kafka_option("ssl.ca.location", path_str(&secure.ca))
        .kafka_option("sasl.mechanism", "SCRAM-SHA-512")
        .kafka_option("sasl.username", "ingest")
        .kafka_option(
            "sasl.password",
            &format!("${{file:{}}}", path_str(&password_file)),
        )
        // librdkafka's own debug output is where a careless client would
        // print its configuration.
        .kafka_option("debug", "security,conf");
    let address = spec.http_address().expect("HTTP is on");
    let config = write_config(dir.path(), &spec);
    let mut daemon = Daemon::start_with_env(
        &config,
        &dir.join("daemon.log"),
        &[],
        &[("RUST_LOG", std::ffi::OsStr::new("debug,librdkafka=debug"))],
    );
    let done = wait_until(Duration::from_secs(60), || {
        committed_seq(&dir.join("offsets"), "orders") == Some(count)
    });
    assert!(done, "nothing delivered:\n{}", daemon.log_text());
    // Everything the daemon shows an operator.
    let mut shown = Vec::new();
    for path in [
        "/metrics",
        "/ready",
        "/health",
        "/api/v1/sources",
        "/api/v1/sources/orders",
        "/api/v1/sources/orders/offsets",
        "/api/v1/sources/nonexistent",
        "/api/v1/nonexistent",
    ] {
        shown.push((path.to_owned(), http_get(&address, path).body));
    }
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let report = consume_seqs(&broker.bootstrap(), &topic, count, Duration::from_secs(60));
    assert!(report.exactly_once(), "{report}");
    shown.push(("daemon log".to_owned(), daemon.log_text()));
    let validate = run_cli(
        &["validate", "--config", path_str(&config)],
        Duration::from_secs(30),
    );
    assert!(validate.status.success(), "{}", output_text(&validate));
    shown.push(("validate".to_owned(), output_text(&validate)));
    // An error in the same file: validate reports it, still without the
    // password.
    let broken = spec.clone().kafka_key("drain_timeout_ms = \"soon\"");
    let config = write_config(dir.path(), &broken);
    let invalid = run_cli(
        &["validate", "--config", path_str(&config)],
        Duration::from_secs(30),
    );
    assert_eq!(invalid.status.code(), Some(2), "{}", output_text(&invalid));
    shown.push(("validate with an error".to_owned(), output_text(&invalid)));
    // The wrong password, and what the daemon says about it.
    let wrong = password("wr0ng");
    std::fs::write(&password_file, format!("{wrong}\n")).unwrap();
    let failure_dir = TempDir::new("sasl-wrong");
    let spec = spec.clone().kafka_option(
        "sasl.password",
        &format!("${{file:{}}}", path_str(&password_file)),
    );
    let failure = fails_clearly(
        &failure_dir,
        &ConfigSpec {
            offsets_dir: failure_dir.join("offsets"),
            ..spec.with_http()
        },
        &[&secure.sasl_ssl, "Authentication failed"],
    );
    assert!(failure.elapsed < PROMPT, "{:?}", failure.elapsed);
    shown.push(("wrong-password log".to_owned(), failure.log));
    shown.push((
        "wrong-password /ready".to_owned(),
        failure.ready.to_string(),
    ));
    for (what, text) in &shown {
        for secret in [&secret, &wrong] {
            assert!(
                !text.contains(secret.as_str()),
                "{what} shows the password:\n{text}"
            );
        }
    }
}

#[test]
fn a_closed_port_fails_naming_the_address() {
    let dir = TempDir::new("bad-closed-port");
    let address = format!("127.0.0.1:{}", free_port());
    let spec = spec(&dir, &address, "orders", 100);
    fails_clearly(&dir, &spec, &[&address, "Connection refused"]);
}

/// A loopback server that answers every connection with an HTTP error and
/// closes it: something that is not Kafka on the configured port.
fn not_kafka() -> (
    String,
    std::thread::JoinHandle<()>,
    std::sync::mpsc::Sender<()>,
) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        while stopped.try_recv().is_err() {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
                    let _ = conn.read(&mut [0u8; 512]);
                    let _ = conn.write_all(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (address, server, stop)
}

#[test]
fn a_port_that_is_not_kafka_fails_naming_the_address() {
    let dir = TempDir::new("bad-not-kafka");
    let (address, server, stop) = not_kafka();
    let spec = spec(&dir, &address, "orders", 100);
    let failure = fails_clearly(&dir, &spec, &[&address]);
    let _ = stop.send(());
    server.join().unwrap();
    let error = failure.ready["checks"]["kafka_reachable"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("does not answer like a Kafka broker"),
        "the cause is not named: {error}"
    );
}

#[test]
fn tls_spoken_to_a_plaintext_port_fails_naming_the_address() {
    let Some((kafka, _)) = secure_kafka() else {
        return;
    };
    let dir = TempDir::new("bad-tls-to-plaintext");
    let spec = spec(&dir, kafka.bootstrap(), "orders", 100)
        .kafka_option("security.protocol", "SSL")
        .kafka_option("ssl.ca.location", "/etc/ssl/certs/ca-certificates.crt");
    fails_clearly(&dir, &spec, &[kafka.bootstrap(), "SSL handshake failed"]);
}

#[test]
fn an_unknown_sasl_mechanism_is_refused_at_start_and_by_validate() {
    let dir = TempDir::new("bad-sasl-mechanism");
    let spec = ConfigSpec::new("127.0.0.1:9", dir.path())
        .kafka_option("security.protocol", "SASL_PLAINTEXT")
        .kafka_option("sasl.mechanism", "SCRAM-SHA-1024")
        .drop_in(
            "orders.toml",
            datagen_source("orders", "orders", 100, 100, 1),
        );
    let config = write_config(dir.path(), &spec);
    for command in ["validate", "run"] {
        let out = run_cli(
            &[command, "--config", path_str(&config)],
            Duration::from_secs(30),
        );
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {text}");
        assert!(
            text.contains("sasl.mechanism") && text.contains("SCRAM-SHA-1024"),
            "{command}: {text}"
        );
    }
}
