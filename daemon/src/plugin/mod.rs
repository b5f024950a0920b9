//! The plugin host: loads libraries from the plugin directories, checks
//! their ABI, and calls them.
//!
//! A library that fails to load is reported and skipped; sources that need
//! it fail with a clear error while every other source runs.

mod instance;
mod loader;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use instance::{PluginConfigIssue, PluginInstance, PollOutcome, Polled};
pub use loader::{LoadedPlugin, OptionInfo, SourceTypeInfo, is_plugin_file};

/// Everything that can go wrong loading or calling a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The library could not be opened (missing dependency, not a library).
    #[error("{}: cannot load plugin library: {message}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// The library does not export the entry symbol.
    #[error("{}: not a tributary plugin: symbol `{symbol}` is missing", path.display())]
    MissingSymbol {
        /// The file.
        path: PathBuf,
        /// The symbol looked for.
        symbol: &'static str,
    },
    /// The library was built against another major version of the ABI.
    #[error(
        "{}: plugin ABI {}.{} is not compatible with this daemon's ABI {}.{} \
         (the major versions must match); {}",
        path.display(), plugin.0, plugin.1, host.0, host.1, rebuild_hint(plugin.0, host.0)
    )]
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// (major, minor) the plugin declares.
        plugin: (u32, u32),
        /// (major, minor) of this daemon.
        host: (u32, u32),
    },
    /// The descriptor is malformed.
    #[error("{}: invalid plugin descriptor: {message}", path.display())]
    BadDescriptor {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file or its directory can be written by other users.
    #[error("{}: refusing to load a plugin from a path other users can write", path.display())]
    WorldWritable {
        /// The offending file or directory.
        path: PathBuf,
    },
    /// Reading a directory or file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Two libraries provide the same source type.
    #[error(
        "{}: source type `{source_type}` is already provided by {}; ignoring this one",
        path.display(), first.display()
    )]
    DuplicateType {
        /// The library ignored.
        path: PathBuf,
        /// The duplicated type.
        source_type: String,
        /// The library that provides it.
        first: PathBuf,
    },
    /// A plugin call returned an error.
    #[error("plugin `{plugin}` failed in {call}: {message}")]
    Call {
        /// The library's name.
        plugin: String,
        /// The entry point.
        call: &'static str,
        /// The plugin's `ERROR_*` category.
        category: u32,
        /// The plugin's message.
        message: String,
    },
    /// A plugin call panicked; the panic was caught at the boundary.
    #[error("plugin `{plugin}` panicked in {call}: {message}")]
    Panicked {
        /// The library's name.
        plugin: String,
        /// The entry point.
        call: &'static str,
        /// The panic message.
        message: String,
    },
}

/// What to do about a plugin of another ABI major.
fn rebuild_hint(plugin: u32, host: u32) -> &'static str {
    if plugin < host {
        "rebuild it against this release: a Rust plugin with `tributary-plugin-sdk` 2 (options \
         are now read from `CreateContext::options`, errors carry a category), a C plugin \
         with this release's `tributary_plugin.h`; see docs/plugins.md"
    } else {
        "the plugin is newer than this daemon: upgrade tributary or use a plugin built for \
         this release"
    }
}

impl PluginError {
    /// The `ERROR_*` category of a failed call; a panic is internal.
    pub fn category(&self) -> u32 {
        match self {
            PluginError::Call { category, .. } => *category,
            _ => tributary_plugin_sdk::abi::ERROR_INTERNAL,
        }
    }

    /// Whether restarting the source would only repeat the error.
    pub fn is_permanent(&self) -> bool {
        tributary_plugin_sdk::abi::is_permanent(self.category())
    }
}

/// All loaded plugins, by the source types they provide.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    by_type: BTreeMap<String, Arc<LoadedPlugin>>,
    libraries: Vec<Arc<LoadedPlugin>>,
    /// Libraries that failed to load, kept for `tributary plugins` and status.
    pub errors: Vec<PluginError>,
}

impl PluginRegistry {
    /// Loads every plugin library in `dirs`, in order; the first library
    /// to provide a source type wins. Missing directories are skipped (the
    /// defaults name places that exist only on installed systems).
    pub fn load(dirs: &[PathBuf]) -> Self {
        let mut registry = PluginRegistry::default();
        for dir in dirs {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    registry.errors.push(PluginError::Io {
                        path: dir.clone(),
                        source: e,
                    });
                    continue;
                }
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_plugin_file(p))
                .collect();
            files.sort();
            for file in files {
                registry.add_file(&file);
            }
        }
        registry
    }

    /// Loads one library into the registry, recording any error.
    pub fn add_file(&mut self, file: &Path) {
        if self.libraries.iter().any(|l| l.path == file) {
            return;
        }
        match loader::load(file) {
            Ok(plugin) => {
                for t in &plugin.source_types {
                    if let Some(first) = self.by_type.get(&t.name) {
                        self.errors.push(PluginError::DuplicateType {
                            path: file.to_path_buf(),
                            source_type: t.name.clone(),
                            first: first.path.clone(),
                        });
                    } else {
                        self.by_type.insert(t.name.clone(), plugin.clone());
                    }
                }
                tracing::debug!(path = %file.display(), plugin = %plugin.name, "Loaded plugin.");
                self.libraries.push(plugin);
            }
            Err(e) => self.errors.push(e),
        }
    }

    /// The library providing `source_type`.
    pub fn get(&self, source_type: &str) -> Option<&Arc<LoadedPlugin>> {
        self.by_type.get(source_type)
    }

    /// The description of `source_type`.
    pub fn source_type(&self, source_type: &str) -> Option<&SourceTypeInfo> {
        self.get(source_type)?
            .source_types
            .iter()
            .find(|t| t.name == source_type)
    }

    /// Every loaded library.
    pub fn libraries(&self) -> &[Arc<LoadedPlugin>] {
        &self.libraries
    }

    /// Every known source type name.
    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.by_type.keys().map(String::as_str)
    }
}
