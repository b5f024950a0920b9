//! Glue between [`Source`] implementations and the C ABI. Used by
//! [`export_plugin!`](crate::export_plugin); not meant to be called directly.
//!
//! Every function here that the host calls catches panics: a panic must never
//! unwind across `extern "C"` (that aborts the process), and a plugin bug must
//! cost one source, not the daemon.

use std::ffi::{CString, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use arrow_array::{Array, StructArray};
use serde_json::Value;

use crate::abi::{
    self, CheckpointRef, CreateArgs, ErrorInfo, OptionDescriptor, OwnedBytes, PluginDescriptor,
    PolledBatch, SourceTypeDescriptor,
};
use crate::options::{OptionSpec, Options};
use crate::source::{
    Batch, Checkpoint, ConfigIssue, CreateContext, Error, LagUnit, Logger, Poll, Source, SourceType,
};

/// Implemented by the unit type that `export_plugin!` generates, so the
/// generic entry points can reach the library's one [`Exported`] table.
pub trait Plugin: 'static {
    /// The library's exported table, built once.
    fn exported() -> &'static Exported;
}

/// The object-safe part of [`Source`], so one library can hold instances of
/// several source types behind one pointer.
trait DynSource {
    fn poll(&mut self, timeout: Duration) -> Result<Poll, Error>;
    fn committed(&mut self, partition: &[u8], checkpoint: &[u8]) -> Result<(), Error>;
}

impl<S: Source> DynSource for S {
    fn poll(&mut self, timeout: Duration) -> Result<Poll, Error> {
        Source::poll(self, timeout)
    }
    fn committed(&mut self, partition: &[u8], checkpoint: &[u8]) -> Result<(), Error> {
        Source::committed(self, partition, checkpoint)
    }
}

type CreateDyn = fn(CreateContext) -> Result<Box<dyn DynSource>, Error>;

/// One source type of the library.
pub struct Registration {
    name: &'static str,
    description: &'static str,
    default_key: Option<&'static str>,
    lag_unit: Option<LagUnit>,
    reads_this_host: bool,
    options: Vec<OptionSpec>,
    validate: fn(&Options) -> Result<(), Vec<ConfigIssue>>,
    create: CreateDyn,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("name", &self.name)
            .finish()
    }
}

impl Registration {
    /// Registers `S`.
    pub fn of<S: SourceType>() -> Self {
        Registration {
            name: S::NAME,
            description: S::DESCRIPTION,
            default_key: S::DEFAULT_KEY,
            lag_unit: S::LAG_UNIT,
            reads_this_host: S::READS_THIS_HOST,
            options: S::options(),
            validate: S::validate,
            create: |ctx| S::create(ctx).map(|s| Box::new(s) as Box<dyn DynSource>),
        }
    }
}

/// The library's descriptor together with the memory its pointers refer to.
pub struct Exported {
    registrations: Vec<Registration>,
    // Owned storage behind the raw pointers in `descriptor`. Heap buffers do
    // not move when `Exported` does, so the pointers stay valid.
    _strings: Vec<CString>,
    _choices: Vec<Vec<*const std::ffi::c_char>>,
    _options: Vec<Vec<OptionDescriptor>>,
    _types: Vec<SourceTypeDescriptor>,
    descriptor: PluginDescriptor,
}

impl std::fmt::Debug for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exported")
            .field("registrations", &self.registrations)
            .finish()
    }
}

// SAFETY: the raw pointers in `Exported` point into buffers it owns and never
// mutates after construction, so sharing it between threads is sound.
unsafe impl Send for Exported {}
// SAFETY: see above.
unsafe impl Sync for Exported {}

