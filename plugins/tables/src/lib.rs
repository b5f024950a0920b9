//! `csv`, `ndjson`, `parquet` and `arrow`: tributary source plugins for
//! tables in files — replacing `pandas.read_csv(...).iterrows()` loops that
//! call `producer.send` per row, and Kafka Connect's spooldir connector.
//!
//! * [`engine`]: files, globs and spool directories; moving files only
//!   after their last checkpoint is committed;
//! * [`reader`]: one streaming reader per format;
//! * [`types`]: column types, inference and parsing;
//! * [`checkpoint`]: file identity and the checkpoint encoding;
//! * [`config`]: the options;
//! * this file: the thin glue to the plugin SDK.
//!
//! One source type per format, rather than one `table` type with a format
//! option: each type declares exactly the options that apply to it (a
//! `delimiter` on a Parquet source is refused by `tributary validate`), and
//! `format` already names the serialiser in a `[[source]]` table.

pub mod checkpoint;
pub mod config;
pub mod engine;
pub mod reader;
pub mod types;

use std::time::Duration;

use tributary_plugin_sdk::{
    ConfigIssue, CreateContext, Error, LagUnit, OptionSpec, Options, Poll, Source, SourceType,
};

use crate::config::{Config, Format};
use crate::engine::Tables;

/// Declares one source type over the shared engine.
macro_rules! table_source {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $format:expr, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty(Tables);

        impl Source for $ty {
            fn validate(options: &Options) -> Result<(), Vec<ConfigIssue>> {
                Config::from_options($format, options).map(|_| ())
            }

            fn create(ctx: CreateContext) -> Result<Self, Error> {
                let config = Config::from_options($format, &ctx.options).map_err(Error::from)?;
                Tables::new(config, &ctx.checkpoints, ctx.log).map($ty)
            }

            fn poll(&mut self, timeout: Duration) -> Result<Poll, Error> {
                self.0.poll(timeout)
            }

            fn committed(&mut self, partition: &[u8], checkpoint: &[u8]) -> Result<(), Error> {
                self.0.committed(partition, checkpoint)
            }
        }

        impl SourceType for $ty {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = $description;
            const LAG_UNIT: Option<LagUnit> = Some($format.lag_unit());

            fn options() -> Vec<OptionSpec> {
                config::options($format)
            }
        }
    };
}

table_source!(
    /// CSV, TSV and other delimited text.
    CsvSource,
    "csv",
    Format::Csv,
    "Rows of CSV/TSV files (a file, a glob or a spool directory), typed by config or inference."
);
table_source!(
    /// Newline-delimited JSON objects.
    NdjsonSource,
    "ndjson",
    Format::Ndjson,
    "Rows of NDJSON files (a file, a glob or a spool directory), typed by config or inference."
);
table_source!(
    /// Apache Parquet files.
    ParquetSource,
    "parquet",
    Format::Parquet,
    "Rows of Parquet files (a file, a glob or a spool directory), with their own types."
);
table_source!(
    /// Arrow IPC (Feather v2) files and streams.
    ArrowSource,
    "arrow",
    Format::Arrow,
    "Rows of Arrow IPC / Feather files (a file, a glob or a spool directory), with their own types."
);

tributary_plugin_sdk::export_plugin!(
    name: "csv",
    sources: [CsvSource, NdjsonSource, ParquetSource, ArrowSource]
);
