//! Small helpers the tests share: reading what the daemon committed, the
//! text of a command's output, polling for a condition.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

/// The next sequence number `source` committed, read from the daemon's
/// offset file (`source-<name>.json`: a JSON line with hex checkpoints, then
/// a checksum line). For datagen-style sources whose single partition's
/// checkpoint is a little-endian u64. `None` before the first commit.
pub fn committed_seq(offsets_dir: &Path, source: &str) -> Option<u64> {
    let text = std::fs::read_to_string(offsets_dir.join(format!("source-{source}.json"))).ok()?;
    let body: serde_json::Value = serde_json::from_str(text.lines().next()?).ok()?;
    let hex = body["partitions"].as_array()?.first()?["checkpoint"]
        .as_str()?
        .to_owned();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Standard output then standard error, as text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `done` every 50 ms until it holds or `timeout` passes; returns
/// whether it held.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// The seed of a randomised test: `TRIBUTARY_TEST_SEED` when set, else the
/// clock. Printed, so a failing run can be repeated exactly.
pub fn test_seed() -> u64 {
    let seed = std::env::var("TRIBUTARY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    eprintln!("TRIBUTARY_TEST_SEED={seed}");
    seed
}

/// A pseudo-random duration in `[min_ms, max_ms)`, advancing `seed`
/// (xorshift), so a run is a pure function of [`test_seed`].
pub fn pick(seed: &mut u64, min_ms: u64, max_ms: u64) -> Duration {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    Duration::from_millis(min_ms + *seed % (max_ms - min_ms))
}
