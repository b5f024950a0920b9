//! Cluster mode on a real Apache Kafka: three daemons on one machine, each
//! with its own state directory and HTTP port, share the sources through
//! Kafka's consumer-group protocol. The oracle reads every topic with
//! `read_committed` and counts each sequence number.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tributary_tests::*;

/// The session timeout of every member: the broker's smallest by default,
/// so a `kill -9` is noticed as fast as Kafka allows.
const SESSION_MS: u64 = 6_000;

/// The shared Apache Kafka, or `None` where it cannot run.
fn kafka(dir: &TempDir) -> Option<Broker> {
    brokers_under_test()
        .contains(&BrokerKind::Kafka)
        .then(|| Broker::start(BrokerKind::Kafka, dir.path()))
}

/// What every member of one test shares: the group, the offsets topic and
/// the transactional id prefix (a unit keeps its id on every member).
struct Group {
    bootstrap: String,
    name: String,
    offsets_topic: String,
    tx_prefix: String,
    sources: String,
    /// `protocol = "consumer"` (KIP-848) instead of the classic protocol.
    kip848: bool,
}

impl Group {
    fn new(broker: &Broker, sources: String) -> Group {
        Group {
            bootstrap: broker.bootstrap(),
            name: format!("g{}{}", std::process::id(), broker.topic("")),
            offsets_topic: broker.topic("offsets"),
            tx_prefix: broker.topic("tx"),
            sources,
            kip848: false,
        }
    }

    /// Writes member `name`'s configuration under `dir/<name>`.
    fn member(&self, dir: &Path, name: &str) -> MemberConfig {
        let state = dir.join(name);
        std::fs::create_dir_all(&state).unwrap();
        let mut spec = ConfigSpec::new(&self.bootstrap, &state)
            .with_http()
            .kafka_key(&format!(
                "transactional_id_prefix = {}",
                toml_str(&self.tx_prefix)
            ))
            .drop_in("sources.toml", self.sources.clone());
        spec.offsets_topic = Some(self.offsets_topic.clone());
        spec.extra = format!(
            "[cluster]\ngroup = {}\nmember = {}\n",
            toml_str(&self.name),
            toml_str(name),
        );
        if self.kip848 {
            // The session timeout is the broker's.
            spec.extra.push_str("protocol = \"consumer\"\n");
        } else {
            spec.extra.push_str(&format!(
                "session_timeout_ms = {SESSION_MS}\nheartbeat_interval_ms = 1000\n"
            ));
        }
        MemberConfig {
            name: name.to_owned(),
            config: write_config(&state, &spec),
            http: spec.http_address().expect("http is on"),
            log: dir.join(format!("{name}.log")),
        }
    }
}

struct MemberConfig {
    name: String,
    config: PathBuf,
    http: String,
    log: PathBuf,
}

/// A running member.
struct Member {
    config: MemberConfig,
    daemon: Daemon,
}

impl Member {
    fn start(config: MemberConfig) -> Member {
        let daemon = Daemon::start(&config.config, &config.log);
        Member { config, daemon }
    }

    fn cluster(&self) -> serde_json::Value {
        http_request(&self.config.http, "GET", "/api/v1/cluster", &[])
            .map_or(serde_json::Value::Null, |r| r.json())
    }

    /// The units this member runs, by its own account.
    fn owned(&self) -> BTreeSet<String> {
        strings(&self.cluster()["member"]["units"])
    }