impl Exported {
    /// Builds the table for plugin `P`.
    pub fn new<P: Plugin>(
        name: &'static str,
        version: &'static str,
        registrations: Vec<Registration>,
    ) -> Self {
        let mut strings = Vec::new();
        let mut cstr = |s: &str| -> *const std::ffi::c_char {
            // Interior NULs cannot occur in the SDK's own static strings;
            // strip them rather than fail if a plugin author wrote one.
            let c = CString::new(s.replace('\0', "")).unwrap_or_default();
            let p = c.as_ptr();
            strings.push(c);
            p
        };
        let mut choices = Vec::new();
        let mut options = Vec::new();
        let mut types = Vec::new();
        for reg in &registrations {
            let mut opts = Vec::new();
            for o in &reg.options {
                let list: Vec<*const std::ffi::c_char> =
                    o.choices.iter().map(|c| cstr(c)).collect();
                opts.push(OptionDescriptor {
                    struct_size: size_of::<OptionDescriptor>() as u32,
                    kind: o.kind.code(),
                    required: o.required,
                    name: cstr(o.name),
                    doc: cstr(o.doc),
                    default_value: o.default.map_or(std::ptr::null(), &mut cstr),
                    // A Vec's heap buffer does not move when the Vec does.
                    choices: if list.is_empty() {
                        std::ptr::null()
                    } else {
                        list.as_ptr()
                    },
                    choices_len: list.len(),
                    minimum: o
                        .minimum
                        .map_or(std::ptr::null(), |b| cstr(&o.bound_literal(b))),
                    maximum: o
                        .maximum
                        .map_or(std::ptr::null(), |b| cstr(&o.bound_literal(b))),
                });
                choices.push(list);
            }
            types.push(SourceTypeDescriptor {
                struct_size: size_of::<SourceTypeDescriptor>() as u32,
                name: cstr(reg.name),
                description: cstr(reg.description),
                options: opts.as_ptr(),
                options_len: opts.len(),
                default_key: reg.default_key.map_or(std::ptr::null(), &mut cstr),
                lag_unit: reg.lag_unit.map_or(std::ptr::null(), |u| cstr(u.name())),
                placement: if reg.reads_this_host {
                    abi::PLACEMENT_EVERY_MEMBER
                } else {
                    abi::PLACEMENT_CLUSTER
                },
            });
            options.push(opts);
        }
        let descriptor = PluginDescriptor {
            abi_major: abi::ABI_MAJOR,
            abi_minor: abi::ABI_MINOR,
            struct_size: size_of::<PluginDescriptor>() as u32,
            name: cstr(name),
            version: cstr(version),
            source_types: types.as_ptr(),
            source_types_len: types.len(),
            validate: validate::<P>,
            create: create::<P>,
            poll,
            committed,
            last_error,
            destroy,
        };
        Exported {
            registrations,
            _strings: strings,
            _choices: choices,
            _options: options,
            _types: types,
            descriptor,
        }
    }

    /// The pointer the entry symbol returns.
    pub fn descriptor(&self) -> *const PluginDescriptor {
        &self.descriptor
    }

    fn find(&self, source_type: &str) -> Result<&Registration, Error> {
        self.registrations
            .iter()
            .find(|r| r.name == source_type)
            .ok_or_else(|| {
                Error::invalid_config(format!("this library has no source type `{source_type}`"))
            })
    }
}

/// Calls the entry symbol's body with panics caught.
pub fn entry<P: Plugin>() -> *const PluginDescriptor {
    catch_unwind(|| P::exported().descriptor()).unwrap_or(std::ptr::null())
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

struct ParsedArgs<'a> {
    source_type: &'a str,
    source_name: String,
    config: Value,
    checkpoints: Vec<Checkpoint>,
    log: Logger,
}

/// # Safety
/// `args` must point to a valid [`CreateArgs`] whose borrowed fields are valid
/// for the call.
unsafe fn parse_args<'a>(args: *const CreateArgs) -> Result<ParsedArgs<'a>, Error> {
    if args.is_null() {
        return Err(Error::new("null arguments"));
    }
    // SAFETY: non-null and valid per the caller.
    let args = unsafe { &*args };
    // Every field this SDK reads exists in 2.0; a later minor only appends.
    if (args.struct_size as usize) < size_of::<CreateArgs>() {
        return Err(Error::new(format!(
            "host passed CreateArgs of {} bytes, ABI {}.0 has {}",
            args.struct_size,
            abi::ABI_MAJOR,
            size_of::<CreateArgs>()
        )));
    }
    let utf8 = |what: &str, s: abi::StrRef| {
        // SAFETY: borrowed for the call per the ABI.
        unsafe { s.as_str() }.map_err(|e| Error::new(format!("{what} is not UTF-8: {e}")))
    };
    let source_type = utf8("source type", args.source_type)?;
    let source_name = utf8("source name", args.source_name)?.to_owned();
    let config_text = utf8("config", args.config_json)?;
    let config: Value = serde_json::from_str(config_text)
        .map_err(|e| Error::new(format!("config is not JSON: {e}")))?;
    let checkpoints = if args.checkpoints.is_null() || args.checkpoints_len == 0 {
        Vec::new()
    } else {
        // SAFETY: the host passes `checkpoints_len` valid entries for the call.
        let refs: &[CheckpointRef] =
            unsafe { std::slice::from_raw_parts(args.checkpoints, args.checkpoints_len) };
        refs.iter()
            // SAFETY: each entry borrows valid bytes for the call.
            .map(|c| unsafe { c.to_checkpoint() })
            .collect()
    };
    Ok(ParsedArgs {
        source_type,
        source_name,
        config,
        checkpoints,
        log: Logger::new(args.log, args.log_context),
    })
}

