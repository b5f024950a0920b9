//! How much CPU the CSV reader spends per row, on the rows of the tables
//! benchmark (`benches/tables.py`): twelve columns, two of them decimals
//! and one a formatted timestamp, the rest inferred.
//!
//! The reader runs on a thread of its own in the daemon and is the first
//! stage to saturate, so its cost per row is worth watching apart from the
//! broker and the serialiser. Ignored by default, as it only means
//! something in an optimised build:
//!
//! ```text
//! cargo test --release -p tributary-tables --test reader_speed -- --ignored --nocapture
//! ```
//!
//! `TRIBUTARY_READER_ROWS` sets the row count (default 500 000).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tributary_tables::checkpoint::Checkpoint;
use tributary_tables::config::{Config, Format};
use tributary_tables::reader::csv::CsvReader;
use tributary_tables::reader::{Chunk, TableReader};

const STATUSES: [&str; 5] = ["new", "paid", "shipped", "delivered", "returned"];
const CURRENCIES: [&str; 3] = ["EUR", "USD", "GBP"];
const CHANNELS: [&str; 4] = ["web", "mobile", "store", "partner"];
const CITIES: [&str; 7] = [
    "Amsterdam",
    "Berlin",
    "Copenhagen",
    "Dublin",
    "Edinburgh",
    "Frankfurt",
    "Lisbon",
];

/// Row `seq` exactly as `benches/tables.py` writes it.
fn row(seq: u64, out: &mut Vec<u8>) {
    let qty = 1 + seq % 9;
    let unit = 100 + (seq * 7919) % 90000;
    let total = unit * qty;
    writeln!(
        out,
        "{seq},{},cust-{:05},SKU-{:05},{qty},{}.{:02},{}.{:02},{},{},{},{},2024-05-{:02} {:02}:{:02}:{:02}",
        10_000_000 + seq,
        (seq * 2_654_435_761) % 50000,
        (seq * 40503) % 100_000,
        unit / 100,
        unit % 100,
        total / 100,
        total % 100,
        CURRENCIES[(seq % 3) as usize],
        STATUSES[(seq % 5) as usize],
        CHANNELS[(seq % 4) as usize],
        CITIES[(seq % 7) as usize],
        1 + seq / 86400 % 28,
        seq / 3600 % 24,
        seq / 60 % 60,
        seq % 60,
    )
    .unwrap();
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Reads the whole file the way the plugin's reader thread does; returns
/// the rows read.
fn read_all(path: &Path, config: &Config) -> usize {
    let mut warnings = Vec::new();
    let mut reader = CsvReader::open(path, config, Checkpoint::default(), &mut warnings).unwrap();
    let mut rows = 0;
    loop {
        match reader.next_chunk(config.batch_rows).unwrap() {
            Chunk::Rows(batch) => rows += batch.num_rows(),
            Chunk::Dead(d) => panic!("unexpected bad rows: {:?}", d.first()),
            Chunk::End => return rows,
        }
    }
}

#[test]
#[ignore = "a measurement, meaningful only with --release"]
fn csv_reader_cpu_per_row() {
    let n: u64 = std::env::var("TRIBUTARY_READER_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let dir = std::env::temp_dir().join(format!("tributary-reader-speed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("orders.csv");
    let mut text = b"seq,order_id,customer_id,sku,qty,unit_price,total,currency,status,channel,city,created_at\n".to_vec();
    for seq in 0..n {
        row(seq, &mut text);
    }
    std::fs::write(&path, &text).unwrap();

    let config = Config::from_json(
        Format::Csv,
        &json!({
            "path": path.to_str().unwrap(),
            "batch_rows": 10_000,
            "columns": {
                "unit_price": "decimal(10,2)",
                "total": "decimal(12,2)",
                "created_at": "timestamp(%Y-%m-%d %H:%M:%S)",
            },
        }),
    )
    .unwrap();

    // One warm-up pass fills the page cache; the best of the rest is the
    // figure least disturbed by whatever else runs on the machine.
    assert_eq!(read_all(&path, &config), n as usize);
    let mut best = (Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        let (cpu0, wall0) = (thread_cpu(), Instant::now());
        assert_eq!(read_all(&path, &config), n as usize);
        let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
        if cpu < best.0 {
            best = (cpu, wall);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let per_row = |d: Duration| d.as_nanos() as f64 / n as f64;
    eprintln!(
        "csv reader: {n} rows, {} bytes; best of 5: {:.3} CPU-s ({:.0} ns/row), {:.3} s wall ({:.0} ns/row)",
        text.len(),
        best.0.as_secs_f64(),
        per_row(best.0),
        best.1.as_secs_f64(),
        per_row(best.1),
    );
}
