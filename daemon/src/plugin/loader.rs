//! Finding and loading plugin libraries, and checking their ABI.

use std::ffi::{CStr, c_char};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tributary_plugin_sdk::abi::{self, ABI_MAJOR, ABI_MINOR, ENTRY_SYMBOL, EntryFn};
use tributary_plugin_sdk::{LagUnit, OptionKind};

use super::PluginError;

/// One option of a source type, copied out of the library's descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionInfo {
    /// The key in the `[[source]]` table.
    pub name: String,
    /// `string`, `integer`, `float`, `boolean`, `array` or `table`.
    pub kind: String,
    /// The `OPTION_*` code of `kind`, passed back with each value.
    pub kind_code: u32,
    /// The default as a TOML literal.
    pub default: Option<String>,
    /// What the option does.
    pub doc: String,
    /// Allowed values of a string option; empty for any.
    pub choices: Vec<String>,
    /// Whether the key must be present.
    pub required: bool,
    /// The smallest accepted value of a number option.
    pub minimum: Option<f64>,
    /// The largest accepted value of a number option.
    pub maximum: Option<f64>,
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
    /// The key column used when a source sets no `key`.
    pub default_key: Option<String>,
    /// What the lag its sources report counts; `None` when they report
    /// none (their lag is then not exported).
    pub lag_unit: Option<LagUnit>,
    /// Whether its sources read the host they run on (log files, host
    /// metrics): in a cluster they run on every member instead of being
    /// units of work that move between members.
    pub reads_this_host: bool,
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

/// # Safety
/// `ptr` must be null or point to `len` valid entries that live as long as
/// the library.
unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: non-null with `len` entries per the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// Copies the source type entries of a descriptor, whatever minor version of
/// ABI 2 laid them out: the array's stride is the plugin's `struct_size`, and
/// fields the plugin's minor version does not have read as zero (a 2.0 entry
/// has no `placement`, which then means "a unit of work").
///
/// # Safety
/// `ptr` is null or points to `len` entries of equal `struct_size`, each at
/// least that many bytes long.
unsafe fn source_type_entries(
    ptr: *const abi::SourceTypeDescriptor,
    len: usize,
) -> Result<Vec<abi::SourceTypeDescriptor>, u32> {
    if ptr.is_null() || len == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the first entry starts with its `struct_size` (every ABI 2 struct does).
    let stride = unsafe { std::ptr::addr_of!((*ptr).struct_size).read_unaligned() };
    if stride < abi::SOURCE_TYPE_DESCRIPTOR_2_0_SIZE {
        return Err(stride);
    }
    let stride = stride as usize;
    let known = stride.min(size_of::<abi::SourceTypeDescriptor>());
    (0..len)
        .map(|i| {
            let mut entry = std::mem::MaybeUninit::<abi::SourceTypeDescriptor>::zeroed();
            // SAFETY: entry `i` has `stride ≥ known` readable bytes per the
            // caller; the copy fills the first `known` bytes of a zeroed
            // value, and all-zero is valid for every field (integers and raw
            // pointers).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    ptr.cast::<u8>().add(i * stride),
                    entry.as_mut_ptr().cast::<u8>(),
                    known,
                );
                Ok(entry.assume_init())
            }
        })
        .collect()
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
    // Every field this host reads exists in 2.0; fields appended by later
    // minors are not read.
    if (size as usize) < size_of::<abi::PluginDescriptor>() {
        return Err(PluginError::BadDescriptor {
            path: path.to_path_buf(),
            message: format!(
                "descriptor is {size} bytes, ABI {ABI_MAJOR}.0 has {}",
                size_of::<abi::PluginDescriptor>()
            ),
        });
    }
    // SAFETY: same major and large enough: the layout is ours.
    let desc = unsafe { &*desc_ptr };
    let bad = |message: String| PluginError::BadDescriptor {
        path: path.to_path_buf(),
        message,
    };
    let mut source_types = Vec::new();
    // SAFETY: the descriptor's arrays and strings live as long as the library.
    let types = unsafe { source_type_entries(desc.source_types, desc.source_types_len) }
        .map_err(|size| bad(format!("a source type entry is {size} bytes")))?;
    for t in &types {
        // SAFETY: as above.
        let opts = unsafe { slice(t.options, t.options_len) };
        let mut options = Vec::new();
        for o in opts {
            // SAFETY: as above.
            let name = unsafe { text(o.name) };
            if (o.struct_size as usize) < size_of::<abi::OptionDescriptor>() {
                return Err(bad(format!(
                    "option `{name}`: entry is {} bytes",
                    o.struct_size
                )));
            }
            let Some(kind) = OptionKind::from_code(o.kind) else {
                return Err(bad(format!(
                    "option `{name}`: unknown type code {}",
                    o.kind
                )));
            };
            let bound = |p: *const c_char, which: &str| -> Result<Option<f64>, PluginError> {
                if p.is_null() {
                    return Ok(None);
                }
                // SAFETY: as above.
                let literal = unsafe { text(p) };
                literal.parse::<f64>().map(Some).map_err(|_| {
                    bad(format!(
                        "option `{name}`: {which} `{literal}` is not a number"
                    ))
                })
            };
            options.push(OptionInfo {
                kind: kind.as_str().to_owned(),
                kind_code: o.kind,
                // SAFETY: as above.
                default: (!o.default_value.is_null()).then(|| unsafe { text(o.default_value) }),
                // SAFETY: as above.
                doc: unsafe { text(o.doc) },
                // SAFETY: as above.
                choices: unsafe { slice(o.choices, o.choices_len) }
                    .iter()
                    // SAFETY: as above.
                    .map(|c| unsafe { text(*c) })
                    .collect(),
                required: o.required,
                minimum: bound(o.minimum, "minimum")?,
                maximum: bound(o.maximum, "maximum")?,
                name,
            });
        }
        // SAFETY: as above.
        let type_name = unsafe { text(t.name) };
        // An ABI 2.0 entry ends before `placement`: its sources are units.
        let reads_this_host = t.placement == abi::PLACEMENT_EVERY_MEMBER;
        // SAFETY: as above.
        let lag_unit = (!t.lag_unit.is_null()).then(|| unsafe { text(t.lag_unit) });
        let lag_unit = lag_unit
            .map(|unit| {
                LagUnit::from_name(&unit).ok_or_else(|| {
                    bad(format!(
                        "source type `{type_name}`: lag unit `{unit}` is neither `rows` nor \
                         `bytes` (null when the type reports no lag)"
                    ))
                })
            })
            .transpose()?;
        source_types.push(SourceTypeInfo {
            name: type_name,
            // SAFETY: as above.
            description: unsafe { text(t.description) },
            options,
            // SAFETY: as above.
            default_key: (!t.default_key.is_null()).then(|| unsafe { text(t.default_key) }),
            lag_unit,
            reads_this_host,
        });
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
