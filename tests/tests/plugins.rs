//! Plugin loading and isolation: a bad library or a panicking plugin costs
//! its own source, never the daemon or the other sources.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tributary_plugin_sdk::abi::{ABI_MAJOR, ABI_MINOR};
use tributary_tests::*;

/// How the daemon names the fixture's ABI (one major ahead) and its own.
fn abi_versions() -> (String, String) {
    (
        format!("ABI {}.0", ABI_MAJOR + 1),
        format!("ABI {ABI_MAJOR}.{ABI_MINOR}"),
    )
}

/// A plugin directory holding datagen, the future-ABI fixture and the
/// faulty fixture under the names the daemon loads (`libtributary_*.so`).
fn plugin_dir(dir: &TempDir) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for (built, installed) in [
        ("tributary_datagen", "tributary_datagen"),
        ("fixture_abi_mismatch", "tributary_future"),
        ("fixture_faulty", "tributary_faulty"),
    ] {
        let from = plugin_lib(built);
        let to = plugins.join(format!("lib{installed}.so"));
        std::fs::copy(&from, &to)
            .unwrap_or_else(|e| panic!("copy {} (build it first): {e}", from.display()));
    }
    plugins
}

#[test]
fn abi_mismatch_is_rejected() {
    let dir = TempDir::new("abi-mismatch");
    let plugins = plugin_dir(&dir);
    let future = plugins.join("libtributary_future.so");

    // Listing: the mismatched library is named with both versions, the good
    // ones are still listed.
    let out = run_cli(
        &[
            "plugins".as_ref(),
            "--plugin-dir".as_ref(),
            plugins.as_os_str(),
        ],
        Duration::from_secs(30),
    );
    let listing = output_text(&out);
    assert!(out.status.success(), "{listing}");
    let line = listing
        .lines()
        .find(|l| l.contains("not loaded"))
        .unwrap_or_else(|| panic!("no load error listed:\n{listing}"));
    assert!(line.contains(&future.display().to_string()), "{line}");
    let (plugin_abi, host_abi) = abi_versions();
    assert!(
        line.contains(&plugin_abi) && line.contains(&host_abi),
        "{line}"
    );
    assert!(
        listing.contains("datagen") && listing.contains("faulty"),
        "{listing}"
    );

    // Running: a source of the mismatched type is refused with the same
    // message, while a datagen source beside it delivers everything.
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 3);
    let mut spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in("a.toml", datagen_source("orders", "orders", 2000, 0, 1))
        .drop_in(
            "b.toml",
            "[[source]]\nname = \"future\"\ntype = \"future\"\ntopic = \"future\"\n",
        );
    spec.plugin_dirs = vec![plugins.clone()];
    let config = write_config(dir.path(), &spec);

    let out = run_cli(
        &["validate".as_ref(), "--config".as_ref(), config.as_os_str()],
        Duration::from_secs(30),
    );
    let message = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(message.contains("conf.d/b.toml:1"), "{message}");
    assert!(message.contains("source[future].type"), "{message}");
    assert!(
        message.contains(&plugin_abi) && message.contains(&host_abi),
        "{message}"
    );

    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let report = consume_seqs(&broker.bootstrap(), "orders", 2000, Duration::from_secs(60));
    assert!(report.nothing_missing(), "{report}");
    assert!(
        daemon.is_running(),
        "the daemon stopped:\n{}",
        daemon.log_text()
    );
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let log = daemon.log_text();
    assert!(
        log.contains(&plugin_abi) && log.contains(&future.display().to_string()),
        "{log}"
    );
}

