//! The HTTP endpoint of a running daemon: what Prometheus scrapes matches
//! what reached Kafka, readiness follows the broker, the source API changes
//! state without losing records, and hostile clients are bounded.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tributary_tests::*;

/// Starts the daemon on `spec` (which must have HTTP on) and waits until
/// `/health` answers.
fn start(dir: &TempDir, spec: &ConfigSpec) -> (Daemon, String) {
    let config = write_config(dir.path(), spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let address = spec.http_address().expect("HTTP is on");
    let up = wait_until(Duration::from_secs(60), || {
        http_request(&address, "GET", "/health", &[]).is_ok_and(|r| r.status == 200)
    });
    assert!(
        up && daemon.is_running(),
        "no /health:\n{}",
        daemon.log_text()
    );
    (daemon, address)
}

/// The state of `source` as the API reports it.
fn state(address: &str, source: &str) -> String {
    let reply = http_get(address, &format!("/api/v1/sources/{source}"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn wait_state(daemon: &Daemon, address: &str, source: &str, wanted: &str) {
    assert!(
        wait_until(Duration::from_secs(60), || state(address, source) == wanted),
        "{source} never became {wanted} (is {}):\n{}",
        state(address, source),
        daemon.log_text()
    );
}

fn produced(address: &str, source: &str) -> u64 {
    http_get(address, &format!("/api/v1/sources/{source}")).json()["records_produced"]
        .as_u64()
        .unwrap_or_default()
}

fn dashboard_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/grafana/tributary.json")
}

/// Every query of the dashboard: panel targets' `expr` and the templating
/// variables' queries.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(dashboard_path()).expect("read the dashboard");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut queries = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                        ("query" | "definition", serde_json::Value::String(q))
                            if q.contains("label_values(") =>
                        {
                            out.push(q.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    walk(&json, &mut queries);
    assert!(
        json["templating"]["list"]
            .as_array()
            .is_some_and(|l| l.iter().any(|v| v["type"] == "datasource")),
        "the dashboard has no datasource variable"
    );
    assert!(
        text.contains("${datasource}"),
        "panels do not use ${{datasource}}"
    );
    queries
}

/// Metric names a PromQL expression reads: identifiers that are not inside
/// a label matcher or quotes, and not functions, keywords or label lists.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const NOT_METRICS: &[&str] = &[
        "sum",
        "max",
        "min",
        "avg",
        "count",
        "rate",
        "increase",
        "irate",
        "by",
        "without",
        "or",
        "and",
        "unless",
        "on",
        "ignoring",
        "vector",
        "histogram_quantile",
        "label_values",
        "delta",
        "deriv",
        "abs",
        "topk",
        "bottomk",
        "group_left",
        "group_right",
        "bool",
        "offset",
    ];
    let mut names = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let (mut i, mut braces, mut quoted, mut label_list) = (0, 0, false, false);
    while i < chars.len() {
        let c = chars[i];
        if quoted {
            if c == '"' {
                quoted = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => quoted = true,
            '{' => braces += 1,
            '}' => braces -= 1,
            '[' => {
                // A range: `[5m]`, `[$__rate_interval]`.
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
            }
            ')' => label_list = false,
            c if c.is_ascii_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_:$".contains(chars[i]))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
                if word == "by" || word == "without" || word == "on" || word == "ignoring" {
                    label_list = true;
                } else if braces == 0
                    && !label_list
                    && !word.starts_with('$')
                    && next != Some('(')
                    && !NOT_METRICS.contains(&word.as_str())
                {
                    names.insert(word);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // `label_values(metric, label)`: the second argument is a label.
    if let Some(inner) = expr.strip_prefix("label_values(") {
        let label = inner.rsplit(',').next().unwrap_or_default();
        names.remove(label.trim_end_matches(')').trim());
    }
    names
}

/// The sample names in a Prometheus exposition.
fn exported_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// A spec for a mock broker with HTTP on, statistics every second (so the
/// librdkafka metrics exist), and one datagen source `orders`.
fn spec_with_orders(broker: &Broker, dir: &TempDir, count: u64, rate: u64) -> ConfigSpec {
    ConfigSpec::new(&broker.bootstrap(), dir.path())
        .with_http()
        .kafka_option("statistics.interval.ms", "1000")
        .drop_in(
            "orders.toml",
            datagen_source("orders", &broker.topic("orders"), count, rate, 5),
        )
}

#[test]
fn metric_name_extraction_finds_metrics_not_functions_or_labels() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (source, le) (rate(a_bucket{source=~"$source", x="b c"}[$__rate_interval]))) / on (source) b_total or vector(0)"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["a_bucket".to_owned(), "b_total".to_owned()])
    );
    assert_eq!(
        metric_names("label_values(tributary_source_state{instance=~\"$instance\"}, source)"),
        BTreeSet::from(["tributary_source_state".to_owned()])
    );
}

#[test]
fn prometheus_scrape_matches_the_oracle_count() {
    let Some(prometheus_bin) = prometheus_bin() else {
        return;
    };
    let dir = TempDir::new("http-prometheus");
    let _turn = kafka_turn();
    let broker = Broker::start(broker_of_record(), dir.path());
    broker.create_topic(&broker.topic("orders"), 4);
    let count = 8_000;
    let spec = spec_with_orders(&broker, &dir, count, 4_000);
    let (daemon, address) = start(&dir, &spec);
    let prometheus = Prometheus::start(&prometheus_bin, dir.path(), std::slice::from_ref(&address));
    assert!(
        wait_until(Duration::from_secs(60), || {
            committed_seq(&dir.join("offsets"), "orders") == Some(count)
        }),
        "the source did not finish:\n{}",
        daemon.log_text()
    );
    let report = consume_seqs(
        &broker.bootstrap(),
        &broker.topic("orders"),
        count,
        Duration::from_secs(60),
    );
    assert!(report.exactly_once(), "{report}");
    // Prometheus scrapes every second; wait until it has scraped the
    // final count, and require it to equal what the oracle read.
    let query = r#"tributary_source_produced_records_total{source="orders"}"#;
    let mut seen = Vec::new();
    let matched = wait_until(Duration::from_secs(60), || {
        seen = prometheus.query(query);
        seen.first().is_some_and(|(_, v)| *v == report.total as f64)
    });
    assert!(
        matched,
        "Prometheus says {seen:?}, the oracle read {} records",
        report.total
    );
    assert_eq!(seen.len(), 1, "one series per source: {seen:?}");
    assert_eq!(seen[0].0["plugin"], "datagen", "{seen:?}");
    // Every dashboard query is valid PromQL to a real Prometheus, once
    // Grafana's variables are filled in.
    for expr in dashboard_queries() {
        if expr.starts_with("label_values(") {
            continue;
        }
        let filled = expr
            .replace("$__rate_interval", "1m")
            .replace("$__range", "5m")
            .replace("$__interval", "1m")
            .replace("$source", ".*")
            .replace("$instance", ".*");
        // `query` panics unless Prometheus accepts the expression.
        prometheus.query(&filled);
    }
}

#[test]
fn metrics_pass_promtool_and_cover_the_dashboard() {
    let dir = TempDir::new("http-metrics");
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 4);
    broker.create_topic("logs", 1);
    // Beside datagen (lag in rows), a log file source (lag in bytes), so
    // both lag families have samples.
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("create the log directory");
    append_seqs(&logs.join("app.log"), 0..10);
    let include = logs.join("*.log");
    let spec = spec_with_orders(&broker, &dir, 100_000_000, 500).drop_in(
        "logs.toml",
        logfile_source(
            "app-logs",
            &broker.topic("logs"),
            include.to_str().expect("a UTF-8 path"),
            "",
        ),
    );
    let (daemon, address) = start(&dir, &spec);
    // Wait for a commit, a delivered batch, both lags and librdkafka
    // statistics, so every family has samples.
    let ready = wait_until(Duration::from_secs(60), || {
        let text = http_get(&address, "/metrics").body;
        metric_value(
            &text,
            r#"tributary_source_offset_commits_total{plugin="datagen",source="orders"}"#,
        )
        .is_some_and(|v| v > 0.0)
            && text.contains("tributary_kafka_broker_rtt_seconds{")
            && text.contains("tributary_source_lag_rows{")
            && text.contains("tributary_source_lag_bytes{")
    });
    let reply = http_get(&address, "/metrics");
    assert!(
        ready,
        "metrics never filled in:\n{}\n{}",
        reply.body,
        daemon.log_text()
    );
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        reply.headers
    );
    let exported = exported_names(&reply.body);

    // Labels come from bounded sets only: never a path or a value.
    for line in reply.body.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains('/') || line.starts_with("tributary_build_info"),
            "a label looks like a path: {line}"
        );
    }

    if let Some(promtool) = promtool_bin() {
        let mut child = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn promtool");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(reply.body.as_bytes())
            .expect("write to promtool");
        let out = child.wait_with_output().expect("promtool runs");
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool check metrics: {:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut checked = 0;
    for expr in dashboard_queries() {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "no metric in dashboard query {expr}");
        for name in names {
            assert!(
                exported.contains(&name),
                "dashboard query `{expr}` reads `{name}`, which the daemon does not export; \
                 exported: {exported:?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} metric references checked");
}

#[test]
fn ready_follows_the_broker() {
    let dir = TempDir::new("http-ready");
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 4);
    let spec = spec_with_orders(&broker, &dir, 100_000_000, 200)
        // Deliveries fail quickly while the broker is away.
        .kafka_option("message.timeout.ms", "2000");
    let (daemon, address) = start(&dir, &spec);
    let ready = |want: bool| {
        wait_until(Duration::from_secs(90), || {
            let reply = http_get(&address, "/ready");
            (reply.status == 200) == want && reply.json()["ready"] == want
        })
    };
    assert!(
        ready(true),
        "never ready:\n{}",
        http_get(&address, "/ready").body
    );

    broker.mock().broker_down(1).expect("broker down");
    // Unready, and the body names the broker as the failed check (the
    // source may fail too once its deliveries time out).
    let mut body = serde_json::Value::Null;
    let unready = wait_until(Duration::from_secs(90), || {
        let reply = http_get(&address, "/ready");
        body = reply.json();
        reply.status == 503
            && body["ready"] == false
            && body["checks"]["kafka_reachable"]["ok"] == false
    });
    assert!(unready, "the broker's absence is not reported: {body}");
    assert!(
        body["checks"]["kafka_reachable"]["error"].is_string(),
        "{body}"
    );
    assert_eq!(body["checks"]["config_loaded"]["ok"], true, "{body}");

    broker.mock().broker_up(1).expect("broker up");
    assert!(
        ready(true),
        "not ready again after the broker returned:\n{}\n{}",
        http_get(&address, "/ready").body,
        daemon.log_text()
    );
}

/// The Apache Kafka tests of this binary take turns: one of them freezes
/// the broker.
fn kafka_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

#[test]
fn ready_follows_a_real_broker_process() {
    if !brokers_under_test().contains(&BrokerKind::Kafka) {
        return;
    }
    let dir = TempDir::new("http-ready-kafka");
    let _turn = kafka_turn();
    let broker = Broker::start(BrokerKind::Kafka, dir.path());
    broker.create_topic(&broker.topic("orders"), 3);
    let kafka = broker.kafka();
    let spec = spec_with_orders(&broker, &dir, 100_000_000, 200)
        .kafka_option("message.timeout.ms", "2000");
    let (_daemon, address) = start(&dir, &spec);
    let ready = |want: bool| {
        wait_until(Duration::from_secs(90), || {
            http_get(&address, "/ready").json()["ready"] == want
        })
    };
    assert!(ready(true), "{}", http_get(&address, "/ready").body);
    kafka.pause();
    let mut body = serde_json::Value::Null;
    let unready = wait_until(Duration::from_secs(90), || {
        body = http_get(&address, "/ready").json();
        body["ready"] == false && body["checks"]["kafka_reachable"]["ok"] == false
    });
    kafka.resume();
    assert!(unready, "the stopped broker is not reported: {body}");
    assert!(ready(true), "{}", http_get(&address, "/ready").body);
}

#[test]
fn pause_resume_and_restart_lose_and_repeat_nothing() {
    let dir = TempDir::new("http-control");
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 4);
    let count = 20_000;
    let spec = spec_with_orders(&broker, &dir, count, 2_000);
    let (daemon, address) = start(&dir, &spec);
    wait_state(&daemon, &address, "orders", "running");
    assert!(wait_until(Duration::from_secs(30), || produced(
        &address, "orders"
    ) > 0));

    let reply = http_request(&address, "POST", "/api/v1/sources/orders/pause", &[]).unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    wait_state(&daemon, &address, "orders", "paused");
    // Paused means drained: nothing in flight, and nothing more produced.
    let at_pause = produced(&address, "orders");
    let view = http_get(&address, "/api/v1/sources/orders").json();
    assert_eq!(view["records_in_flight"], 0, "{view}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        produced(&address, "orders"),
        at_pause,
        "produced while paused"
    );
    // /ready treats an operator's pause as intended.
    assert!(wait_until(Duration::from_secs(30), || {
        http_get(&address, "/ready").status == 200
    }));

    let reply = http_request(&address, "POST", "/api/v1/sources/orders/resume", &[]).unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    wait_state(&daemon, &address, "orders", "running");
    assert!(wait_until(Duration::from_secs(30), || {
        produced(&address, "orders") > at_pause
    }));

    let before_restart = produced(&address, "orders");
    let reply = http_request(&address, "POST", "/api/v1/sources/orders/restart", &[]).unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(
        wait_until(Duration::from_secs(30), || {
            daemon.log_text().contains("Source restarting on request.")
        }),
        "{}",
        daemon.log_text()
    );
    wait_state(&daemon, &address, "orders", "running");
    assert!(wait_until(Duration::from_secs(30), || {
        produced(&address, "orders") > before_restart
    }));

    // Unknown sources and wrong methods say so in JSON.
    let reply = http_request(&address, "POST", "/api/v1/sources/nope/pause", &[]).unwrap();
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"].as_str().unwrap().contains("nope"));
    let reply = http_get(&address, "/api/v1/sources/orders/pause");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = http_get(&address, "/no/such/path");
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"].is_string());

    assert!(
        wait_until(Duration::from_secs(120), || state(&address, "orders")
            == "finished"),
        "{}",
        daemon.log_text()
    );
    let report = consume_seqs(
        &broker.bootstrap(),
        "orders",
        count,
        Duration::from_secs(60),
    );
    assert!(report.exactly_once(), "{report}");
    assert_eq!(produced(&address, "orders"), report.total);
}

