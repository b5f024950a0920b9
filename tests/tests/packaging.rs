//! What operators install: the systemd unit passes `systemd-analyze verify`
//! with a low exposure score, and `docker-compose.yml` is valid with every
//! file it mounts present in the repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use tributary_tests::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository root")
        .to_path_buf()
}

/// Whether `tool` runs; under `CI=true` a missing tool fails the test, since
/// CI installs it and a silent skip would hide a broken CI image.
fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but `{tool}` is not installed"
        );
        eprintln!("skipping: `{tool}` is not installed");
    }
    found
}

#[test]
fn systemd_unit_verifies_with_low_exposure() {
    if !have("systemd-analyze") {
        return;
    }
    let unit = std::fs::read_to_string(repo_root().join("systemd/tributary.service")).unwrap();
    for setting in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/usr/bin/tributary validate",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "StateDirectory=tributary",
        "ConfigurationDirectory=tributary",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "SupplementaryGroups=adm",
    ] {
        assert!(unit.contains(setting), "the unit lacks `{setting}`");
    }
    // verify checks that ExecStart's binary exists: point it at the build.
    let dir = TempDir::new("systemd-unit");
    let local = dir.join("tributary.service");
    let bin = daemon_bin();
    std::fs::write(
        &local,
        unit.replace("/usr/bin/tributary", bin.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&local)
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "systemd-analyze verify:\n{text}");
    assert!(
        !text.contains("tributary.service"),
        "systemd-analyze verify complains:\n{text}"
    );

    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&local)
        .output()
        .unwrap();
    let text = output_text(&out);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for tributary.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{text}"));
    eprintln!("systemd-analyze security exposure: {score}");
    assert!(score <= 2.0, "exposure {score} is above 2.0:\n{text}");
}

/// Host paths mounted by `docker-compose.yml` (`- ./path:/in/container`).
fn compose_mounts(compose: &str) -> Vec<String> {
    compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- ./"))
        .filter_map(|l| l.split(':').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn compose_file_is_valid_and_its_mounts_exist() {
    let root = repo_root();
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    let mounts = compose_mounts(&compose);
    assert!(
        mounts.len() >= 5,
        "expected the config, drop-ins, Prometheus and Grafana mounts: {mounts:?}"
    );
    for mount in &mounts {
        assert!(
            root.join(mount).exists(),
            "docker-compose.yml mounts ./{mount}, which is not in the repository"
        );
    }
    for service in [
        "kafka:",
        "tributary:",
        "prometheus:",
        "grafana:",
        "kafka-ui:",
    ] {
        assert!(
            compose.contains(&format!("\n  {service}\n")),
            "no `{service}` service"
        );
    }
    assert!(
        compose.contains("7080:7080"),
        "Kafka UI is not on port 7080"
    );
    if !have("docker-compose") {
        return;
    }
    let out = Command::new("docker-compose")
        .arg("-f")
        .arg(root.join("docker-compose.yml"))
        .args(["config", "-q"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker-compose config:\n{}",
        output_text(&out)
    );
}
