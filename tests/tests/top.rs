//! `tributary top` in a real terminal: a detached tmux session of fixed
//! size runs it, `capture-pane` reads the screen as an operator sees it.
//! The view shows live rates, survives the daemon going away and coming
//! back, and `q` or Ctrl-C leave the terminal as they found it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tributary_tests::*;

/// The pane's size: what `top` lays its table out in.
const COLUMNS: u32 = 120;
const ROWS: u32 = 30;

/// A tmux server of this test's own (its socket in the test directory),
/// killed with everything it runs when dropped, including on panic.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Whether tmux can run here; CI must have it (`.ci/run` installs it).
    fn available() -> bool {
        if Command::new("tmux").arg("-V").output().is_ok() {
            return true;
        }
        assert!(
            std::env::var("CI").is_err(),
            "tmux is required in CI (.ci/run installs it)"
        );
        eprintln!("tmux not installed: skipping the terminal test");
        false
    }

    /// Starts a detached `COLUMNS`×`ROWS` session running `script` with
    /// `sh`, in `dir`.
    fn start(dir: &Path, script: &str) -> Tmux {
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            &COLUMNS.to_string(),
            "-y",
            &ROWS.to_string(),
            "sh",
            "-c",
            script,
        ]);
        assert!(out.status.success(), "tmux: {}", output_text(&out));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// The visible screen, as text.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    /// A pane variable, e.g. `alternate_on`.
    fn pane(&self, variable: &str) -> String {
        let format = format!("#{{{variable}}}");
        let out = self.run(&["display-message", "-p", "-t", "top", &format]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn keys(&self, keys: &str) {
        let out = self.run(&["send-keys", "-t", "top", keys]);
        assert!(out.status.success(), "send-keys: {}", output_text(&out));
    }

    /// Waits until the screen satisfies `check`; the last screen either way.
    fn wait_screen(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&str) -> bool,
    ) -> (bool, String) {
        let mut screen = String::new();
        let ok = wait_until(timeout, || {
            screen = self.screen();
            check(&screen)
        });
        (ok, screen)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// `s` as one `sh` word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The shell around `top`: a line before it; after it, whether the
/// terminal settings equal those before it and, last, its exit status. The
/// pane then stays open so the test can read all of it.
fn script(top_args: &str) -> String {
    format!(
        "printf 'before top\\n'; saved=$(stty -g); {bin} top {top_args}; status=$?; \
         if [ \"$(stty -g)\" = \"$saved\" ]; then echo 'terminal settings restored'; fi; \
         echo \"top exited: $status\"; \
         exec sleep 600",
        bin = sh_quote(&daemon_bin().to_string_lossy()),
    )
}

/// The table row of `source` split into words, if the screen shows one.
fn row<'a>(screen: &'a str, source: &str) -> Option<Vec<&'a str>> {
    screen
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|words| words.first() == Some(&source))
}

/// Whether the row of `source` says `running` with a non-zero records/s.
fn running_with_a_rate(screen: &str, source: &str) -> bool {
    row(screen, source).is_some_and(|words| {
        words.get(2) == Some(&"running")
            && words.get(3).is_some_and(|rate| {
                rate.trim_end_matches(['k', 'M'])
                    .parse::<f64>()
                    .is_ok_and(|r| r > 0.0)
            })
    })
}

/// The seconds in the banner's `(since Ns)`.
fn banner_seconds(screen: &str) -> Option<u64> {
    let line = screen.lines().find(|l| l.contains("not reachable:"))?;
    let (_, rest) = line.rsplit_once("(since ")?;
    rest.split('s').next()?.parse().ok()
}

/// Starts the daemon on `spec` and waits until its API answers.
fn start_daemon(dir: &TempDir, config: &Path, address: &str) -> Daemon {
    let mut daemon = Daemon::start(config, &dir.join("daemon.log"));
    let up = wait_until(Duration::from_secs(60), || {
        http_request(address, "GET", "/health", &[]).is_ok_and(|r| r.status == 200)
    });
    assert!(
        up && daemon.is_running(),
        "no /health:\n{}",
        daemon.log_text()
    );
    daemon
}

