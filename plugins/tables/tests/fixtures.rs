//! The messy-CSV fixture set: every file under `tests/fixtures/` is read
//! through the source as the daemon would (create, poll until finished) and
//! what comes out — rows as the daemon's JSON serialiser writes them, dead
//! letters, and each batch's checkpoint — must equal `<file>.expected`
//! byte for byte.
//!
//! Set `TRIBUTARY_BLESS=1` to rewrite the expected files after a deliberate
//! change, then review the diff.

use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use serde_json::{Value, json};
use tributary_plugin_sdk::dead_letter::is_dead_letter;
use tributary_plugin_sdk::{CreateContext, Logger, Options, Poll, SourceType};
use tributary_tables::checkpoint::Checkpoint;
use tributary_tables::{CsvSource, NdjsonSource};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Rows as JSON lines, the way the daemon's serialiser writes them
/// (explicit nulls).
fn json_lines(batch: &RecordBatch) -> String {
    let mut out = Vec::new();
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::LineDelimited>(&mut out);
    writer.write(batch).unwrap();
    writer.finish().unwrap();
    String::from_utf8(out).unwrap()
}

fn dead_lines(batch: &RecordBatch) -> String {
    let raw = batch.column(0).as_binary::<i32>();
    let class = batch.column(1).as_string::<i32>();
    let message = batch.column(2).as_string::<i32>();
    let file = batch.column(3).as_string::<i32>();
    let line = batch.column(4).as_primitive::<UInt64Type>();
    let mut out = String::new();
    for i in 0..batch.num_rows() {
        let name = Path::new(file.value(i))
            .file_name()
            .unwrap()
            .to_string_lossy();
        out.push_str(&format!(
            "DEAD {name}:{} {} {:?} raw={:?}\n",
            line.value(i),
            class.value(i),
            message.value(i),
            String::from_utf8_lossy(raw.value(i)),
        ));
    }
    out
}

/// Reads everything `S` produces with `options` into the transcript.
fn transcript<S: SourceType>(options: Value) -> String {
    let mut source = S::create(CreateContext {
        source_name: "fixture".into(),
        options: Options::parse(&S::options(), &options).unwrap(),
        checkpoints: vec![],
        log: Logger::none(),
    })
    .unwrap();
    let mut out = String::new();
    for _ in 0..10_000 {
        match source.poll(Duration::from_millis(100)) {
            Ok(Poll::Batch(b)) => {
                let cp = Checkpoint::decode(&b.checkpoint).unwrap();
                out.push_str(&format!(
                    "# batch of {} rows; next row {}, line {}, byte {}{}{}\n",
                    b.records.num_rows(),
                    cp.next_row,
                    cp.next_line,
                    cp.byte_pos,
                    if cp.done { ", done" } else { "" },
                    if cp.failed { ", failed" } else { "" },
                ));
                if is_dead_letter(b.records.schema().as_ref()) {
                    out.push_str(&dead_lines(&b.records));
                } else if b.records.num_rows() > 0 {
                    out.push_str(&json_lines(&b.records));
                }
            }
            Ok(Poll::Idle) => {}
            Ok(Poll::Finished) => return out,
            Err(e) => {
                let text = e.to_string().replace(env!("CARGO_MANIFEST_DIR"), "");
                out.push_str(&format!("ERROR {text}\n"));
                return out;
            }
        }
    }
    panic!("the source never finished");
}

fn check(name: &str, got: &str) {
    let path = fixture(&format!("{name}.expected"));
    if std::env::var_os("TRIBUTARY_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with TRIBUTARY_BLESS=1", path.display()));
    assert_eq!(got, want, "{name}: output differs from {}", path.display());
}

fn csv(name: &str, mut options: Value) -> String {
    options["path"] = json!(fixture(name).to_str().unwrap());
    transcript::<CsvSource>(options)
}

#[test]
fn quoted_newlines_delimiters_and_quotes_are_one_row_each() {
    check("quoted.csv", &csv("quoted.csv", json!({})));
}

#[test]
fn bom_and_crlf_are_not_part_of_the_data() {
    check("crlf_bom.csv", &csv("crlf_bom.csv", json!({})));
}