/// # Safety
/// `out` must be null or point to a writable [`OwnedBytes`].
unsafe fn write_bytes(out: *mut OwnedBytes, bytes: Vec<u8>) {
    if !out.is_null() {
        // SAFETY: writable per the caller; the previous value is an empty
        // placeholder owned by the host, so overwriting leaks nothing.
        unsafe { std::ptr::write(out, OwnedBytes::from_vec(bytes)) };
    }
}

unsafe extern "C" fn validate<P: Plugin>(args: *const CreateArgs, error: *mut OwnedBytes) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host passes valid arguments per the ABI.
        let parsed = unsafe { parse_args(args) }.map_err(|e| {
            vec![ConfigIssue {
                key: None,
                message: e.message().to_owned(),
            }]
        })?;
        let reg = P::exported().find(parsed.source_type).map_err(|e| {
            vec![ConfigIssue {
                key: None,
                message: e.message().to_owned(),
            }]
        })?;
        let (options, declared) = Options::check(&reg.options, &parsed.config);
        Options::merge(declared, (reg.validate)(&options))
    }));
    let issues = match result {
        Ok(Ok(())) => return abi::STATUS_OK,
        Ok(Err(issues)) => issues,
        Err(panic) => vec![ConfigIssue {
            key: None,
            message: format!("plugin panicked while validating: {}", panic_message(panic)),
        }],
    };
    let json = Value::Array(
        issues
            .into_iter()
            .map(|i| serde_json::json!({"key": i.key, "message": i.message}))
            .collect(),
    );
    // SAFETY: `error` is the host's out-parameter.
    unsafe { write_bytes(error, json.to_string().into_bytes()) };
    abi::STATUS_ERROR
}

struct Instance {
    source: Box<dyn DynSource>,
    last_error: Error,
}

/// # Safety
/// `out` must be null or point to a writable [`ErrorInfo`] holding nothing
/// to release.
unsafe fn write_error(out: *mut ErrorInfo, error: &Error) {
    if !out.is_null() {
        // SAFETY: writable per the caller; the previous value is an empty
        // placeholder owned by the host, so overwriting leaks nothing.
        unsafe {
            std::ptr::write(
                out,
                ErrorInfo {
                    category: error.category().code(),
                    message: OwnedBytes::from_vec(error.message().as_bytes().to_vec()),
                },
            )
        };
    }
}

unsafe extern "C" fn create<P: Plugin>(
    args: *const CreateArgs,
    instance: *mut *mut c_void,
    error: *mut ErrorInfo,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host passes valid arguments per the ABI.
        let parsed = unsafe { parse_args(args) }?;
        let reg = P::exported().find(parsed.source_type)?;
        let (options, declared) = Options::check(&reg.options, &parsed.config);
        Options::merge(declared, (reg.validate)(&options)).map_err(Error::from)?;
        (reg.create)(CreateContext {
            source_name: parsed.source_name,
            options,
            checkpoints: parsed.checkpoints,
            log: parsed.log,
        })
    }));
    let error_value = match result {
        Ok(Ok(source)) => {
            let boxed = Box::new(Instance {
                source,
                last_error: Error::new(""),
            });
            if instance.is_null() {
                return abi::STATUS_ERROR;
            }
            // SAFETY: `instance` is the host's writable out-parameter.
            unsafe { *instance = Box::into_raw(boxed).cast() };
            return abi::STATUS_OK;
        }
        Ok(Err(e)) => e,
        Err(panic) => Error::new(format!(
            "plugin panicked while creating the source: {}",
            panic_message(panic)
        )),
    };
    // SAFETY: `error` is the host's out-parameter.
    unsafe { write_error(error, &error_value) };
    abi::STATUS_ERROR
}