#[test]
fn top_shows_live_rates_survives_the_daemon_going_away_and_q_restores_the_terminal() {
    let dir = TempDir::new("top");
    let broker = Broker::start_mock(1);
    let topic = broker.topic("orders");
    broker.create_topic(&topic, 3);
    let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
        .with_http()
        .kafka_option("statistics.interval.ms", "1000")
        .drop_in(
            "orders.toml",
            datagen_source("orders", &topic, 100_000_000, 200, 7),
        );
    let config = write_config(dir.path(), &spec);
    let address = spec.http_address().expect("HTTP is on");
    let mut daemon = start_daemon(&dir, &config, &address);
    let producing = wait_until(Duration::from_secs(60), || {
        http_get(&address, "/api/v1/sources/orders").json()["records_produced"]
            .as_u64()
            .is_some_and(|n| n > 0)
    });
    assert!(producing, "nothing produced:\n{}", daemon.log_text());

    // Not a terminal: one plain snapshot, with rates, and no escape codes.
    let out = run_cli(
        &[
            "top".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--interval".as_ref(),
            "0.5".as_ref(),
        ],
        Duration::from_secs(30),
    );
    let snapshot = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(running_with_a_rate(&snapshot, "orders"), "{snapshot}");
    assert!(snapshot.contains("Kafka client:"), "{snapshot}");
    assert!(!snapshot.contains('\x1b'), "{snapshot:?}");

    if !Tmux::available() {
        return;
    }
    let tmux = Tmux::start(
        dir.path(),
        &script(&format!("--config {}", sh_quote(&config.to_string_lossy()))),
    );
    let (ok, screen) = tmux.wait_screen(Duration::from_secs(30), |s| {
        running_with_a_rate(s, "orders") && s.contains("rtt") && s.contains(" UP ")
    });
    assert!(
        ok,
        "no running row with a rate and no broker RTT:\n{screen}"
    );
    assert!(
        screen.contains("SOURCE") && screen.contains("REC/S"),
        "{screen}"
    );
    assert!(screen.contains("Kafka client: queue"), "{screen}");
    assert!(
        screen
            .lines()
            .all(|l| l.chars().count() <= COLUMNS as usize),
        "{screen}"
    );
    assert_eq!(
        tmux.pane("alternate_on"),
        "1",
        "top is not on the alternate screen"
    );

    // The daemon goes away: a banner that keeps counting, top keeps running.
    daemon.kill9();
    let banner = format!("daemon at http://{address} not reachable:");
    let (ok, screen) = tmux.wait_screen(Duration::from_secs(15), |s| {
        s.contains(&banner) && banner_seconds(s).is_some_and(|n| n >= 2)
    });
    assert!(ok, "no banner counting seconds:\n{screen}");
    assert!(screen.contains("last answer"), "{screen}");
    assert_eq!(
        tmux.pane("alternate_on"),
        "1",
        "top left the screen:\n{}",
        tmux.screen()
    );

    // It comes back: the banner goes, the rates return.
    let _daemon = start_daemon(&dir, &config, &address);
    let (ok, screen) = tmux.wait_screen(Duration::from_secs(30), |s| {
        !s.contains("not reachable") && running_with_a_rate(s, "orders")
    });
    assert!(ok, "top did not recover:\n{screen}");

    tmux.keys("q");
    let (ok, screen) = tmux.wait_screen(Duration::from_secs(10), |s| s.contains("top exited:"));
    assert!(ok, "q did not end top:\n{screen}");
    assert!(screen.contains("top exited: 0"), "{screen}");
    assert!(screen.contains("terminal settings restored"), "{screen}");
    assert!(
        screen.contains("before top"),
        "the normal screen is not back:\n{screen}"
    );
    assert!(
        !screen.contains("SOURCE"),
        "the table is still shown:\n{screen}"
    );
    assert_eq!(tmux.pane("alternate_on"), "0");
    assert_eq!(tmux.pane("cursor_flag"), "1", "the cursor is still hidden");
}

#[test]
fn ctrl_c_ends_top_and_restores_the_terminal_when_no_daemon_ever_answered() {
    if !Tmux::available() {
        return;
    }
    let dir = TempDir::new("top-ctrl-c");
    let url = format!("http://127.0.0.1:{}", free_port());
    let tmux = Tmux::start(dir.path(), &script(&format!("--url {url}")));
    let (ok, screen) = tmux.wait_screen(Duration::from_secs(15), |s| {
        s.contains(&format!("daemon at {url} not reachable:"))
    });
    assert!(ok, "no banner:\n{screen}");
    tmux.keys("C-c");
    let (ok, screen) = tmux.wait_screen(Duration::from_secs(10), |s| s.contains("top exited:"));
    assert!(ok, "Ctrl-C did not end top:\n{screen}");
    assert!(screen.contains("top exited: 0"), "{screen}");
    assert!(screen.contains("terminal settings restored"), "{screen}");
    assert_eq!(tmux.pane("alternate_on"), "0");
    assert_eq!(tmux.pane("cursor_flag"), "1", "the cursor is still hidden");
}

#[test]
fn once_against_no_daemon_fails_with_the_address_and_bad_options_are_refused() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = run_cli(&["top", "--once", "--url", &url], Duration::from_secs(30));
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("daemon at {url} not reachable")),
        "{text}"
    );
    for (args, expected) in [
        (vec!["--url", "https://127.0.0.1:1"], "plain HTTP"),
        (vec!["--url", &url, "--interval", "0"], "--interval must be"),
    ] {
        let out = run_cli(
            &[&["top", "--once"][..], &args].concat(),
            Duration::from_secs(30),
        );
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert!(text.contains(expected), "{args:?}: {text}");
    }
}