#[test]
fn offsets_are_shown_and_reset_only_when_the_source_is_not_running() {
    let dir = TempDir::new("http-offsets");
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 4);
    let count = 3_000;
    let spec = spec_with_orders(&broker, &dir, count, 1_000);
    let (daemon, address) = start(&dir, &spec);
    wait_state(&daemon, &address, "orders", "running");
    let reply = http_request(&address, "DELETE", "/api/v1/sources/orders/offsets", &[]).unwrap();
    assert_eq!(reply.status, 409, "{}", reply.body);

    wait_state(&daemon, &address, "orders", "finished");
    let offsets = http_get(&address, "/api/v1/sources/orders/offsets").json();
    // datagen's checkpoint: the next sequence number, little-endian u64.
    let expected_hex: String = count
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        offsets["offsets"][0]["checkpoint_hex"], expected_hex,
        "{offsets}"
    );
    let view = http_get(&address, "/api/v1/sources/orders").json();
    assert_eq!(view["offsets"], offsets["offsets"], "{view}");

    let reply = http_request(&address, "DELETE", "/api/v1/sources/orders/offsets", &[]).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let offsets = http_get(&address, "/api/v1/sources/orders/offsets").json();
    assert_eq!(offsets["offsets"], serde_json::json!([]), "{offsets}");

    // Run again: from the beginning, so every record is there twice.
    let reply = http_request(&address, "POST", "/api/v1/sources/orders/restart", &[]).unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(wait_until(Duration::from_secs(60), || {
        produced(&address, "orders") == 2 * count && state(&address, "orders") == "finished"
    }));
    let report = consume_seqs(
        &broker.bootstrap(),
        "orders",
        count,
        Duration::from_secs(60),
    );
    assert!(report.nothing_missing(), "{report}");
    assert_eq!(report.duplicated, count, "{report}");
}

