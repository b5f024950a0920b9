//! `tributary top`: a live view of a running daemon, read from its HTTP API
//! (`GET /api/v1/sources`, `GET /api/v1/kafka`).
//!
//! A poller thread reads the API every interval and hands each answer to
//! the drawing loop, which also watches the keyboard; a daemon that hangs
//! therefore never keeps `q` from working. Rates are differences of the
//! daemon's counters over the time between two answers, so they cost the
//! daemon nothing and need no state there. A daemon that goes away is a
//! banner, not an exit: the view waits for it to come back.
//!
//! When stdout is not a terminal (or with `--once`), `top` prints one plain
//! snapshot instead: two polls one interval apart, so it has rates too.

mod api;
mod screen;
mod terminal;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use api::{Client, Sample};
use screen::Screen;

use crate::config::HttpConfig;

/// The shortest and longest `--interval` (as [`TopError::BadInterval`]
/// words them).
const INTERVAL_RANGE: (f64, f64) = (0.1, 3600.0);
/// How often the drawing loop looks at the keyboard, signals and the
/// terminal's size between answers.
const TICK: Duration = Duration::from_millis(100);

/// Errors of `tributary top`.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// `--url` is not an address `top` can read.
    #[error("--url `{url}`: {reason}")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The configuration turns the HTTP endpoint off.
    #[error(
        "`[http] listen` is off in the configuration, so the daemon serves no API to read; \
         turn it on, or pass --url if the daemon listens elsewhere"
    )]
    HttpOff,
    /// `--interval` out of range.
    #[error("--interval must be from 0.1 to 3600 seconds, not {0}")]
    BadInterval(f64),
    /// One snapshot was asked for and the daemon did not answer.
    #[error("daemon at {url} not reachable: {message}")]
    Unreachable {
        /// The daemon's URL.
        url: String,
        /// Why.
        message: String,
    },
    /// Writing to the terminal or reading keys failed.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// Where the daemon's API is, and the token to present.
#[derive(Clone)]
pub struct Target {
    /// `http://host:port`, without a trailing slash.
    pub url: String,
    /// `[http] token`. `GET` requests need none today; it is sent anyway so
    /// that `top` keeps working if reading ever requires it.
    pub token: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Target {
    /// The daemon of a configuration: its `[http] listen` (a wildcard
    /// address is reached through loopback) and its token.
    pub fn from_config(http: &HttpConfig) -> Result<Target, TopError> {
        let listen = http.listen.ok_or(TopError::HttpOff)?;
        Ok(Target {
            url: format!("http://{}", reachable(listen)),
            token: http.token.clone(),
        })
    }

    /// A daemon at `url`: `http://host:port`, or `host:port`.
    pub fn from_url(url: &str) -> Result<Target, TopError> {
        let bad = |reason| TopError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let rest = match url.split_once("://") {
            None => url,
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(bad(
                    "the daemon's endpoint speaks plain HTTP; use http:// (or a proxy's own client)",
                ));
            }
            Some(_) => return Err(bad("only http:// URLs are supported")),
        };
        let rest = rest.trim_end_matches('/');
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(bad("no host, e.g. http://127.0.0.1:9464"));
        }
        let full = format!("http://{rest}");
        if full.parse::<ureq::http::Uri>().is_err() {
            return Err(bad("not a valid URL, e.g. http://127.0.0.1:9464"));
        }
        Ok(Target {
            url: full,
            token: None,
        })
    }
}

/// `listen` as a client reaches it: the wildcard addresses mean "every
/// interface", which includes loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// How `top` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The daemon.
    pub target: Target,
    /// Seconds between polls.
    pub interval_seconds: f64,
    /// One plain snapshot, even on a terminal.
    pub once: bool,
}

/// Runs `top` until the operator quits (live view) or after one snapshot
/// (`once`, or stdout not a terminal).
pub fn run(options: &Options) -> Result<(), TopError> {
    let seconds = options.interval_seconds;
    if !(INTERVAL_RANGE.0..=INTERVAL_RANGE.1).contains(&seconds) {
        return Err(TopError::BadInterval(seconds));
    }
    let interval = Duration::from_secs_f64(seconds);
    // A poll may take as long as the interval, and at least a second so a
    // loaded daemon is not declared gone too early; at most five, so a
    // hung one is noticed.
    let timeout = interval.clamp(Duration::from_secs(1), Duration::from_secs(5));
    let client = Client::new(&options.target, timeout);
    if options.once || !terminal::stdout_is_terminal() {
        once(&client, &options.target.url, interval)
    } else {
        live(client, &options.target.url, interval)
    }
}