#[test]
fn plugin_panic_does_not_stop_the_daemon() {
    let dir = TempDir::new("plugin-panic");
    let plugins = plugin_dir(&dir);
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 3);
    broker.create_topic("faulty", 1);
    let mut spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in(
            "orders.toml",
            datagen_source("orders", "orders", 20_000, 5_000, 3),
        )
        .drop_in(
            "faulty.toml",
            "[[source]]\nname = \"faulty\"\ntype = \"faulty\"\ntopic = \"faulty\"\n\
             panic_after = 20\nrate_per_sec = 1000\n",
        );
    spec.plugin_dirs = vec![plugins];
    let config = write_config(dir.path(), &spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));

    // The faulty source panics, is restarted with backoff, and panics again.
    let restarted = wait_until(Duration::from_secs(30), || {
        daemon
            .log_text()
            .matches("plugin `faulty` panicked in poll")
            .count()
            >= 2
    });
    assert!(
        restarted,
        "no repeated panic and restart:\n{}",
        daemon.log_text()
    );
    // ... and its status says so: restarts counted, the panic as last error.
    let shown = wait_until(Duration::from_secs(15), || {
        daemon.log_text().lines().any(|l| {
            l.contains("Progress.")
                && l.contains("source=faulty")
                && l.contains("restarts=")
                && l.contains("panicked in poll")
        })
    });
    assert!(
        shown,
        "status does not show the restarts:\n{}",
        daemon.log_text()
    );
    assert!(
        daemon.is_running(),
        "the daemon died:\n{}",
        daemon.log_text()
    );

    // Meanwhile the other source delivers every record.
    let report = consume_seqs(
        &broker.bootstrap(),
        "orders",
        20_000,
        Duration::from_secs(60),
    );
    assert!(report.nothing_missing(), "{report}");
    assert!(
        daemon.is_running(),
        "the daemon died:\n{}",
        daemon.log_text()
    );
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn missing_plugin_is_a_clear_error() {
    let dir = TempDir::new("missing-plugin");
    let broker = Broker::start_mock(1);
    broker.create_topic("orders", 3);
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .drop_in(
            "10-orders.toml",
            datagen_source("orders", "orders", 1000, 0, 1),
        )
        .drop_in(
            "20-tables.toml",
            "# a source whose plugin is not installed\n\
             [[source]]\nname = \"tables\"\ntype = \"parquet-nope\"\ntopic = \"tables\"\n",
        );
    let config = write_config(dir.path(), &spec);

    let out = run_cli(
        &["validate".as_ref(), "--config".as_ref(), config.as_os_str()],
        Duration::from_secs(30),
    );
    let message = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    let expected_place = format!(
        "{}:2:",
        Path::new(dir.path())
            .join("conf.d/20-tables.toml")
            .display()
    );
    assert!(message.contains(&expected_place), "{message}");
    assert!(message.contains("`source[tables].type`"), "{message}");
    assert!(
        message.contains("no plugin provides source type `parquet-nope`"),
        "{message}"
    );
    assert!(
        message.contains("available: ") && message.contains("datagen"),
        "{message}"
    );

    // The daemon itself runs the sources it can and names the one it cannot.
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let report = consume_seqs(&broker.bootstrap(), "orders", 1000, Duration::from_secs(60));
    assert!(report.nothing_missing(), "{report}");
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(
        daemon
            .log_text()
            .contains("no plugin provides source type `parquet-nope`"),
        "{}",
        daemon.log_text()
    );
}

/// Builds the example C plugin into `dir/plugins`.
fn c_plugin_dir(dir: &TempDir) -> PathBuf {
    let plugins = dir.join("plugins");
    build_c_plugin(
        &repo_root().join("plugins/examples/c/counter.c"),
        &plugins,
        "counter",
    );
    plugins
}

fn counter_source(name: &str, topic: &str, extra: &str) -> String {
    format!(
        "[[source]]\nname = {}\ntype = \"counter\"\ntopic = {}\n{extra}",
        toml_str(name),
        toml_str(topic)
    )
}

#[test]
fn a_plugin_written_in_c_delivers_typed_rows_and_resumes_after_its_checkpoint() {
    let dir = TempDir::new("c-plugin");
    let plugins = c_plugin_dir(&dir);

    // The options the C file declares are what the daemon shows and checks.
    let out = run_cli(
        &[
            "plugins".as_ref(),
            "--plugin-dir".as_ref(),
            plugins.as_os_str(),
            "describe".as_ref(),
            "counter".as_ref(),
        ],
        Duration::from_secs(30),
    );
    let described = output_text(&out);
    assert!(out.status.success(), "{described}");
    for expected in [
        "default key column: seq",
        "lag unit: rows",
        "count (integer) default 100 from 0 to 1000000000",
        "label (string) default \"row\"",
        "fail_at (integer) at least 0",
    ] {
        assert!(
            described.contains(expected),
            "{expected:?} in:\n{described}"
        );
    }

    let broker = Broker::start(broker_of_record(), dir.path());
    let topic = broker.topic("counted");
    broker.create_topic(&topic, 2);
    let config_with = |extra: &str| {
        let mut spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
            .drop_in("counter.toml", counter_source("counter", &topic, extra));
        spec.plugin_dirs = vec![plugins.clone()];
        write_config(dir.path(), &spec)
    };

    // The host's checks come from the C declarations, the plugin's own rule
    // from its validate(), both with file and key.
    let config = config_with("count = -1\nlabel = \"\"\n");
    let out = run_cli(
        &["validate".as_ref(), "--config".as_ref(), config.as_os_str()],
        Duration::from_secs(30),
    );
    let message = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(
        message.contains("source[counter].count")
            && message.contains("expected an integer from 0 to 1000000000"),
        "{message}"
    );
    let config = config_with("label = \"\"\n");
    let out = run_cli(
        &["validate".as_ref(), "--config".as_ref(), config.as_os_str()],
        Duration::from_secs(30),
    );
    let message = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(
        message.contains("source[counter].label") && message.contains("must not be empty"),
        "{message}"
    );

    let run = |config: &Path| {
        let out = run_until_finished(config, Duration::from_secs(120));
        assert!(out.status.success(), "{}", output_text(&out));
    };
    run(&config_with("count = 25\nbatch_rows = 7\nlabel = \"c\"\n"));
    let mut records = consume_json(&broker.bootstrap(), &topic, 25, Duration::from_secs(60));
    assert_eq!(records.len(), 25, "{records:?}");
    records.sort_by_key(|(_, v)| v["seq"].as_u64());
    for (i, (key, value)) in records.iter().enumerate() {
        let n = i as u64;
        assert_eq!(key.as_deref(), Some(n.to_string().as_bytes()), "{value}");
        assert_eq!(value["seq"], serde_json::json!(n), "{value}");
        assert_eq!(
            value["ratio"],
            serde_json::json!(n as f64 / 25.0),
            "{value}"
        );
        assert_eq!(
            value["label"],
            serde_json::json!(format!("c-{n}")),
            "{value}"
        );
        assert_eq!(
            value["even"],
            serde_json::json!(n.is_multiple_of(2)),
            "{value}"
        );
        let third = if n.is_multiple_of(3) {
            serde_json::json!(n / 3)
        } else {
            serde_json::Value::Null
        };
        assert_eq!(value["third"], third, "{value}");
        let at = value["at"].as_str().unwrap_or_default();
        let expected = format!(
            "2023-11-14T22:{:02}:{:02}",
            13 + (20 + n) / 60,
            (20 + n) % 60
        );
        assert!(at.starts_with(&expected) && at.ends_with('Z'), "{value}");
    }

    // A second run resumes after the C plugin's own checkpoint.
    run(&config_with("count = 40\nbatch_rows = 7\nlabel = \"c\"\n"));
    let report = consume_seqs(&broker.bootstrap(), &topic, 40, Duration::from_secs(60));
    assert!(report.exactly_once(), "{report}");
}