#[test]
fn state_changing_calls_need_the_configured_token() {
    let dir = TempDir::new("http-token");
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 4);
    let token_file = dir.join("http-token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let mut spec = spec_with_orders(&broker, &dir, 100_000_000, 200);
    // By reference, as secrets are configured.
    spec.http_token = Some(format!("${{file:{}}}", token_file.display()));
    let (daemon, address) = start(&dir, &spec);
    let path = "/api/v1/sources/orders/pause";
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong")],
        vec![("Authorization", "s3cret-token")],
    ] {
        let reply = http_request(&address, "POST", path, &headers).unwrap();
        assert_eq!(reply.status, 401, "{headers:?}: {}", reply.body);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
    // Refused calls changed nothing.
    wait_state(&daemon, &address, "orders", "running");
    // Reading needs no token.
    assert_eq!(http_get(&address, "/api/v1/sources").status, 200);
    let reply = http_request(
        &address,
        "POST",
        path,
        &[("Authorization", "Bearer s3cret-token")],
    )
    .unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    wait_state(&daemon, &address, "orders", "paused");
    // The token never shows up in the log.
    assert!(!daemon.log_text().contains("s3cret-token"));
}

#[test]
fn huge_headers_and_slow_clients_are_bounded() {
    let dir = TempDir::new("http-limits");
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 4);
    let spec = spec_with_orders(&broker, &dir, 100_000_000, 500);
    let (mut daemon, address) = start(&dir, &spec);

    // A header far beyond the limit is refused, not buffered.
    let huge = "x".repeat(256 * 1024);
    match http_request(&address, "GET", "/health", &[("X-Huge", &huge)]) {
        Ok(reply) => assert_eq!(reply.status, 431, "{}", reply.body),
        // The server may also close before the client finished writing.
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        ),
    }

    // Slow clients: connections that send half a request head and stall.
    let mut stalled: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(&address).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    // Meanwhile the endpoint serves others and the pipeline produces.
    let before = produced(&address, "orders");
    assert_eq!(http_get(&address, "/health").status, 200);
    assert!(wait_until(Duration::from_secs(30), || {
        produced(&address, "orders") > before
    }));
    // The server gives up on each stalled client (header read timeout):
    // the read ends instead of waiting for ever.
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = Vec::new();
        let read = s.read_to_end(&mut buf);
        assert!(
            read.is_ok()
                || read
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "stalled connection not closed by the server: {read:?}"
        );
    }
    // A body announced beyond the limit is refused.
    let mut s = TcpStream::connect(&address).unwrap();
    s.write_all(
        b"POST /api/v1/sources/orders/pause HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 100000000\r\n\r\n",
    )
    .unwrap();
    let reply = read_reply(&mut s).unwrap();
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(daemon.is_running());
    assert_eq!(state(&address, "orders"), "running");
}

#[test]
fn a_port_in_use_fails_the_start_naming_the_address() {
    let dir = TempDir::new("http-port-in-use");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let mut spec = ConfigSpec::new("embedded", dir.path());
    spec.http_listen = address.clone();
    let config = write_config(dir.path(), &spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let status = daemon.wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "{}",
        daemon.log_text()
    );
    assert!(
        daemon
            .log_text()
            .contains(&format!("cannot listen on {address} (`[http] listen`)")),
        "{}",
        daemon.log_text()
    );
}