/// Two polls one interval apart, printed as plain text.
fn once(client: &Client, url: &str, interval: Duration) -> Result<(), TopError> {
    let unreachable = |message| TopError::Unreachable {
        url: url.to_owned(),
        message,
    };
    let mut screen = Screen::new(url, interval);
    let first = client.sample().map_err(unreachable)?;
    screen.update(Ok(first), Instant::now());
    std::thread::sleep(interval);
    let second = client.sample().map_err(unreachable)?;
    screen.update(Ok(second), Instant::now());
    let mut out = std::io::stdout().lock();
    for line in screen.render(Instant::now(), usize::MAX, usize::MAX, false) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The live view, until `q`, Ctrl-C, SIGTERM or SIGHUP.
fn live(client: Client, url: &str, interval: Duration) -> Result<(), TopError> {
    let quit = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, quit.clone())?;
    }
    let answers = spawn_poller(client, interval)?;
    let mut terminal = terminal::Terminal::enter()?;
    let mut screen = Screen::new(url, interval);
    let mut size = terminal.size();
    let mut drawn_at = Instant::now();
    terminal.draw(&screen.render(drawn_at, size.0, size.1, true))?;
    while !quit.load(Ordering::Relaxed) {
        if terminal.key(TICK)? == Some(terminal::Key::Quit) {
            break;
        }
        let mut redraw = false;
        loop {
            match answers.try_recv() {
                Ok(answer) => {
                    screen.update(answer, Instant::now());
                    redraw = true;
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(TopError::Terminal(std::io::Error::other(
                        "the poller thread stopped",
                    )));
                }
            }
        }
        let now_size = terminal.size();
        // While the daemon is away the banner counts seconds.
        let ticking = screen.outage().is_some() && drawn_at.elapsed() >= Duration::from_secs(1);
        if redraw || ticking || now_size != size {
            size = now_size;
            drawn_at = Instant::now();
            terminal.draw(&screen.render(drawn_at, size.0, size.1, true))?;
        }
    }
    Ok(())
}

/// Polls on its own thread, one answer per interval, until the receiver
/// is dropped. Ticks are counted from the start, so a slow answer does not
/// push every later one back.
fn spawn_poller(
    client: Client,
    interval: Duration,
) -> std::io::Result<mpsc::Receiver<Result<Sample, String>>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("tributary-top-poll".to_owned())
        .spawn(move || {
            let mut next = Instant::now();
            loop {
                if sender.send(client.sample()).is_err() {
                    return;
                }
                next += interval;
                let now = Instant::now();
                if next < now {
                    next = now;
                }
                std::thread::sleep(next - now);
            }
        })?;
    Ok(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_accepted_with_or_without_the_scheme_and_https_is_refused() {
        let t = Target::from_url("http://127.0.0.1:9464/").unwrap();
        assert_eq!(t.url, "http://127.0.0.1:9464");
        let t = Target::from_url("[::1]:9464").unwrap();
        assert_eq!(t.url, "http://[::1]:9464");
        for bad in ["https://h:1", "ftp://h", "http://", ""] {
            assert!(Target::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_listen_address_is_reached_through_loopback() {
        let http = |listen: &str| HttpConfig {
            listen: Some(listen.parse().unwrap()),
            token: Some("t".to_owned()),
        };
        let t = Target::from_config(&http("0.0.0.0:9464")).unwrap();
        assert_eq!(t.url, "http://127.0.0.1:9464");
        assert_eq!(t.token.as_deref(), Some("t"));
        let t = Target::from_config(&http("[::]:9464")).unwrap();
        assert_eq!(t.url, "http://[::1]:9464");
        let off = HttpConfig {
            listen: None,
            token: None,
        };
        assert!(matches!(Target::from_config(&off), Err(TopError::HttpOff)));
    }
}
