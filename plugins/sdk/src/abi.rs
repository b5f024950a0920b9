//! The C ABI shared by the daemon and every plugin.
//!
//! Everything here is `#[repr(C)]` so a plugin can be written in any language
//! that speaks C and the Arrow C Data Interface. The rules that keep old
//! plugins loadable:
//!
//! * a library exports exactly one entry symbol, [`ENTRY_SYMBOL`], of type
//!   [`EntryFn`]; it returns a pointer to a [`PluginDescriptor`] that lives as
//!   long as the library is loaded;
//! * [`PluginDescriptor`] and [`CreateArgs`] start with their ABI version and
//!   `struct_size`; new fields are only ever appended (a minor version bump),
//!   so a reader checks `struct_size` before touching a field it knows;
//! * a different `abi_major` means the function table changed shape: the host
//!   refuses the library and names both versions;
//! * memory crosses the boundary only with a release callback supplied by the
//!   side that allocated it ([`OwnedBytes`], the Arrow structs), so the two
//!   sides may use different allocators.

use std::ffi::{c_char, c_void};

pub use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};

/// The major version of this ABI. A host only loads plugins of its own major.
pub const ABI_MAJOR: u32 = 1;
/// The minor version of this ABI: fields appended to the structs below.
///
/// * 1.1: [`PluginDescriptor::source_type_extras`] (a default record key
///   per source type).
pub const ABI_MINOR: u32 = 1;
/// The name of the one symbol every plugin library exports.
///
/// The `v1` names the shape of the *entry function* (no arguments, returns a
/// descriptor pointer), which never changes; the descriptor carries the ABI
/// version of everything else, so a future major still reaches the version
/// check and gets a precise error instead of "symbol not found".
pub const ENTRY_SYMBOL: &str = "tributary_plugin_v1";

/// `size_of::<PluginDescriptor>()` in ABI 1.0. A reader of any later 1.x
/// accepts a descriptor at least this large and reads appended fields only
/// when `struct_size` covers them.
pub const DESCRIPTOR_SIZE_V1_0: usize = 96;
/// `size_of::<CreateArgs>()` in ABI 1.0; see [`DESCRIPTOR_SIZE_V1_0`].
pub const CREATE_ARGS_SIZE_V1_0: usize = 80;

/// The type of [`ENTRY_SYMBOL`].
pub type EntryFn = unsafe extern "C" fn() -> *const PluginDescriptor;

/// A call returned a batch in its out-parameter.
pub const STATUS_OK: i32 = 0;
/// `poll`: no data arrived within the timeout; call again.
pub const STATUS_IDLE: i32 = 1;
/// `poll`: the source has no more data, ever (a finite generator, a one-shot
/// file import). The host stops polling and keeps the offsets.
pub const STATUS_FINISHED: i32 = 2;
/// The call failed; the message is available from `last_error` (or in the
/// error out-parameter of `create`/`validate`).
pub const STATUS_ERROR: i32 = -1;
/// The call panicked inside the plugin. The instance must be destroyed.
pub const STATUS_PANIC: i32 = -2;

/// Log levels for [`LogFn`], ordered like `tracing`'s.
pub const LOG_ERROR: u32 = 1;
/// See [`LOG_ERROR`].
pub const LOG_WARN: u32 = 2;
/// See [`LOG_ERROR`].
pub const LOG_INFO: u32 = 3;
/// See [`LOG_ERROR`].
pub const LOG_DEBUG: u32 = 4;

/// Borrowed UTF-8 text, valid only for the duration of the call it is passed to.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    /// Start of the bytes; may be dangling when `len` is 0.
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
    /// Start of the bytes; may be dangling when `len` is 0.
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
/// them: the receiver copies what it needs and calls `release` exactly once.
#[repr(C)]
#[derive(Debug)]
pub struct OwnedBytes {
    /// Start of the bytes.
    pub ptr: *mut u8,
    /// Length in bytes.
    pub len: usize,
    /// Allocator-specific capacity, for `release`.
    pub cap: usize,
    /// Frees the bytes; `None` when there is nothing to free.
    pub release: Option<unsafe extern "C" fn(*mut OwnedBytes)>,
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

/// One option a source type accepts, for `tributary plugins describe` and
/// for checking a config file before the source runs.
#[repr(C)]
#[derive(Debug)]
pub struct OptionDescriptor {
    /// The key, as written in the `[[source]]` table.
    pub name: *const c_char,
    /// One of `string`, `integer`, `float`, `boolean`, `array`, `table`.
    pub kind: *const c_char,
    /// The default, as a TOML literal; null when the option is required or
    /// has no default.
    pub default_value: *const c_char,
    /// What the option does, one or two sentences.
    pub doc: *const c_char,
    /// Allowed values for a string option, separated by `|`; null for any.
    pub choices: *const c_char,
    /// Whether the key must be present.
    pub required: bool,
}

/// One kind of source a library provides (a library may provide several,
/// e.g. `csv` and `parquet`).
#[repr(C)]
#[derive(Debug)]
pub struct SourceTypeDescriptor {
    /// The value of `type` in a `[[source]]` table.
    pub name: *const c_char,
    /// One sentence for listings.
    pub description: *const c_char,
    /// The accepted options.
    pub options: *const OptionDescriptor,
    /// Number of entries in `options`.
    pub options_len: usize,
}

/// More about one source type (since ABI 1.1). Reached through an array of
/// pointers, so both the array and this struct can grow: readers check
/// `struct_size` before reading a field added later.
#[repr(C)]
#[derive(Debug)]
pub struct SourceTypeExtras {
    /// `size_of::<SourceTypeExtras>()` as the plugin knows it.
    pub struct_size: u32,
    /// The column whose value becomes the record key when the source's
    /// config sets no `key` (e.g. `host` for host metrics); null for none.
    pub default_key: *const c_char,
}

/// A source's last committed checkpoint for one of its partitions.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CheckpointRef {
    /// The source partition (e.g. a file's identity).
    pub partition: BytesRef,
    /// The opaque checkpoint the plugin returned with the last committed batch.
    pub checkpoint: BytesRef,
}

