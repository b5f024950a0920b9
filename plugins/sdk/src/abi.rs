//! The C ABI shared by the daemon and every plugin (ABI 2.0).
//!
//! Everything here is `#[repr(C)]` so a plugin can be written in any language
//! that speaks C and the Arrow C Data Interface; `include/tributary_plugin.h`
//! is generated from this file and is what a C author reads. The rules that
//! keep plugins loadable:
//!
//! * a library exports exactly one entry symbol, `tributary_plugin_v1`, a
//!   function without arguments returning a pointer to a [`PluginDescriptor`]
//!   that lives as long as the library is loaded;
//! * every struct a side may extend starts with its `struct_size`; new fields
//!   are only ever appended (a minor version bump), so a reader checks
//!   `struct_size` before touching a field it knows;
//! * a different `abi_major` means the function table changed shape: the host
//!   refuses the library and names both versions;
//! * memory crosses the boundary only with a release callback supplied by the
//!   side that allocated it ([`OwnedBytes`], the Arrow structs), so the two
//!   sides may use different allocators;
//! * one plugin instance is only ever called from one thread at a time.
//!
//! What changed from 1.x, and why a 1.x library is refused rather than
//! adapted: errors now carry a category (so the daemon can tell a file that
//! will never parse from a disk that was briefly unavailable), option values
//! arrive typed with their declared defaults applied (so a plugin in C needs
//! no JSON parser), and the log callback carries a context pointer. A 1.x
//! library has none of these, and an adapter would have to guess every error
//! as transient — the restart loop 2.0 exists to end.

use std::ffi::{c_char, c_void};

pub use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};

/// The major version of this ABI. A host only loads plugins of its own major.
pub const ABI_MAJOR: u32 = 2;
/// The minor version of this ABI: fields appended to the structs below.
pub const ABI_MINOR: u32 = 1;
/// The name of the one symbol every plugin library exports.
///
/// The `v1` names the shape of the *entry function* (no arguments, returns a
/// descriptor pointer), which never changes; the descriptor carries the ABI
/// version of everything else, so a plugin of another major still reaches
/// the version check and gets a precise error instead of "symbol not found".
pub const ENTRY_SYMBOL: &str = "tributary_plugin_v1";

/// The type of the entry symbol.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginDescriptor;

/// A call succeeded; `poll` filled in a batch.
pub const STATUS_OK: i32 = 0;
/// `poll`: no data arrived within the timeout; the host calls again.
pub const STATUS_IDLE: i32 = 1;
/// `poll`: the source has no more data, ever (a finite generator, a one-shot
/// file import). The host stops polling and keeps the offsets.
pub const STATUS_FINISHED: i32 = 2;
/// The call failed. `create` and `validate` describe the failure in their
/// error out-parameter; other calls through `last_error`.
pub const STATUS_ERROR: i32 = -1;
/// The call panicked or crashed inside the plugin and the instance may be
/// inconsistent: the host only destroys it.
pub const STATUS_PANIC: i32 = -2;

/// Error category: a bug or an unexpected state inside the plugin. The
/// source is restarted after a back-off.
pub const ERROR_INTERNAL: u32 = 1;
/// Error category: reading failed (a disk error, a dropped connection). The
/// source is restarted after a back-off.
pub const ERROR_IO: u32 = 2;
/// Error category: something took too long. The source is restarted after a
/// back-off.
pub const ERROR_TIMEOUT: u32 = 3;
/// Error category: something the source needs does not exist yet (a file, a
/// directory). The source is restarted after a back-off, so it starts once
/// the thing appears.
pub const ERROR_NOT_FOUND: u32 = 4;
/// Error category: the input itself is wrong and will stay wrong (a binary
/// file where text was expected, a corrupt Parquet footer). **Permanent**:
/// the source is marked failed and not restarted until its configuration
/// changes or an operator restarts it.
pub const ERROR_INVALID_DATA: u32 = 5;
/// Error category: the options cannot work (found only at run time, e.g. a
/// pattern that matches a directory). **Permanent**, like
/// [`ERROR_INVALID_DATA`].
pub const ERROR_INVALID_CONFIG: u32 = 6;
/// Error category: permission denied. **Permanent**, like
/// [`ERROR_INVALID_DATA`]: retrying does not grant a permission.
pub const ERROR_UNAUTHORIZED: u32 = 7;