fn export_batch(batch: Batch, out: &mut PolledBatch) -> Result<(), Error> {
    let schema = batch.records.schema();
    let array = StructArray::from(batch.records);
    let (ffi_array, _) = arrow_array::ffi::to_ffi(&array.to_data())?;
    // The schema as a whole, not the struct's data type: only the schema
    // carries its metadata (e.g. the dead-letter mark) across.
    let ffi_schema = abi::FFI_ArrowSchema::try_from(schema.as_ref())?;
    // The previous values are the host's empty placeholders; assigning drops
    // them, which is a no-op for empty Arrow structs and `OwnedBytes`.
    out.array = ffi_array;
    out.schema = ffi_schema;
    out.partition = OwnedBytes::from_vec(batch.partition);
    out.checkpoint = OwnedBytes::from_vec(batch.checkpoint);
    out.lag = batch
        .lag
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    Ok(())
}

unsafe extern "C" fn poll(instance: *mut c_void, timeout_ms: u32, out: *mut PolledBatch) -> i32 {
    if instance.is_null() || out.is_null() {
        return abi::STATUS_ERROR;
    }
    // SAFETY: `instance` came from `create` and is used from one thread.
    let inst = unsafe { &mut *instance.cast::<Instance>() };
    // SAFETY: `out` is the host's writable out-parameter.
    let out = unsafe { &mut *out };
    let result = catch_unwind(AssertUnwindSafe(|| {
        match inst
            .source
            .poll(Duration::from_millis(u64::from(timeout_ms)))?
        {
            Poll::Batch(batch) => export_batch(batch, out).map(|()| abi::STATUS_OK),
            Poll::Idle => Ok(abi::STATUS_IDLE),
            Poll::Finished => Ok(abi::STATUS_FINISHED),
        }
    }));
    match result {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            inst.last_error = e;
            abi::STATUS_ERROR
        }
        Err(panic) => {
            inst.last_error =
                Error::new(format!("plugin panicked in poll: {}", panic_message(panic)));
            abi::STATUS_PANIC
        }
    }
}

unsafe extern "C" fn committed(
    instance: *mut c_void,
    partition: abi::BytesRef,
    checkpoint: abi::BytesRef,
) -> i32 {
    if instance.is_null() {
        return abi::STATUS_ERROR;
    }
    // SAFETY: `instance` came from `create` and is used from one thread.
    let inst = unsafe { &mut *instance.cast::<Instance>() };
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: both borrow valid bytes for the call per the ABI.
        let (p, c) = unsafe { (partition.as_slice(), checkpoint.as_slice()) };
        inst.source.committed(p, c)
    }));
    match result {
        Ok(Ok(())) => abi::STATUS_OK,
        Ok(Err(e)) => {
            inst.last_error = e;
            abi::STATUS_ERROR
        }
        Err(panic) => {
            inst.last_error = Error::new(format!(
                "plugin panicked in committed: {}",
                panic_message(panic)
            ));
            abi::STATUS_PANIC
        }
    }
}

unsafe extern "C" fn last_error(instance: *mut c_void, out: *mut ErrorInfo) {
    if instance.is_null() {
        return;
    }
    // SAFETY: `instance` came from `create` and is used from one thread.
    let inst = unsafe { &*instance.cast::<Instance>() };
    // SAFETY: `out` is the host's out-parameter.
    unsafe { write_error(out, &inst.last_error) };
}

unsafe extern "C" fn destroy(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // A panicking destructor must not unwind into the host either; the
    // instance is gone either way.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `instance` came from `Box::into_raw` in `create` and the host
        // destroys it once.
        drop(unsafe { Box::from_raw(instance.cast::<Instance>()) });
    }));
}
