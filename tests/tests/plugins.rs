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