/// Log level of [`LogFn`]: something failed.
pub const LOG_ERROR: u32 = 1;
/// Log level: something is wrong but the source goes on.
pub const LOG_WARN: u32 = 2;
/// Log level: a normal event an operator wants to see.
pub const LOG_INFO: u32 = 3;
/// Log level: detail for debugging.
pub const LOG_DEBUG: u32 = 4;

/// Option type: UTF-8 text.
pub const OPTION_STRING: u32 = 1;
/// Option type: a signed 64-bit integer.
pub const OPTION_INTEGER: u32 = 2;
/// Option type: a double; an integer is accepted.
pub const OPTION_FLOAT: u32 = 3;
/// Option type: true or false.
pub const OPTION_BOOLEAN: u32 = 4;
/// Option type: an array; its value is passed as JSON text.
pub const OPTION_ARRAY: u32 = 5;
/// Option type: a table; its value is passed as JSON text.
pub const OPTION_TABLE: u32 = 6;

/// Borrowed UTF-8 text, valid only for the duration of the call it is passed
/// to. Not NUL-terminated.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    /// Start of the bytes; may be dangling or null when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl StrRef {
    /// Borrows `s` for a call across the boundary.
    pub fn new(s: &str) -> Self {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Reads the text back.
    ///
    /// # Safety
    /// `ptr..ptr+len` must be valid, initialised memory for the returned lifetime.
    pub unsafe fn as_str<'a>(&self) -> Result<&'a str, std::str::Utf8Error> {
        // SAFETY: the caller guarantees the range is valid for 'a.
        let bytes = unsafe { bytes_from_raw(self.ptr, self.len) };
        std::str::from_utf8(bytes)
    }
}

/// Borrowed bytes, valid only for the duration of the call it is passed to.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BytesRef {
    /// Start of the bytes; may be dangling or null when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl BytesRef {
    /// Borrows `b` for a call across the boundary.
    pub fn new(b: &[u8]) -> Self {
        BytesRef {
            ptr: b.as_ptr(),
            len: b.len(),
        }
    }

    /// Reads the bytes back.
    ///
    /// # Safety
    /// `ptr..ptr+len` must be valid, initialised memory for the returned lifetime.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        // SAFETY: guaranteed by the caller.
        unsafe { bytes_from_raw(self.ptr, self.len) }
    }
}

/// # Safety
/// `ptr..ptr+len` must be valid for `'a` unless `len` is 0.
unsafe fn bytes_from_raw<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: non-empty and non-null; validity is the caller's promise.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// Bytes handed from one side to the other together with the means to free
/// them: the receiver copies what it needs and calls `release` exactly once
/// (with a pointer to this struct).
#[repr(C)]
#[derive(Debug)]
pub struct OwnedBytes {
    /// Start of the bytes.
    pub ptr: *mut u8,
    /// Length in bytes.
    pub len: usize,
    /// Free for the allocator's own use (a capacity, a handle).
    pub cap: usize,
    /// Frees the bytes; null when there is nothing to free (for example
    /// bytes in static storage).
    pub release: Option<unsafe extern "C" fn(bytes: *mut OwnedBytes)>,
}

impl OwnedBytes {
    /// An empty value with nothing to release, used to initialise out-parameters.
    pub const fn empty() -> Self {
        OwnedBytes {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
            release: None,
        }
    }

    /// Hands a Rust vector across the boundary.
    pub fn from_vec(v: Vec<u8>) -> Self {
        let mut v = std::mem::ManuallyDrop::new(v);
        OwnedBytes {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
            release: Some(release_vec),
        }
    }

    /// Copies the bytes out and releases them.
    ///
    /// # Safety
    /// `self` must have been produced by a peer following this ABI and not
    /// been released yet.
    pub unsafe fn take(&mut self) -> Vec<u8> {
        // SAFETY: guaranteed by the caller.
        let out = unsafe { bytes_from_raw(self.ptr, self.len) }.to_vec();
        if let Some(release) = self.release.take() {
            // SAFETY: release is the allocator's own callback, called once.
            unsafe { release(self) };
        }
        *self = OwnedBytes::empty();
        out
    }
}

unsafe extern "C" fn release_vec(b: *mut OwnedBytes) {
    // SAFETY: `b` was built by `from_vec`, so ptr/len/cap describe a Vec<u8>
    // allocated by this library's allocator, and release runs once.
    unsafe {
        let b = &mut *b;
        drop(Vec::from_raw_parts(b.ptr, b.len, b.cap));
        b.ptr = std::ptr::null_mut();
        b.len = 0;
        b.cap = 0;
    }
}

