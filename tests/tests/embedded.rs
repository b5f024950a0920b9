//! The embedded broker: the daemon logs its address and an independent
//! client (`kcat`) reads what the daemon produced there.

use std::process::Command;
use std::time::Duration;

use tributary_tests::*;

#[test]
fn embedded_broker_is_readable_with_kcat_at_the_logged_address() {
    if Command::new("kcat").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "kcat is required in CI (.ci/run installs it)"
        );
        eprintln!("kcat not installed: skipping the embedded-broker read");
        return;
    }
    let dir = TempDir::new("embedded");
    let spec = ConfigSpec::new("embedded", dir.path())
        .drop_in("orders.toml", datagen_source("orders", "orders", 500, 0, 3));
    let config = write_config(dir.path(), &spec);
    let mut daemon = Daemon::start(&config, &dir.join("daemon.log"));
    let mut address = None;
    let found = wait_until(Duration::from_secs(30), || {
        address = daemon.log_text().lines().find_map(|l| {
            let (_, rest) = l.split_once("bootstrap_servers=\"")?;
            Some(rest.split('"').next()?.to_owned())
        });
        address.is_some() && committed_seq(&dir.join("offsets"), "orders") == Some(500)
    });
    assert!(found, "no address or no commit:\n{}", daemon.log_text());
    let address = address.unwrap_or_default();
    let out = Command::new("kcat")
        .args([
            "-C",
            "-b",
            &address,
            "-t",
            "orders",
            "-o",
            "beginning",
            "-e",
            "-q",
        ])
        .output()
        .expect("run kcat");
    let text = output_text(&out);
    let mut seqs: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["seq"].as_u64())
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 500, "kcat read:\n{text}");
    assert_eq!(seqs.last(), Some(&499));
    let status = daemon.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn plugins_describe_lists_options_with_types_and_defaults() {
    let out = run_cli(
        &[
            "plugins".as_ref(),
            "--plugin-dir".as_ref(),
            target_dir().as_os_str(),
            "describe".as_ref(),
            "datagen".as_ref(),
        ],
        Duration::from_secs(30),
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("datagen: "), "{text}");
    for expected in [
        "kind (string) default \"orders\" one of orders | logs | metrics | clicks",
        "rate_per_sec (integer) default 1000",
        "count (integer)",
        "seed (integer) default 0",
        "lag unit: rows (tributary_source_lag_rows)",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    // A plugin's default key column (ABI 1.1) is shown.
    let out = run_cli(
        &[
            "plugins".as_ref(),
            "--plugin-dir".as_ref(),
            target_dir().as_os_str(),
            "describe".as_ref(),
            "sysmetrics".as_ref(),
        ],
        Duration::from_secs(30),
    );
    let text = output_text(&out);
    assert!(text.contains("default key column: host"), "{text}");
    assert!(text.contains("lag unit: none"), "{text}");
    assert!(
        !output_text(&run_cli(
            &[
                "plugins".as_ref(),
                "--plugin-dir".as_ref(),
                target_dir().as_os_str(),
                "describe".as_ref(),
                "datagen".as_ref()
            ],
            Duration::from_secs(30),
        ))
        .contains("default key column")
    );

    let out = run_cli(
        &[
            "plugins".as_ref(),
            "--plugin-dir".as_ref(),
            target_dir().as_os_str(),
            "describe".as_ref(),
            "nope".as_ref(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(output_text(&out).contains("no plugin provides source type `nope`"));
}
