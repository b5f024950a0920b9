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