    /// Each source's state, as this member's API shows it.
    fn states(&self) -> BTreeMap<String, String> {
        let Ok(reply) = http_request(&self.config.http, "GET", "/api/v1/sources", &[]) else {
            return BTreeMap::new();
        };
        reply.json()["sources"]
            .as_array()
            .map(|sources| {
                sources
                    .iter()
                    .map(|s| {
                        (
                            s["name"].as_str().unwrap_or_default().to_owned(),
                            s["state"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn strings(value: &serde_json::Value) -> BTreeSet<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Who owns what among `members`, when every unit of `units` has exactly
/// one owner; `None` while a unit has none or two.
fn spread(members: &[&Member], units: &BTreeSet<String>) -> Option<Vec<BTreeSet<String>>> {
    let owned: Vec<BTreeSet<String>> = members.iter().map(|m| m.owned()).collect();
    let mut all = BTreeSet::new();
    for set in &owned {
        for unit in set {
            if !all.insert(unit.clone()) {
                return None;
            }
        }
    }
    (&all == units).then_some(owned)
}

/// Waits until `units` are spread over `members`, every member running at
/// least one when `each` is set; the ownership, or a panic with the logs.
fn wait_spread(members: &[&Member], units: &BTreeSet<String>, each: bool) -> Vec<BTreeSet<String>> {
    let mut last = None;
    let done = wait_until(Duration::from_secs(90), || {
        last = spread(members, units);
        last.as_ref()
            .is_some_and(|o| !each || o.iter().all(|s| !s.is_empty()))
    });
    assert!(
        done,
        "units {units:?} not spread over {} members: {:?}\n{}",
        members.len(),
        members.iter().map(|m| m.owned()).collect::<Vec<_>>(),
        logs(members)
    );
    last.expect("checked above")
}

fn logs(members: &[&Member]) -> String {
    members
        .iter()
        .map(|m| format!("--- {} ---\n{}", m.config.name, m.daemon.log_text()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Six datagen sources, one topic each, `count` records at `rate`/s.
fn six_sources(
    broker: &Broker,
    count: u64,
    rate: u64,
    exactly_once: bool,
) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut topics = Vec::new();
    for i in 0..6 {
        let topic = broker.topic(&format!("orders{i}"));
        broker.create_topic(&topic, 2);
        text.push_str(&datagen_source(
            &format!("s{i}"),
            &topic,
            count,
            rate,
            20 + i,
        ));
        if exactly_once {
            text.push_str("delivery = \"exactly_once\"\ntransaction_interval_ms = 200\n");
        }
        text.push('\n');
        topics.push(topic);
    }
    (text, topics)
}

fn six_units() -> BTreeSet<String> {
    (0..6).map(|i| format!("s{i}")).collect()
}

/// Six datagen sources of `count` records at 1,000/s shared by members
/// started under `names`, spread over them (each running at least one).
/// Fields drop in order: the daemons stop before their directory goes.
struct SixSources {
    members: Vec<Member>,
    owned: Vec<BTreeSet<String>>,
    group: Group,
    topics: Vec<String>,
    units: BTreeSet<String>,
    count: u64,
    broker: Broker,
    dir: TempDir,
}

impl SixSources {
    /// `None` where Apache Kafka cannot run.
    fn start(
        tag: &str,
        names: &[&str],
        count: u64,
        exactly_once: bool,
        kip848: bool,
    ) -> Option<Self> {
        let dir = TempDir::new(tag);
        let broker = kafka(&dir)?;
        let (sources, topics) = six_sources(&broker, count, 1_000, exactly_once);
        let mut group = Group::new(&broker, sources);
        group.kip848 = kip848;
        let members: Vec<Member> = names
            .iter()
            .map(|n| Member::start(group.member(dir.path(), n)))
            .collect();
        let units = six_units();
        let owned = wait_spread(&members.iter().collect::<Vec<_>>(), &units, true);
        Some(SixSources {
            members,
            owned,
            group,
            topics,
            units,
            count,
            broker,
            dir,
        })
    }

    fn refs(&self) -> Vec<&Member> {
        self.members.iter().collect()
    }

    /// Waits until every unit finished, stops every member, and checks
    /// each topic: every record once, or at least once.
    fn finish(mut self, duplicates_allowed: bool) {
        wait_finished(&self.refs(), &self.units, Duration::from_secs(180));
        stop_all(&mut self.members);
        check_topics(&self.broker, &self.topics, self.count, duplicates_allowed);
    }
}

/// Waits until every unit reports `finished` on the member that runs it.
fn wait_finished(members: &[&Member], units: &BTreeSet<String>, timeout: Duration) {
    let done = wait_until(timeout, || {
        let mut finished = BTreeSet::new();
        for m in members {
            for (name, state) in m.states() {
                if state == "finished" && m.owned().contains(&name) {
                    finished.insert(name);
                }
            }
        }
        &finished == units
    });
    assert!(done, "not every unit finished:\n{}", logs(members));
}

/// Reads every topic and checks each record arrived once (or, when
/// `duplicates_allowed`, at least once).
fn check_topics(broker: &Broker, topics: &[String], count: u64, duplicates_allowed: bool) {
    for topic in topics {
        let report = consume_seqs(&broker.bootstrap(), topic, count, Duration::from_secs(120));
        eprintln!("{topic}: {report}");
        if duplicates_allowed {
            assert!(report.nothing_missing(), "{topic}: {report}");
        } else {
            assert!(report.exactly_once(), "{topic}: {report}");
        }
    }
}

fn stop_all(members: &mut [Member]) {
    for m in members.iter_mut() {
        let status = m.daemon.sigterm_and_wait(Duration::from_secs(60));
        assert!(
            status.is_some_and(|s| s.success()),
            "{} did not stop cleanly: {status:?}\n{}",
            m.config.name,
            m.daemon.log_text()
        );
    }
}

#[test]
fn six_sources_spread_over_three_members_each_running_at_least_one() {
    let Some(cluster) =
        SixSources::start("cluster-spread", &["m0", "m1", "m2"], 20_000, false, false)
    else {
        return;
    };
    let (refs, owned, units) = (cluster.refs(), &cluster.owned, &cluster.units);
    eprintln!("ownership: {owned:?}");
    // Each member runs exactly its own units; the others are on standby.
    for (m, mine) in refs.iter().zip(owned) {
        let states = m.states();
        for unit in units {
            let state = states.get(unit).map(String::as_str);
            if mine.contains(unit) {
                assert!(
                    matches!(state, Some("running" | "starting" | "finished")),
                    "{}: {unit} is {state:?}",
                    m.config.name
                );
            } else {
                assert_eq!(state, Some("standby"), "{}: {unit}", m.config.name);
            }
        }
    }
    // The view of any member names every member and who runs what.
    let view = refs[0].cluster();
    let names: BTreeSet<String> = view["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        names,
        ["m0", "m1", "m2"].map(str::to_owned).into(),
        "{view:#}"
    );
    for unit in view["units"].as_array().expect("units") {
        assert!(unit["owner"].is_string(), "{view:#}");
    }
    let metrics = http_get(&refs[0].config.http, "/metrics").body;
    assert!(
        metrics.contains("tributary_cluster_units_owned ")
            && metrics.contains("tributary_cluster_rebalances_total{event=\"assign\"}"),
        "{metrics}"
    );
    if let Some(promtool) = promtool_bin() {
        let mut child = std::process::Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn promtool");
        std::io::Write::write_all(
            &mut child.stdin.take().expect("piped stdin"),
            metrics.as_bytes(),
        )
        .expect("write to promtool");
        let out = child.wait_with_output().expect("promtool runs");
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(refs);
    // Units moved while members joined: each move drained and committed
    // first, so nothing repeats even at least once.
    cluster.finish(false);
}

/// `kill -9` a member that runs units: the survivors take them over within
/// the session timeout plus a few seconds, from the committed positions.
fn kill_9_a_member(exactly_once: bool) {
    let tag = if exactly_once {
        "cluster-kill-eos"
    } else {
        "cluster-kill-alo"
    };
    let Some(mut cluster) =
        SixSources::start(tag, &["m0", "m1", "m2"], 40_000, exactly_once, false)
    else {
        return;
    };
    // Let every unit commit something first.
    std::thread::sleep(Duration::from_secs(4));
    let victim_units = cluster.owned[2].clone();
    let killed = Instant::now();
    cluster.members[2].daemon.kill9();
    let victim = cluster.members.remove(2);
    let survivors = cluster.refs();
    let mut taken_over = None;
    let done = wait_until(
        Duration::from_millis(SESSION_MS) + Duration::from_secs(20),
        || {
            let now: BTreeSet<String> = survivors.iter().flat_map(|m| m.owned()).collect();
            let running = survivors.iter().all(|m| {
                let states = m.states();
                m.owned().iter().all(|u| {
                    matches!(
                        states.get(u).map(String::as_str),
                        Some("running" | "finished")
                    )
                })
            });
            let all = victim_units.iter().all(|u| now.contains(u)) && running;
            if all && taken_over.is_none() {
                taken_over = Some(killed.elapsed());
            }
            all
        },
    );
    assert!(
        done,
        "{victim_units:?} of the killed member were not taken over:\n{}\n--- killed ---\n{}",
        logs(&survivors),
        victim.daemon.log_text()
    );
    eprintln!(
        "units {victim_units:?} running again {:?} after kill -9 (session timeout {SESSION_MS} ms)",
        taken_over.expect("set when done")
    );
    drop(survivors);
    // At least once, a kill repeats at most the uncommitted tail; exactly
    // once, the new owner fenced the dead one and resumed from the
    // checkpoint committed with its last transaction.
    cluster.finish(!exactly_once);
}

#[test]
fn kill_9_of_a_member_moves_its_units_and_loses_nothing() {
    kill_9_a_member(false);
}

#[test]
fn kill_9_of_a_member_moves_its_units_exactly_once() {
    kill_9_a_member(true);
}

#[test]
fn a_member_added_later_takes_units_and_one_stopped_hands_them_over_without_duplicates() {
    let Some(mut cluster) =
        SixSources::start("cluster-join-leave", &["m0", "m1"], 40_000, false, false)
    else {
        return;
    };
    std::thread::sleep(Duration::from_secs(2));
    let joiner = cluster.group.member(cluster.dir.path(), "m2");
    cluster.members.push(Member::start(joiner));
    let owned = wait_spread(&cluster.refs(), &cluster.units, true);
    eprintln!("after m2 joined: {owned:?}");
    std::thread::sleep(Duration::from_secs(2));
    stop_one_and_check_handover(
        &mut cluster.members,
        &cluster.units,
        Duration::from_millis(SESSION_MS),
    );
    cluster.finish(false);
}

/// SIGTERMs `members[0]`: it drains and commits its units, then leaves the
/// group, and the others take them over sooner than `session` (the time a
/// member that just vanished would keep them); then every unit finishes.
fn stop_one_and_check_handover(
    members: &mut Vec<Member>,
    units: &BTreeSet<String>,
    session: Duration,
) {
    let mut first = members.remove(0);
    let status = first.daemon.sigterm_and_wait(Duration::from_secs(60));
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        first.daemon.log_text()
    );
    let exited = Instant::now();
    let refs: Vec<&Member> = members.iter().collect();
    let owned = wait_spread(&refs, units, true);
    let took = exited.elapsed();
    eprintln!("{:?} after {} stopped: {owned:?}", took, first.config.name);
    assert!(
        took < session,
        "the units of a member that left took {took:?} to move, no sooner than a session \
         timeout ({session:?}):\n{}",
        logs(&refs)
    );
}

#[test]
fn the_kip_848_protocol_shares_units_and_hands_them_over_on_stop() {
    let Some(mut cluster) = SixSources::start("cluster-kip848", &["m0", "m1"], 20_000, true, true)
    else {
        return;
    };
    eprintln!("ownership: {:?}", cluster.owned);
    assert_eq!(cluster.members[0].cluster()["protocol"], "consumer");
    std::thread::sleep(Duration::from_secs(2));
    // Kafka's default KIP-848 session is 45 s.
    stop_one_and_check_handover(
        &mut cluster.members,
        &cluster.units,
        Duration::from_secs(45),
    );
    cluster.finish(false);
}

#[test]
fn a_spool_shared_by_three_members_with_three_shards_reads_each_file_once() {
    let dir = TempDir::new("cluster-spool");
    let Some(broker) = kafka(&dir) else {
        return;
    };
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let files = 30u64;
    let rows = 500u64;
    let topic = broker.topic("spooled");
    broker.create_topic(&topic, 3);
    let sources = format!(
        "[[source]]\nname = \"spool\"\ntype = \"csv\"\ntopic = {}\nspool_dir = {}\n\
         pattern = \"*.csv\"\nsettle_ms = 200\nshards = 3\n",
        toml_str(&topic),
        toml_str(spool.to_str().unwrap()),
    );
    let group = Group::new(&broker, sources);
    let mut members: Vec<Member> = ["m0", "m1", "m2"]
        .iter()
        .map(|n| Member::start(group.member(dir.path(), n)))
        .collect();
    let units: BTreeSet<String> = (0..3).map(|i| format!("spool@{i}of3")).collect();
    {
        let refs: Vec<&Member> = members.iter().collect();
        let owned = wait_spread(&refs, &units, true);
        eprintln!("ownership: {owned:?}");
    }
    for f in 0..files {
        let mut text = String::from("seq,file,row\n");
        for r in 0..rows {
            text.push_str(&format!("{},{f},{r}\n", f * rows + r));
        }
        let tmp = dir.join(format!("part-{f:03}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, spool.join(format!("part-{f:03}.csv"))).unwrap();
    }
    let finished = spool.join("finished");
    let names = |d: &Path| -> BTreeSet<String> {
        std::fs::read_dir(d)
            .map(|e| {
                e.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let refs: Vec<&Member> = members.iter().collect();
    let done = wait_until(Duration::from_secs(120), || {
        names(&finished).len() as u64 >= files
    });
    assert!(done, "finished/: {:?}\n{}", names(&finished), logs(&refs));
    let expected: BTreeSet<String> = (0..files).map(|f| format!("part-{f:03}.csv")).collect();
    // Each file moved once: no collision suffix, nothing left, no error.
    assert_eq!(names(&finished), expected, "{}", logs(&refs));
    assert!(names(&spool.join("error")).is_empty());
    let left: BTreeSet<String> = names(&spool)
        .into_iter()
        .filter(|n| n.ends_with(".csv"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Every member read some of the files, through the unit it runs.
    for m in &refs {
        let produced: u64 = m
            .owned()
            .iter()
            .map(|unit| {
                http_get(&m.config.http, &format!("/api/v1/sources/{unit}")).json()
                    ["records_produced"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .sum();
        assert!(
            produced > 0,
            "{} read nothing:\n{}",
            m.config.name,
            m.daemon.log_text()
        );
    }
    stop_all(&mut members);
    let report = consume_seqs(
        &broker.bootstrap(),
        &topic,
        files * rows,
        Duration::from_secs(120),
    );
    eprintln!("{report}");
    assert!(report.exactly_once(), "{report}");
}

#[test]
fn cluster_mode_is_refused_without_the_kafka_store_a_real_broker_or_a_splittable_type() {
    let dir = TempDir::new("cluster-validate");
    let mut spec = ConfigSpec::new("embedded", dir.path()).drop_in(
        "sources.toml",
        "[[source]]\nname = \"logs\"\ntype = \"logfile\"\ntopic = \"logs\"\n\
         include = [\"/var/log/*.log\"]\nshards = 2\n",
    );
    spec.extra = "[cluster]\ngroup = \"ingest\"\n".to_owned();
    let config = write_config(dir.path(), &spec);
    let text = validate_refuses(&config);
    for expected in [
        "offsets.store",
        "store = \"kafka\"",
        "kafka.bootstrap_servers",
        "source[logs].shards",
        "cannot be split",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    // `--exit-when-finished` never ends a member.
    let mut spec = ConfigSpec::new("127.0.0.1:9", dir.path());
    spec.offsets_topic = Some("offsets".to_owned());
    spec.extra =
        "[cluster]\ngroup = \"ingest\"\nprotocol = \"consumer\"\nsession_timeout_ms = 6000\n"
            .to_owned();
    let config = write_config(dir.path(), &spec);
    let text = validate_refuses(&config);
    assert!(
        text.contains("cluster.session_timeout_ms") && text.contains("only used with protocol"),
        "{text}"
    );
    spec.extra = "[cluster]\ngroup = \"ingest\"\n".to_owned();
    let config = write_config(dir.path(), &spec);
    let out = run_cli(
        &[
            "run",
            "--exit-when-finished",
            "--config",
            config.to_str().unwrap(),
        ],
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    assert!(
        output_text(&out).contains("--exit-when-finished"),
        "{}",
        output_text(&out)
    );
}

#[test]
fn a_source_dropped_into_every_members_conf_d_runs_on_one_member_without_a_restart() {
    let dir = TempDir::new("cluster-reload");
    let Some(broker) = kafka(&dir) else {
        return;
    };
    let count = 10_000;
    let first = broker.topic("first");
    let added = broker.topic("added");
    broker.create_topic(&first, 2);
    broker.create_topic(&added, 2);
    let group = Group::new(&broker, datagen_source("first", &first, count, 1_000, 1));
    let configs: Vec<MemberConfig> = ["m0", "m1"]
        .iter()
        .map(|n| group.member(dir.path(), n))
        .collect();
    let conf_dirs: Vec<PathBuf> = configs
        .iter()
        .map(|c| c.config.parent().expect("a directory").join("conf.d"))
        .collect();
    let mut members: Vec<Member> = configs.into_iter().map(Member::start).collect();
    let one: BTreeSet<String> = ["first".to_owned()].into();
    {
        let refs: Vec<&Member> = members.iter().collect();
        wait_spread(&refs, &one, false);
    }
    for conf_d in &conf_dirs {
        std::fs::write(
            conf_d.join("added.toml"),
            datagen_source("added", &added, count, 1_000, 2),
        )
        .unwrap();
    }
    let both: BTreeSet<String> = ["first".to_owned(), "added".to_owned()].into();
    {
        let refs: Vec<&Member> = members.iter().collect();
        let owned = wait_spread(&refs, &both, false);
        eprintln!("after the drop-in: {owned:?}");
        wait_finished(&refs, &both, Duration::from_secs(120));
    }
    stop_all(&mut members);
    check_topics(&broker, &[first, added], count, false);
}

#[test]
fn a_paused_member_that_wakes_up_is_fenced_and_repeats_nothing_exactly_once() {
    let Some(mut cluster) =
        SixSources::start("cluster-zombie", &["m0", "m1", "m2"], 40_000, true, false)
    else {
        return;
    };
    std::thread::sleep(Duration::from_secs(3));
    // A VM frozen past its session: the others take its units over while
    // its transactions are still open.
    let frozen = cluster.owned[2].clone();
    cluster.members[2].daemon.signal(libc::SIGSTOP);
    let moved = {
        let survivors: Vec<&Member> = cluster.members[..2].iter().collect();
        wait_until(
            Duration::from_millis(SESSION_MS) + Duration::from_secs(20),
            || {
                let now: BTreeSet<String> = survivors.iter().flat_map(|m| m.owned()).collect();
                frozen.iter().all(|u| now.contains(u))
            },
        )
    };
    // Let the new owners produce and commit before the old one wakes.
    std::thread::sleep(Duration::from_secs(3));
    cluster.members[2].daemon.signal(libc::SIGCONT);
    assert!(
        moved,
        "{frozen:?} did not move off the frozen member:\n{}",
        logs(&cluster.refs())
    );
    // It learns it lost its units and gives nothing back twice: the units
    // now run elsewhere, fenced against its late transactions.
    wait_finished(&cluster.refs(), &cluster.units, Duration::from_secs(180));
    let woken = cluster.members[2].daemon.log_text();
    assert!(
        woken.contains("lost=true") || woken.contains("fenced") || woken.contains("Fenced"),
        "the woken member does not say it lost its units:\n{woken}"
    );
    cluster.finish(false);
}

#[test]
fn sources_that_read_their_host_run_on_every_member_and_the_rest_on_one() {
    let dir = TempDir::new("cluster-every-member");
    let Some(broker) = kafka(&dir) else {
        return;
    };
    let metrics_topic = broker.topic("host");
    let orders = broker.topic("orders");
    broker.create_topic(&metrics_topic, 1);
    broker.create_topic(&orders, 2);
    let sources = format!(
        "[[source]]\nname = \"host\"\ntype = \"sysmetrics\"\ntopic = {}\ninterval_ms = 1000\n\n{}",
        toml_str(&metrics_topic),
        datagen_source("orders", &orders, 1_000_000, 100, 5)
    );
    let group = Group::new(&broker, sources);
    let mut members: Vec<Member> = ["m0", "m1"]
        .iter()
        .map(|n| Member::start(group.member(dir.path(), n)))
        .collect();
    let refs: Vec<&Member> = members.iter().collect();
    let one: BTreeSet<String> = ["orders".to_owned()].into();
    wait_spread(&refs, &one, false);
    // Every member runs its own host's metrics; no member offers them as
    // a unit.
    let everywhere = wait_until(Duration::from_secs(30), || {
        refs.iter().all(|m| {
            m.states().get("host").map(String::as_str) == Some("running")
                && strings(&m.cluster()["every_member"]).contains("host")
                && !m.owned().contains("host")
        })
    });
    assert!(everywhere, "{}", logs(&refs));
    drop(refs);
    stop_all(&mut members);
}