#[test]
fn a_plugin_of_abi_1_is_refused_with_how_to_rebuild_it() {
    let dir = TempDir::new("abi-1");
    let source = dir.join("old.c");
    // All a 1.x library shares with 2.0: the entry symbol and the three
    // leading fields of its descriptor.
    std::fs::write(
        &source,
        "#include <stdint.h>\n\
         struct head { uint32_t abi_major, abi_minor, struct_size; };\n\
         static const struct head DESCRIPTOR = {1, 1, 104};\n\
         const void *tributary_plugin_v1(void);\n\
         const void *tributary_plugin_v1(void) { return &DESCRIPTOR; }\n",
    )
    .unwrap();
    let plugins = dir.join("plugins");
    let old = build_c_plugin(&source, &plugins, "old");
    let out = run_cli(
        &[
            "plugins".as_ref(),
            "--plugin-dir".as_ref(),
            plugins.as_os_str(),
        ],
        Duration::from_secs(30),
    );
    let listing = output_text(&out);
    let line = listing
        .lines()
        .find(|l| l.contains("not loaded"))
        .unwrap_or_else(|| panic!("no load error listed:\n{listing}"));
    assert!(line.contains(&old.display().to_string()), "{line}");
    assert!(
        line.contains("ABI 1.1") && line.contains(&format!("ABI {ABI_MAJOR}.{ABI_MINOR}")),
        "{line}"
    );
    assert!(
        line.contains("rebuild it against this release")
            && line.contains("`tributary-plugin-sdk` 2")
            && line.contains("tributary_plugin.h"),
        "{line}"
    );
}

#[test]
fn a_permanent_plugin_error_leaves_the_source_failed_instead_of_restarting_it() {
    let dir = TempDir::new("permanent-error");
    let plugins = c_plugin_dir(&dir);
    let broker = Broker::start_mock(1);
    broker.create_topic("counted", 1);
    let mut spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .with_http()
        .drop_in(
            "counter.toml",
            counter_source(
                "counter",
                "counted",
                "count = 100\nbatch_rows = 4\nfail_at = 10\n",
            ),
        );
    spec.plugin_dirs = vec![plugins];
    let address = spec.http_address().expect("http is on");
    let config = write_config(dir.path(), &spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));

    let mut view = serde_json::Value::Null;
    let failed = wait_until(Duration::from_secs(60), || {
        if let Ok(reply) = http_request(&address, "GET", "/api/v1/sources/counter", &[]) {
            view = reply.json();
        }
        view["state"] == "failed"
    });
    assert!(failed, "{view}\n{}", daemon.log_text());
    let error = view["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("row 10 is invalid"), "{view}");
    // The rows before the bad one arrived, once.
    let report = consume_seqs(&broker.bootstrap(), "counted", 10, Duration::from_secs(30));
    assert!(report.exactly_once() && report.total == 10, "{report}");

    // Not ready, and the failure is counted once by class: no restart loop
    // (the first back-off would have been 1 s).
    let ready = http_get(&address, "/ready");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("counter"), "{}", ready.body);
    std::thread::sleep(Duration::from_secs(4));
    let metrics = http_get(&address, "/metrics").body;
    let series = r#"tributary_source_failures_total{error_class="invalid_data",source="counter"}"#;
    assert_eq!(metric_value(&metrics, series), Some(1.0), "{metrics}");
    let restarts = r#"tributary_source_restarts_total{plugin="counter",source="counter"}"#;
    assert_eq!(metric_value(&metrics, restarts), Some(0.0), "{metrics}");
    assert_eq!(
        http_get(&address, "/api/v1/sources/counter").json()["state"],
        "failed"
    );
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    // `run --exit-when-finished` ends, and says the source did not finish.
    let out = run_until_finished(&config, Duration::from_secs(60));
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("counter (failed)"), "{text}");
}