/// A failure, as `create` and `last_error` report it.
#[repr(C)]
#[derive(Debug)]
pub struct ErrorInfo {
    /// One of the `ERROR_*` categories; the host treats an unknown value as
    /// [`ERROR_INTERNAL`].
    pub category: u32,
    /// What failed and what was expected, UTF-8, for the operator: name the
    /// file, line and option involved.
    pub message: OwnedBytes,
}

impl ErrorInfo {
    /// An empty value for the host to pass as an out-parameter.
    pub const fn empty() -> Self {
        ErrorInfo {
            category: 0,
            message: OwnedBytes::empty(),
        }
    }
}

/// One option a source type accepts. The host checks a configuration
/// against these declarations (unknown keys, types, choices, ranges,
/// required keys) before the plugin sees it, shows them in
/// `tributary plugins describe`, and passes each value typed, with the
/// default applied, in [`CreateArgs::options`].
#[repr(C)]
#[derive(Debug)]
pub struct OptionDescriptor {
    /// `sizeof` this struct as the plugin knows it.
    pub struct_size: u32,
    /// One of the `OPTION_*` types.
    pub kind: u32,
    /// Whether the key must be present.
    pub required: bool,
    /// The key, as written in the `[[source]]` table (NUL-terminated).
    pub name: *const c_char,
    /// What the option does, one or two sentences.
    pub doc: *const c_char,
    /// The default as a literal that is both valid TOML and valid JSON
    /// (`1000`, `"orders"`, `true`, `[]`); null when there is none.
    pub default_value: *const c_char,
    /// Allowed values of a string option; null when any text is allowed.
    pub choices: *const *const c_char,
    /// Number of entries in `choices`.
    pub choices_len: usize,
    /// The smallest accepted value of a number option, as a literal; null
    /// for no lower bound.
    pub minimum: *const c_char,
    /// The largest accepted value of a number option, as a literal; null for
    /// no upper bound.
    pub maximum: *const c_char,
}

/// One kind of source a library provides (a library may provide several,
/// e.g. `csv` and `parquet`).
#[repr(C)]
#[derive(Debug)]
pub struct SourceTypeDescriptor {
    /// `sizeof` this struct as the plugin knows it.
    pub struct_size: u32,
    /// The value of `type` in a `[[source]]` table.
    pub name: *const c_char,
    /// One sentence for listings.
    pub description: *const c_char,
    /// The accepted options.
    pub options: *const OptionDescriptor,
    /// Number of entries in `options`.
    pub options_len: usize,
    /// The column whose value becomes the record key when the source's
    /// config sets no `key` (e.g. `host` for host metrics); null for none.
    pub default_key: *const c_char,
    /// What [`PolledBatch::lag`] counts: `"rows"` or `"bytes"` still to
    /// read; null when the type reports no lag (the host then ignores it).
    /// The host exports the lag as `tributary_source_lag_rows` or
    /// `tributary_source_lag_bytes`, and refuses the library for any other
    /// text.
    pub lag_unit: *const c_char,
    /// ABI 2.1: where the sources of this type run when daemons share work
    /// (`[cluster]`): [`PLACEMENT_CLUSTER`] (0) or [`PLACEMENT_EVERY_MEMBER`]
    /// (1). A 2.0 entry ends before this field (its `struct_size` is
    /// smaller) and counts as 0.
    pub placement: u32,
}

/// [`SourceTypeDescriptor::placement`]: a source of this type is one unit of
/// work that runs on one member of a cluster at a time and moves when that
/// member leaves (tables, generated data).
pub const PLACEMENT_CLUSTER: u32 = 0;
/// [`SourceTypeDescriptor::placement`]: a source of this type reads the host
/// it runs on (log files, host metrics), so it runs on every member and never
/// moves.
pub const PLACEMENT_EVERY_MEMBER: u32 = 1;
/// The `struct_size` of a [`SourceTypeDescriptor`] of ABI 2.0, which had no
/// `placement`: the smallest entry a host accepts.
pub const SOURCE_TYPE_DESCRIPTOR_2_0_SIZE: u32 = 56;

/// One option's value, typed after its declaration.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OptionValue {
    /// The option's name.
    pub name: StrRef,
    /// The declared `OPTION_*` type; selects the field that holds the value.
    pub kind: u32,
    /// False when the option is absent from the configuration and declares
    /// no default; the value fields are then zero.
    pub present: bool,
    /// The value of a boolean option.
    pub boolean: bool,
    /// The value of an integer option.
    pub integer: i64,
    /// The value of a float option.
    pub number: f64,
    /// The value of a string option; JSON text for an array or a table.
    pub text: StrRef,
}