#[test]
fn ragged_rows_are_dead_letters_with_their_line() {
    check(
        "ragged.csv",
        &csv(
            "ragged.csv",
            json!({"on_error": "dead_letter", "batch_rows": 2}),
        ),
    );
}

#[test]
fn ragged_rows_fail_the_source_naming_file_line_and_count() {
    check("ragged.csv.fail", &csv("ragged.csv", json!({})));
}

#[test]
fn ragged_rows_are_skipped_and_counted_under_skip() {
    check(
        "ragged.csv.skip",
        &csv("ragged.csv", json!({"on_error": "skip"})),
    );
}

#[test]
fn an_empty_file_and_a_header_only_file_have_no_rows() {
    check("empty.csv", &csv("empty.csv", json!({})));
    check("header_only.csv", &csv("header_only.csv", json!({})));
}

#[test]
fn invalid_utf8_is_a_bad_row_naming_its_column() {
    check(
        "bad_utf8.csv",
        &csv("bad_utf8.csv", json!({"on_error": "dead_letter"})),
    );
}

#[test]
fn overflowing_numbers_stay_text_when_inferred_and_are_bad_rows_when_typed() {
    check("overflow.csv", &csv("overflow.csv", json!({})));
    check(
        "overflow.csv.typed",
        &csv(
            "overflow.csv",
            json!({"on_error": "dead_letter", "columns": {"small": "int64", "big": "int64"}}),
        ),
    );
}

#[test]
fn tsv_with_explicit_timestamp_decimal_and_bool_columns() {
    check(
        "types.tsv",
        &csv(
            "types.tsv",
            json!({
                "delimiter": "\t",
                "on_error": "dead_letter",
                "columns": {
                    "at": "timestamp(%Y-%m-%d %H:%M:%S)",
                    "price": "decimal(10,2)",
                    "ok": "bool",
                },
            }),
        ),
    );
}

#[test]
fn gzip_files_are_read_transparently() {
    check("orders.csv.gz", &csv("orders.csv.gz", json!({})));
}

#[test]
fn escape_and_quote_characters_are_configurable() {
    check(
        "escaped.csv",
        &csv(
            "escaped.csv",
            json!({"delimiter": ";", "quote": "'", "escape": "\\"}),
        ),
    );
}

#[test]
fn a_header_that_changes_between_files_gives_each_file_its_columns() {
    let mut options = json!({});
    options["path"] = json!(fixture("header_?.csv").to_str().unwrap());
    check("header_change", &transcript::<CsvSource>(options));
}

#[test]
fn headerless_files_take_column_names() {
    let got = csv(
        "header_a.csv",
        json!({"has_header": false, "column_names": ["x", "y"]}),
    );
    check("header_a.csv.headerless", &got);
}

#[test]
fn ndjson_rows_keep_json_types_and_bad_lines_are_dead_letters() {
    let mut options = json!({"on_error": "dead_letter", "columns": {"score": "float64"}});
    options["path"] = json!(fixture("events.ndjson").to_str().unwrap());
    check("events.ndjson", &transcript::<NdjsonSource>(options));
}

#[test]
fn cells_a_type_would_change_keep_their_columns_text_unless_declared() {
    // Zip codes, prices, flags and times as public data sets write them:
    // inferred, only `population` is written back unchanged as a number.
    check("zips.csv", &csv("zips.csv", json!({})));
    // Declared types still convert, as asked.
    check(
        "zips.csv.typed",
        &csv(
            "zips.csv",
            json!({"columns": {
                "price": "float64",
                "active": "bool",
                "updated_at": "timestamp(%Y-%m-%d %H:%M:%S)",
            }}),
        ),
    );
}

#[test]
fn a_cell_after_the_sample_its_inferred_type_would_change_is_a_bad_row() {
    // `zip` is inferred as int64 from two rows; `00501` on line 4 would
    // be sent as 501.
    check("late.csv", &csv("late.csv", json!({"infer_rows": 2})));
    check(
        "late.csv.dead",
        &csv(
            "late.csv",
            json!({"infer_rows": 2, "on_error": "dead_letter"}),
        ),
    );
    let mut options = json!({"infer_rows": 2, "on_error": "dead_letter"});
    options["path"] = json!(fixture("late.ndjson").to_str().unwrap());
    check("late.ndjson", &transcript::<NdjsonSource>(options));
}
