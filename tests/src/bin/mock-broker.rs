//! librdkafka's mock cluster in a process of its own, so benchmarks can
//! point tributary and `kcat` at the same broker over loopback with no JVM
//! (the broker's own CPU is then negligible next to the producers').
//!
//! Usage: `mock-broker TOPIC:PARTITIONS...` — prints the bootstrap address
//! on stdout, then serves until killed. The mock keeps only the newest
//! ~5 MiB of each partition; count what was produced by high watermarks.

use std::io::Write;

use rdkafka::mocking::MockCluster;

fn main() {
    let cluster = MockCluster::new(1).expect("cannot start the mock cluster");
    for spec in std::env::args().skip(1) {
        let (topic, partitions) = spec
            .split_once(':')
            .and_then(|(t, p)| Some((t.to_owned(), p.parse::<i32>().ok()?)))
            .unwrap_or_else(|| panic!("expected TOPIC:PARTITIONS, got `{spec}`"));
        cluster
            .create_topic(&topic, partitions, 1)
            .unwrap_or_else(|e| panic!("cannot create {topic}: {e}"));
    }
    let mut out = std::io::stdout().lock();
    // If stdout is gone nobody can learn the address; exiting is right.
    writeln!(out, "{}", cluster.bootstrap_servers()).expect("stdout");
    out.flush().expect("stdout");
    drop(out);
    loop {
        std::thread::park();
    }
}