/// A source's last committed checkpoint for one of its partitions.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CheckpointRef {
    /// The source partition (e.g. a file's identity).
    pub partition: BytesRef,
    /// The checkpoint the plugin returned with the last committed batch.
    pub checkpoint: BytesRef,
}

impl CheckpointRef {
    /// Borrows `c` for a call across the boundary.
    pub fn new(c: &crate::Checkpoint) -> Self {
        CheckpointRef {
            partition: BytesRef::new(&c.partition),
            checkpoint: BytesRef::new(&c.checkpoint),
        }
    }

    /// Copies the pair out.
    ///
    /// # Safety
    /// Both byte ranges must be valid, initialised memory for the call.
    pub unsafe fn to_checkpoint(&self) -> crate::Checkpoint {
        // SAFETY: guaranteed by the caller.
        let (partition, checkpoint) =
            unsafe { (self.partition.as_slice(), self.checkpoint.as_slice()) };
        crate::Checkpoint::new(partition, checkpoint)
    }
}

/// A logging callback supplied by the host. Plugin messages land in the
/// daemon's log, tagged with the source they came from. May be called from
/// any thread of the plugin while the instance lives, with the
/// `log_context` the host passed in [`CreateArgs`].
pub type LogFn = unsafe extern "C" fn(context: *mut c_void, level: u32, message: StrRef);

/// Arguments to `validate` and `create`; borrowed for the duration of the
/// call only (copy what you keep). Append-only: check `struct_size`.
#[repr(C)]
#[derive(Debug)]
pub struct CreateArgs {
    /// `sizeof` this struct as the host knows it.
    pub struct_size: u32,
    /// Which of the library's source types to create.
    pub source_type: StrRef,
    /// The name of the source in the config, for messages.
    pub source_name: StrRef,
    /// The source's plugin options as one JSON object (the common keys such
    /// as `name`, `topic` and `key` are the host's and are not included).
    pub config_json: StrRef,
    /// Every declared option of the source type, in declaration order,
    /// typed, with defaults applied: the same options as `config_json`, for
    /// plugins that would rather not parse JSON.
    pub options: *const OptionValue,
    /// Number of entries in `options`.
    pub options_len: usize,
    /// The last committed checkpoint of every partition of this source.
    /// A partition without a checkpoint has never been committed.
    pub checkpoints: *const CheckpointRef,
    /// Number of entries in `checkpoints`.
    pub checkpoints_len: usize,
    /// Where to send log messages, a [`LogFn`]; may be null. (Spelt out
    /// rather than named so the generated C header has the plain function
    /// pointer type.)
    pub log: Option<unsafe extern "C" fn(context: *mut c_void, level: u32, message: StrRef)>,
    /// Passed back as the first argument of every `log` call. Valid until
    /// the instance is destroyed (for `validate`, until it returns).
    pub log_context: *mut c_void,
}

/// What `poll` fills in when it returns [`STATUS_OK`].
///
/// `array` is a struct array whose children are the batch's columns and
/// `schema` its struct-typed schema, as the Arrow C Data Interface exports a
/// record batch; schema metadata travels on `schema`. The host takes
/// ownership of everything in it and calls the release callbacks.
#[repr(C)]
#[derive(Debug)]
pub struct PolledBatch {
    /// The rows, one record each.
    pub array: FFI_ArrowArray,
    /// The schema of `array`.
    pub schema: FFI_ArrowSchema,
    /// The source partition these rows came from (e.g. a file identity);
    /// checkpoints are tracked per partition.
    pub partition: OwnedBytes,
    /// Where to resume once every row of this batch (and of every earlier
    /// batch of the same partition) is acknowledged by Kafka. An empty
    /// checkpoint ends the partition: the host forgets it once committed.
    pub checkpoint: OwnedBytes,
    /// How far behind the source is after this batch, in the source type's
    /// [`SourceTypeDescriptor::lag_unit`], or -1 when unknown.
    pub lag: i64,
}

impl PolledBatch {
    /// An empty batch for the host to pass as an out-parameter.
    pub fn empty() -> Self {
        PolledBatch {
            array: FFI_ArrowArray::empty(),
            schema: FFI_ArrowSchema::empty(),
            partition: OwnedBytes::empty(),
            checkpoint: OwnedBytes::empty(),
            lag: -1,
        }
    }
}

