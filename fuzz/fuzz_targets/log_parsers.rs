//! The log line parsers (JSON, syslog RFC 3164 and 5424, nginx/apache
//! combined, a user regex with typed captures) on arbitrary text: a
//! line is parsed or refused with a reason, never a panic.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use regex::Regex;
use tributary_logfile::parse::{ColumnType, Parser};

fn parsers() -> &'static [Parser] {
    static PARSERS: OnceLock<Vec<Parser>> = OnceLock::new();
    PARSERS.get_or_init(|| {
        let mut all: Vec<Parser> = Parser::NAMES
            .iter()
            .filter(|name| **name != "regex")
            .map(|name| Parser::build(name, None, BTreeMap::new()).expect("a built-in parser"))
            .collect();
        let regex =
            Regex::new(r"^(?P<at>\S+) (?P<level>\w+) (?P<n>-?\d+) (?P<ok>\w+) (?P<x>.*)$").unwrap();
        let types = BTreeMap::from([
            ("n".to_owned(), ColumnType::parse("int64").unwrap()),
            ("ok".to_owned(), ColumnType::parse("boolean").unwrap()),
            ("x".to_owned(), ColumnType::parse("float64").unwrap()),
        ]);
        all.push(Parser::build("regex", Some(regex), types).expect("the regex parser"));
        all
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for parser in parsers() {
        let _ = parser.parse(text);
    }
});
