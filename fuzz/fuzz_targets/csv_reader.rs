//! The table readers on arbitrary bytes: the first byte picks CSV, TSV or
//! NDJSON (and whether typed columns are declared); the rest is the file.
//! Every chunk is read to the end: no panic, bad rows come back as dead
//! letters or one error, and the reader always ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tributary_tables::checkpoint::Checkpoint;
use tributary_tables::config::{Config, Format};
use tributary_tables::reader::csv::CsvReader;
use tributary_tables::reader::ndjson::NdjsonReader;
use tributary_tables::reader::{Chunk, TableReader};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tributary-fuzz-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("input");
    std::fs::write(&path, body).unwrap();
    let format = if mode % 3 == 2 {
        Format::Ndjson
    } else {
        Format::Csv
    };
    let mut options = json!({
        "path": path.to_str().unwrap(),
        "batch_rows": 7,
        "on_error": "dead_letter",
    });
    if mode % 3 == 1 {
        options["delimiter"] = json!("\t");
    }
    if mode & 0x10 != 0 {
        options["columns"] = json!({
            "a": "int64",
            "b": "decimal(10,2)",
            "c": "timestamp(%Y-%m-%d %H:%M:%S)",
            "d": "float64",
            "e": "bool",
        });
    }
    let Ok(config) = Config::from_json(format, &options) else {
        return;
    };
    let mut warnings = Vec::new();
    let reader: Result<Box<dyn TableReader>, _> = match format {
        Format::Ndjson => NdjsonReader::open(&path, &config, Checkpoint::default())
            .map(|r| Box::new(r) as Box<dyn TableReader>),
        _ => CsvReader::open(&path, &config, Checkpoint::default(), &mut warnings)
            .map(|r| Box::new(r) as Box<dyn TableReader>),
    };
    let Ok(mut reader) = reader else {
        return;
    };
    // Every call either moves through the input or ends it.
    for _ in 0..=body.len() + 1 {
        match reader.next_chunk(config.batch_rows) {
            Ok(Chunk::End) | Err(_) => return,
            Ok(Chunk::Rows(_) | Chunk::Dead(_)) => {}
        }
    }
    panic!("the reader neither ended nor failed after one chunk per input byte");
});
