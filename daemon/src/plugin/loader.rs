//! Finding and loading plugin libraries, and checking their ABI.

use std::ffi::{CStr, c_char};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tributary_plugin_sdk::abi::{self, ABI_MAJOR, ABI_MINOR, ENTRY_SYMBOL, EntryFn};

use super::PluginError;

/// One option of a source type, copied out of the library's descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionInfo {
    /// The key in the `[[source]]` table.
    pub name: String,
    /// `string`, `integer`, `float`, `boolean`, `array` or `table`.
    pub kind: String,
    /// The default as a TOML literal.
    pub default: Option<String>,
    /// What the option does.
    pub doc: String,
    /// Allowed values of a string option; empty for any.
    pub choices: Vec<String>,
    /// Whether the key must be present.
    pub required: bool,
}

/// A source type offered by a loaded library.
#[derive(Debug, Clone)]
pub struct SourceTypeInfo {
    /// The value of `type` in a `[[source]]` table.
    pub name: String,
    /// One sentence for listings.
    pub description: String,
    /// The accepted options.
    pub options: Vec<OptionInfo>,
    /// The key column used when a source sets no `key` (ABI 1.1).
    pub default_key: Option<String>,
}

/// A plugin library that passed the ABI check. It is never unloaded: code of
/// a library must outlive every thread that might still be inside it, and a
/// daemon has no reliable way to know that.
#[derive(Debug)]
pub struct LoadedPlugin {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The library's own name.
    pub name: String,
    /// The library's version.
    pub version: String,
    /// ABI version the library was built with.
    pub abi: (u32, u32),
    /// Source types it provides.
    pub source_types: Vec<SourceTypeInfo>,
    pub(super) vtable: VTable,
}

/// The function table, copied so calls do not go through the descriptor.
#[derive(Debug, Clone, Copy)]
pub(super) struct VTable {
    pub validate: abi::ValidateFn,
    pub create: abi::CreateFn,
    pub poll: abi::PollFn,
    pub committed: abi::CommittedFn,
    pub last_error: abi::LastErrorFn,
    pub destroy: abi::DestroyFn,
}

/// Whether `path` looks like a tributary plugin library: the project's
/// naming rule keeps stray shared libraries in the same directory (the
/// executable's directory is searched by default) from being loaded.
pub fn is_plugin_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let (prefix, suffix) = (std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    name.starts_with(&format!("{prefix}tributary_")) && name.ends_with(suffix)
}

/// Refuses files and directories that other users can write: whoever can
/// write a plugin can run code inside the daemon.
#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), PluginError> {
    use std::os::unix::fs::PermissionsExt;
    for p in [Some(path), path.parent()].into_iter().flatten() {
        let meta = std::fs::metadata(p).map_err(|e| PluginError::Io {
            path: p.to_path_buf(),
            source: e,
        })?;
        let mode = meta.permissions().mode();
        let sticky = mode & 0o1000 != 0;
        if mode & 0o002 != 0 && !(meta.is_dir() && sticky && p != path) {
            return Err(PluginError::WorldWritable {
                path: p.to_path_buf(),
            });
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), PluginError> {
    Ok(())
}

/// # Safety
/// `p` must be null or a NUL-terminated string valid for the library's life.
unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: non-null and NUL-terminated per the caller.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Loads one library and checks its ABI.
pub fn load(path: &Path) -> Result<Arc<LoadedPlugin>, PluginError> {
    check_permissions(path)?;
    // SAFETY: loading a library runs its initialisers. That is the contract
    // of a plugin directory: only trusted, non-world-writable files are here.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| PluginError::Open {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    // SAFETY: the symbol's type is fixed by the ABI's entry-function rule.
    let entry: libloading::Symbol<'_, EntryFn> = unsafe { lib.get(ENTRY_SYMBOL.as_bytes()) }
        .map_err(|_| PluginError::MissingSymbol {
            path: path.to_path_buf(),
            symbol: ENTRY_SYMBOL,
        })?;
    // SAFETY: the entry function takes no arguments and returns a pointer
    // that is valid while the library is loaded (forever, see below).
    let desc_ptr = unsafe { entry() };
    if desc_ptr.is_null() {
        return Err(PluginError::BadDescriptor {
            path: path.to_path_buf(),
            message: "the entry symbol returned a null descriptor".into(),
        });
    }
    // Read only the three leading fields first: every ABI version has them,
    // and a different major may have an entirely different layout after them.
    // SAFETY: the first three u32 fields are common to every ABI version.
    let (major, minor, size) = unsafe {
        let head = desc_ptr.cast::<u32>();
        (*head, *head.add(1), *head.add(2))
    };
    if major != ABI_MAJOR {
        return Err(PluginError::AbiMismatch {
            path: path.to_path_buf(),
            plugin: (major, minor),
            host: (ABI_MAJOR, ABI_MINOR),
        });
    }
    // Every field this host reads exists in 1.0; fields appended by later
    // minors are read only when `size` covers them.
    if (size as usize) < abi::DESCRIPTOR_SIZE_V1_0 {
        return Err(PluginError::BadDescriptor {
            path: path.to_path_buf(),
            message: format!(
                "descriptor is {size} bytes, ABI {ABI_MAJOR}.0 has {}",
                abi::DESCRIPTOR_SIZE_V1_0
            ),
        });
    }
    // SAFETY: same major and large enough: the layout is ours.
    let desc = unsafe { &*desc_ptr };
    let mut source_types = Vec::new();
    // SAFETY: the descriptor's arrays and strings live as long as the library.
    unsafe {
        let types = if desc.source_types.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(desc.source_types, desc.source_types_len)
        };
        for t in types {
            let opts = if t.options.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(t.options, t.options_len)
            };
            source_types.push(SourceTypeInfo {
                name: text(t.name),
                description: text(t.description),
                options: opts
                    .iter()
                    .map(|o| OptionInfo {
                        name: text(o.name),
                        kind: text(o.kind),
                        default: (!o.default_value.is_null()).then(|| text(o.default_value)),
                        doc: text(o.doc),
                        choices: if o.choices.is_null() {
                            Vec::new()
                        } else {
                            text(o.choices).split('|').map(str::to_owned).collect()
                        },
                        required: o.required,
                    })
                    .collect(),
                default_key: None,
            });
        }
        // Fields of 1.1 exist only when the descriptor is large enough.
        let has_extras = size as usize >= size_of::<abi::PluginDescriptor>()
            && !desc.source_type_extras.is_null();
        if has_extras {
            let extras = std::slice::from_raw_parts(desc.source_type_extras, types.len());
            for (info, extra) in source_types.iter_mut().zip(extras) {
                if extra.is_null() {
                    continue;
                }
                let size = (**extra).struct_size as usize;
                if size >= size_of::<abi::SourceTypeExtras>() && !(**extra).default_key.is_null() {
                    info.default_key = Some(text((**extra).default_key));
                }
            }
        }
    }
    let plugin = LoadedPlugin {
        path: path.to_path_buf(),
        // SAFETY: strings live as long as the library.
        name: unsafe { text(desc.name) },
        // SAFETY: as above.
        version: unsafe { text(desc.version) },
        abi: (major, minor),
        source_types,
        vtable: VTable {
            validate: desc.validate,
            create: desc.create,
            poll: desc.poll,
            committed: desc.committed,
            last_error: desc.last_error,
            destroy: desc.destroy,
        },
    };
    // Never unload: see `LoadedPlugin`.
    std::mem::forget(lib);
    Ok(Arc::new(plugin))
}
