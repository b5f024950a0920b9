//! `logfile`: a tributary source plugin that follows log files like
//! `tail -F`, through rename and copytruncate rotation, truncation,
//! deletion and restarts, without losing or repeating a line.
//!
//! * [`config`]: the options;
//! * [`watch`]: inotify (or polling) wake-ups;
//! * [`identity`]: device + inode + fingerprint, and the checkpoint format;
//! * [`lines`]: the line splitter and multiline joiner;
//! * [`parse`]: lines to columns (`raw`, `json`, `regex`, built-in formats);
//! * [`time`]: a line's own time, from its text to UTC milliseconds;
//! * [`tail`]: the engine tying them together;
//! * this file: the thin glue to the plugin SDK.

pub mod config;
pub mod identity;
pub mod lines;
pub mod parse;
pub mod tail;
pub mod time;
pub mod watch;

use std::time::Duration;

use tributary_plugin_sdk::{
    ConfigIssue, CreateContext, Error, LagUnit, OptionSpec, Options, Poll, Source, SourceType,
};

use crate::config::Config;
use crate::tail::Tailer;

/// The `logfile` source type.
#[derive(Debug)]
pub struct LogFile {
    tailer: Tailer,
}

impl Source for LogFile {
    fn validate(options: &Options) -> Result<(), Vec<ConfigIssue>> {
        Config::from_options(options).map(|_| ())
    }

    fn create(ctx: CreateContext) -> Result<Self, Error> {
        let config = Config::from_options(&ctx.options).map_err(Error::from)?;
        Ok(LogFile {
            tailer: Tailer::new(config, &ctx.checkpoints, ctx.log),
        })
    }

    fn poll(&mut self, timeout: Duration) -> Result<Poll, Error> {
        Ok(match self.tailer.poll(timeout)? {
            Some(batch) => Poll::Batch(batch),
            None => Poll::Idle,
        })
    }
}

impl SourceType for LogFile {
    const NAME: &'static str = "logfile";
    const DESCRIPTION: &'static str =
        "Follows log files through rotation, truncation and restarts; one row per line.";
    /// Lines of one file stay in order on one Kafka partition.
    const DEFAULT_KEY: Option<&'static str> = Some(parse::column::FILE);
    /// Bytes of a file beyond the last line read.
    const LAG_UNIT: Option<LagUnit> = Some(LagUnit::Bytes);
    /// This host's files/metrics: in a cluster, every member reads its own.
    const READS_THIS_HOST: bool = true;

    fn options() -> Vec<OptionSpec> {
        config::options()
    }
}

tributary_plugin_sdk::export_plugin!(name: "logfile", sources: [LogFile]);
