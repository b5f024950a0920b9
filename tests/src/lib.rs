//! The shared harness for tributary's integration and fault tests.
//!
//! Tests drive the real `tributary` binary as a child process against a real
//! Kafka-protocol broker, then count what reached the topic with an
//! independent consumer (the oracle). This crate deliberately does not depend
//! on the daemon crate: the harness compiles, and its own tests run, whatever
//! state the daemon is in.
//!
//! A typical test:
//!
//! ```no_run
//! use std::time::Duration;
//! use tributary_tests::*;
//!
//! for kind in brokers_under_test() {
//!     let dir = TempDir::new("example"); // first: dropped last
//!     let broker = Broker::start(kind, dir.path());
//!     let topic = broker.topic("orders"); // unique on a shared broker
//!     broker.create_topic(&topic, 3);
//!     let spec = ConfigSpec::new(&broker.bootstrap(), dir.path())
//!         .drop_in("orders.toml", datagen_source("orders", &topic, 1000, 5000, 7));
//!     let config = write_config(dir.path(), &spec);
//!     let _daemon = Daemon::start(&config, &dir.join("daemon.log"));
//!     let report = consume_seqs(&broker.bootstrap(), &topic, 1000, Duration::from_secs(60));
//!     assert!(report.nothing_missing(), "{kind}: {report}");
//! }
//! ```
//!
//! Every process started here listens on loopback only and is stopped by its
//! PID when its handle drops, including on panic.

mod broker;
mod checks;
mod config;
mod daemon;
mod http;
mod kafka;
mod logs;
mod oracle;
mod paths;
mod process;
mod prometheus;
mod tempdir;
mod tls;

pub use broker::{
    Broker, BrokerKind, Mock, MockBroker, broker_of_record, brokers_under_test,
    create_topic_with_configs, delete_topic_with_admin, free_port,
};
pub use checks::{committed_seq, output_text, pick, test_seed, wait_until};
pub use config::{ConfigSpec, datagen_source, toml_str, write_config};
pub use daemon::{Daemon, run_cli, run_until_finished, validate_refuses};
pub use http::{HttpReply, http_get, http_request, metric_value, read_reply, url_encode};
pub use kafka::{
    KAFKA_ENV, KafkaBroker, SecureListeners, kafka_available, kafka_script, shared_kafka,
};
pub use logs::{
    LineWriter, Logrotate, append, append_seqs, logfile_source, seq_line, seqs_in_files,
};
pub use oracle::{
    MISSING_LISTED, Record, SeqReport, TRAILING_READ, consume_json, consume_seq_set, consume_seqs,
    produce_seqs,
};
pub use paths::{build_c_plugin, daemon_bin, plugin_lib, repo_root, target_dir};
pub use process::log_tail;
pub use prometheus::{PROMETHEUS_BIN_ENV, Prometheus, prometheus_bin, promtool_bin};
pub use tempdir::{KEEP_ENV, TempDir};
pub use tls::{Ca, openssl_available};