/// Checks options and creates nothing, for `tributary validate` and before
/// a reload goes live. Returns [`STATUS_OK`], or [`STATUS_ERROR`] with a
/// JSON array of `{"key": "option or null", "message": "..."}` in `issues`.
pub type ValidateFn = unsafe extern "C" fn(args: *const CreateArgs, issues: *mut OwnedBytes) -> i32;
/// Creates an instance resuming after the checkpoints in `args`. On
/// [`STATUS_OK`] `*instance` is set; otherwise `error` says why.
pub type CreateFn = unsafe extern "C" fn(
    args: *const CreateArgs,
    instance: *mut *mut c_void,
    error: *mut ErrorInfo,
) -> i32;
/// Waits up to `timeout_ms` for the next batch; returns [`STATUS_OK`] with
/// `out` filled, [`STATUS_IDLE`], [`STATUS_FINISHED`] or an error status.
pub type PollFn =
    unsafe extern "C" fn(instance: *mut c_void, timeout_ms: u32, out: *mut PolledBatch) -> i32;
/// Tells the instance that everything up to `checkpoint` of `partition` is
/// durably committed (a spool directory may now move the file away).
pub type CommittedFn =
    unsafe extern "C" fn(instance: *mut c_void, partition: BytesRef, checkpoint: BytesRef) -> i32;
/// Describes the instance's last failed call (after an error status).
pub type LastErrorFn = unsafe extern "C" fn(instance: *mut c_void, out: *mut ErrorInfo);
/// Frees the instance. Called once, on the thread that created it.
pub type DestroyFn = unsafe extern "C" fn(instance: *mut c_void);

/// What the entry symbol returns. The first three fields keep their place
/// in every ABI version; the rest is append-only within a major.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    /// [`ABI_MAJOR`] of the header or SDK the plugin was built with.
    pub abi_major: u32,
    /// [`ABI_MINOR`] of the header or SDK the plugin was built with.
    pub abi_minor: u32,
    /// `sizeof(PluginDescriptor)` as the plugin knows it.
    pub struct_size: u32,
    /// The library's name (e.g. `datagen`).
    pub name: *const c_char,
    /// The library's version.
    pub version: *const c_char,
    /// The source types the library provides.
    pub source_types: *const SourceTypeDescriptor,
    /// Number of entries in `source_types`.
    pub source_types_len: usize,
    /// See [`ValidateFn`].
    pub validate: ValidateFn,
    /// See [`CreateFn`].
    pub create: CreateFn,
    /// See [`PollFn`].
    pub poll: PollFn,
    /// See [`CommittedFn`].
    pub committed: CommittedFn,
    /// See [`LastErrorFn`].
    pub last_error: LastErrorFn,
    /// See [`DestroyFn`].
    pub destroy: DestroyFn,
}

/// Whether an error of this category stays until something outside the
/// source changes, so restarting the source would only repeat it.
pub fn is_permanent(category: u32) -> bool {
    matches!(
        category,
        ERROR_INVALID_DATA | ERROR_INVALID_CONFIG | ERROR_UNAUTHORIZED
    )
}

/// The name of an error category, as the `error_class` metric label and the
/// API show it. Unknown values read as `internal`.
pub fn category_name(category: u32) -> &'static str {
    let names = crate::ErrorCategory::NAMES;
    category
        .checked_sub(ERROR_INTERNAL)
        .and_then(|i| names.get(i as usize))
        .copied()
        .unwrap_or(names[0])
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// The layout is the ABI: if this fails, a field was inserted or changed
    /// instead of appended with a minor version bump.
    #[test]
    fn struct_sizes_of_abi_2_1_are_fixed() {
        assert_eq!(size_of::<PluginDescriptor>(), 96);
        assert_eq!(size_of::<CreateArgs>(), 104);
        assert_eq!(size_of::<OptionDescriptor>(), 72);
        // 56 in ABI 2.0; 2.1 appended `placement`.
        assert_eq!(size_of::<SourceTypeDescriptor>(), 64);
        assert_eq!(SOURCE_TYPE_DESCRIPTOR_2_0_SIZE, 56);
        assert_eq!(size_of::<OptionValue>(), 56);
        assert_eq!(size_of::<ErrorInfo>(), 40);
    }

    #[test]
    fn only_data_config_and_permission_errors_are_permanent() {
        let permanent: Vec<&str> = (0..10)
            .filter(|c| is_permanent(*c))
            .map(category_name)
            .collect();
        assert_eq!(
            permanent,
            ["invalid_data", "invalid_config", "unauthorized"]
        );
        assert_eq!(category_name(0), "internal");
        assert_eq!(category_name(99), "internal");
    }
}