/// A logging callback supplied by the host, so plugin messages land in the
/// daemon's log, inside the source's span.
pub type LogFn = unsafe extern "C" fn(level: u32, message: StrRef);

/// Arguments to `validate` and `create`. Append-only: check `struct_size`.
#[repr(C)]
#[derive(Debug)]
pub struct CreateArgs {
    /// `size_of::<CreateArgs>()` as the host knows it.
    pub struct_size: u32,
    /// Which of the library's source types to create.
    pub source_type: StrRef,
    /// The name of the source in the config, for messages.
    pub source_name: StrRef,
    /// The source's plugin options as a JSON object (the common keys such as
    /// `name`, `topic` and `key` are the host's and are not included).
    pub config_json: StrRef,
    /// The last committed checkpoint of every partition of this source.
    pub checkpoints: *const CheckpointRef,
    /// Number of entries in `checkpoints`.
    pub checkpoints_len: usize,
    /// Where to send log messages; may be absent.
    pub log: Option<LogFn>,
}

/// What `poll` fills in when it returns [`STATUS_OK`].
///
/// `array` is a struct array whose children are the record batch's columns
/// and `schema` its struct-typed schema, as `arrow::ffi` exports a
/// `RecordBatch`. The host takes ownership of everything in it.
#[repr(C)]
#[derive(Debug)]
pub struct PolledBatch {
    /// The rows, one record each.
    pub array: FFI_ArrowArray,
    /// The schema of `array`.
    pub schema: FFI_ArrowSchema,
    /// The source partition these rows came from.
    pub partition: OwnedBytes,
    /// Where to resume once every row of this batch (and of every earlier
    /// batch of the same partition) is acknowledged by Kafka.
    pub checkpoint: OwnedBytes,
    /// How far behind the source is after this batch (rows or bytes, as the
    /// plugin documents), or -1 when unknown.
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

/// Checks options and creates nothing. Returns [`STATUS_OK`] or
/// [`STATUS_ERROR`] with a JSON array of `{"key": …, "message": …}` in `error`.
pub type ValidateFn = unsafe extern "C" fn(args: *const CreateArgs, error: *mut OwnedBytes) -> i32;
/// Creates an instance. On [`STATUS_OK`] `*instance` is set; otherwise
/// `error` holds the message (UTF-8).
pub type CreateFn = unsafe extern "C" fn(
    args: *const CreateArgs,
    instance: *mut *mut c_void,
    error: *mut OwnedBytes,
) -> i32;
/// Waits up to `timeout_ms` for the next batch.
pub type PollFn =
    unsafe extern "C" fn(instance: *mut c_void, timeout_ms: u32, out: *mut PolledBatch) -> i32;
/// Tells the instance that everything up to `checkpoint` of `partition` is
/// durably committed (a spool directory may now move the file away).
pub type CommittedFn =
    unsafe extern "C" fn(instance: *mut c_void, partition: BytesRef, checkpoint: BytesRef) -> i32;
/// The message of the instance's last failed call.
pub type LastErrorFn = unsafe extern "C" fn(instance: *mut c_void, out: *mut OwnedBytes);
/// Frees the instance. Called once, on the thread that created it.
pub type DestroyFn = unsafe extern "C" fn(instance: *mut c_void);

/// What the entry symbol returns. Append-only after the first three fields.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    /// [`ABI_MAJOR`] of the SDK the plugin was built with.
    pub abi_major: u32,
    /// [`ABI_MINOR`] of the SDK the plugin was built with.
    pub abi_minor: u32,
    /// `size_of::<PluginDescriptor>()` in the plugin's SDK.
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
    /// Since 1.1: one pointer per entry of `source_types`, same order (an
    /// entry may be null); null when the plugin has none.
    pub source_type_extras: *const *const SourceTypeExtras,
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// The 1.0 sizes are part of the ABI: if this fails, a field was inserted
    /// or changed instead of appended with a minor version bump.
    #[test]
    fn struct_sizes_of_abi_1_0_are_fixed() {
        assert_eq!(
            std::mem::offset_of!(PluginDescriptor, source_type_extras),
            DESCRIPTOR_SIZE_V1_0,
            "fields of 1.1 must come after every field of 1.0"
        );
        assert_eq!(size_of::<CreateArgs>(), CREATE_ARGS_SIZE_V1_0);
    }
}
