//! The contract between tributary and its source plugins.
//!
//! * [`abi`]: the `#[repr(C)]` types and function table that cross the
//!   shared-library boundary; versioned, append-only. The C header
//!   `include/tributary_plugin.h` is generated from it.
//! * [`Options`]: a source type's options, declared once as
//!   [`OptionSpec`]s and read back typed with defaults applied.
//! * [`Source`] and [`SourceType`]: what a plugin author implements, in safe
//!   Rust, returning Arrow [`RecordBatch`](arrow_array::RecordBatch)es.
//! * [`bad_rows`]: rows a source cannot read — the `on_error` option, the
//!   policy that counts, logs and judges them, the split of a chunk into
//!   good rows and [`dead_letter`] batches, and throttled warnings.
//! * [`export_plugin!`]: generates the entry symbol, wrapping every entry
//!   point in `catch_unwind` so a panicking plugin fails its source, not the
//!   daemon.
//!
//! ```text
//! tributary_plugin_sdk::export_plugin!(name: "datagen", sources: [Generator]);
//! ```

#[cfg(panic = "abort")]
compile_error!(
    "tributary plugins must be built with panic = \"unwind\": the SDK turns a plugin panic \
     into a failed source at the ABI boundary, which is impossible when panics abort the daemon"
);

pub mod abi;
pub mod bad_rows;
pub mod calendar;
pub mod dead_letter;
#[doc(hidden)]
pub mod export;
mod options;
pub mod shard;
mod source;

pub use options::{OptionKind, OptionSpec, Options, options_object};
pub use source::{
    Batch, Checkpoint, ConfigIssue, CreateContext, Error, ErrorCategory, LagUnit, Logger, Poll,
    Source, SourceType,
};

/// Re-exported so plugins build batches with the same Arrow the SDK exports.
pub use arrow_array;
pub use arrow_schema;
pub use serde_json;

/// Exports a library's source types through the versioned entry symbol.
///
/// `name` names the library in `tributary plugins`; `sources` lists types
/// implementing [`SourceType`].
#[macro_export]
macro_rules! export_plugin {
    (name: $name:expr, sources: [$($source:ty),+ $(,)?] $(,)?) => {
        #[doc(hidden)]
        pub struct __TributaryPlugin;

        impl $crate::export::Plugin for __TributaryPlugin {
            fn exported() -> &'static $crate::export::Exported {
                static EXPORTED: ::std::sync::OnceLock<$crate::export::Exported> =
                    ::std::sync::OnceLock::new();
                EXPORTED.get_or_init(|| {
                    $crate::export::Exported::new::<__TributaryPlugin>(
                        $name,
                        env!("CARGO_PKG_VERSION"),
                        vec![$($crate::export::Registration::of::<$source>()),+],
                    )
                })
            }
        }

        /// The plugin's entry point; see `tributary_plugin_sdk::abi`.
        ///
        /// # Safety
        /// Called by the host after `dlsym`; takes no arguments.
        // Fuzz targets link several plugin crates into one program, where
        // one unmangled entry symbol per crate would clash; they call the
        // crates' Rust APIs and never look the symbol up.
        #[cfg_attr(not(fuzzing), unsafe(no_mangle))]
        pub unsafe extern "C" fn tributary_plugin_v1() -> *const $crate::abi::PluginDescriptor {
            $crate::export::entry::<__TributaryPlugin>()
        }
    };
}
