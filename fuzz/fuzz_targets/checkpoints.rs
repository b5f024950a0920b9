//! The checkpoint decoders on arbitrary bytes: the table sources' and the
//! log file source's checkpoints (which the daemon hands back to them
//! after a restart), and the daemon's offset file. A damaged value is an
//! error, never a panic; a value that decodes encodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary::offsets::{FileStore, OffsetStore};
use tributary_logfile::identity::{decode_checkpoint, encode_checkpoint};
use tributary_tables::checkpoint::Checkpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(checkpoint) = Checkpoint::decode(data) {
        assert_eq!(
            Checkpoint::decode(&checkpoint.encode()).ok(),
            Some(checkpoint),
            "tables checkpoint round trip"
        );
    }
    if let Ok((position, path)) = decode_checkpoint(data) {
        let again = encode_checkpoint(position, &path);
        assert_eq!(decode_checkpoint(&again).ok(), Some((position, path)));
    }
    let dir = std::env::temp_dir().join(format!("tributary-fuzz-offsets-{}", std::process::id()));
    let store = FileStore::open(dir).unwrap();
    std::fs::write(store.path_of("fuzz"), data).unwrap();
    let _ = store.load("fuzz");
});
