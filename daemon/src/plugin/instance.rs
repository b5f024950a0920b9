//! Calling into a loaded plugin: validate, create, poll, committed, destroy.

use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, RecordBatch, StructArray};
use tributary_plugin_sdk::abi::{
    self, BytesRef, CheckpointRef, CreateArgs, ErrorInfo, OptionValue, OwnedBytes, PolledBatch,
    StrRef,
};
use tributary_plugin_sdk::{Checkpoint, LagUnit, OptionKind};

use super::{LoadedPlugin, OptionInfo, PluginError, SourceTypeInfo};

/// A batch received from a plugin, converted to Rust ownership.
#[derive(Debug)]
pub struct Polled {
    /// The rows.
    pub records: RecordBatch,
    /// The source partition.
    pub partition: Vec<u8>,
    /// Where to resume after this batch.
    pub checkpoint: Vec<u8>,
    /// How far the source is behind its input, when known, in its type's
    /// lag unit.
    pub lag: Option<u64>,
}

/// What one poll produced.
#[derive(Debug)]
pub enum PollOutcome {
    /// A batch of rows.
    Batch(Polled),
    /// Nothing within the timeout.
    Idle,
    /// The source is exhausted.
    Finished,
}

/// A problem with one option, as reported by the plugin's own validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfigIssue {
    /// The option at fault, when the plugin named one.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// What the log callback is given back: the source the instance serves,
/// so a message from a plugin's own thread still names it.
#[derive(Debug)]
struct LogContext {
    source: String,
}

/// Forwards plugin log messages into `tracing`. Calls from the source's
/// own thread are already inside its span; calls from a plugin's other
/// threads get one from the context.
unsafe extern "C" fn log_bridge(context: *mut c_void, level: u32, message: StrRef) {
    // SAFETY: borrowed for the duration of the call per the ABI.
    let Ok(msg) = (unsafe { message.as_str() }) else {
        return;
    };
    let emit = || match level {
        abi::LOG_ERROR => tracing::error!(target: "tributary::plugin", "{msg}"),
        abi::LOG_WARN => tracing::warn!(target: "tributary::plugin", "{msg}"),
        abi::LOG_INFO => tracing::info!(target: "tributary::plugin", "{msg}"),
        _ => tracing::debug!(target: "tributary::plugin", "{msg}"),
    };
    if context.is_null() || !tracing::Span::current().is_none() {
        emit();
        return;
    }
    // SAFETY: the host passes a `LogContext` that outlives the instance.
    let ctx = unsafe { &*context.cast::<LogContext>() };
    tracing::info_span!("source", source = %ctx.source).in_scope(emit);
}

/// Borrowed arguments kept alive while a `CreateArgs` points into them.
struct ArgsHolder<'a> {
    refs: Vec<CheckpointRef>,
    /// Owned text of the option values (their heap buffers do not move).
    _texts: Vec<String>,
    values: Vec<OptionValue>,
    args: CreateArgs,
    _borrow: std::marker::PhantomData<&'a ()>,
}

/// Every declared option of the type, typed, with its default applied: what
/// a plugin that does not parse JSON reads. The config was checked against
/// the declarations before; a value that still does not fit is passed as
/// absent rather than misread.
fn option_values(
    declared: &[OptionInfo],
    config_json: &str,
) -> (Vec<String>, Vec<(Option<usize>, OptionValue)>) {
    let config: serde_json::Value = serde_json::from_str(config_json).unwrap_or_default();
    let mut texts = Vec::new();
    let mut values = Vec::new();
    for o in declared {
        let value = config
            .get(&o.name)
            .filter(|v| !v.is_null())
            .cloned()
            .or_else(|| {
                o.default
                    .as_deref()
                    .and_then(|d| serde_json::from_str(d).ok())
            });
        let mut v = OptionValue {
            name: StrRef::new(""),
            kind: o.kind_code,
            present: false,
            boolean: false,
            integer: 0,
            number: 0.0,
            text: StrRef::new(""),
        };
        let kind = OptionKind::from_code(o.kind_code);
        match (kind, value) {
            (Some(OptionKind::Integer), Some(serde_json::Value::Number(n))) if n.is_i64() => {
                v.integer = n.as_i64().unwrap_or_default();
                v.number = v.integer as f64;
                v.present = true;
            }
            (Some(OptionKind::Float), Some(serde_json::Value::Number(n))) => {
                v.number = n.as_f64().unwrap_or_default();
                v.present = true;
            }
            (Some(OptionKind::Boolean), Some(serde_json::Value::Bool(b))) => {
                v.boolean = b;
                v.present = true;
            }
            (Some(OptionKind::String), Some(serde_json::Value::String(t))) => {
                texts.push(t);
                v.present = true;
            }
            (Some(OptionKind::Array | OptionKind::Table), Some(j))
                if j.is_array() || j.is_object() =>
            {
                texts.push(j.to_string());
                v.present = true;
            }
            _ => {}
        }
        let has_text = v.present
            && matches!(
                kind,
                Some(OptionKind::String | OptionKind::Array | OptionKind::Table)
            );
        values.push((has_text.then(|| texts.len() - 1), v));
    }
    (texts, values)
}

fn make_args<'a>(
    info: Option<&SourceTypeInfo>,
    source_type: &'a str,
    source_name: &'a str,
    config_json: &'a str,
    checkpoints: &'a [Checkpoint],
    log_context: *mut c_void,
) -> Box<ArgsHolder<'a>> {
    let refs: Vec<CheckpointRef> = checkpoints.iter().map(CheckpointRef::new).collect();
    let declared = info.map_or(&[][..], |i| i.options.as_slice());
    let (texts, numbered) = option_values(declared, config_json);
    let values: Vec<OptionValue> = numbered
        .into_iter()
        .zip(declared)
        .map(|((text, mut v), o)| {
            v.name = StrRef::new(&o.name);
            if let Some(i) = text {
                v.text = StrRef::new(&texts[i]);
            }
            v
        })
        .collect();
    let mut holder = Box::new(ArgsHolder {
        args: CreateArgs {
            struct_size: size_of::<CreateArgs>() as u32,
            source_type: StrRef::new(source_type),
            source_name: StrRef::new(source_name),
            config_json: StrRef::new(config_json),
            options: std::ptr::null(),
            options_len: values.len(),
            checkpoints: std::ptr::null(),
            checkpoints_len: refs.len(),
            log: Some(log_bridge),
            log_context,
        },
        refs,
        _texts: texts,
        values,
        _borrow: std::marker::PhantomData,
    });
    holder.args.checkpoints = holder.refs.as_ptr();
    holder.args.options = holder.values.as_ptr();
    holder
}

impl LoadedPlugin {
    /// The declaration of one of the library's source types.
    pub fn source_type(&self, name: &str) -> Option<&SourceTypeInfo> {
        self.source_types.iter().find(|t| t.name == name)
    }

    /// What the lag of a source of type `name` counts; `None` when the type
    /// reports no lag.
    pub fn lag_unit(&self, name: &str) -> Option<LagUnit> {
        self.source_type(name).and_then(|t| t.lag_unit)
    }

    /// Runs the plugin's own checks on a source's options.
    pub fn validate(
        &self,
        source_type: &str,
        source_name: &str,
        config_json: &str,
    ) -> Vec<PluginConfigIssue> {
        let mut context = LogContext {
            source: source_name.to_owned(),
        };
        let holder = make_args(
            self.source_type(source_type),
            source_type,
            source_name,
            config_json,
            &[],
            std::ptr::from_mut(&mut context).cast(),
        );
        let mut err = OwnedBytes::empty();
        // SAFETY: arguments follow the ABI and outlive the call.
        let status = unsafe { (self.vtable.validate)(&holder.args, &mut err) };
        if status == abi::STATUS_OK {
            return Vec::new();
        }
        // SAFETY: the plugin filled `err` (or left it empty).
        let bytes = unsafe { err.take() };
        match serde_json::from_slice::<Vec<serde_json::Value>>(&bytes) {
            Ok(items) => items
                .into_iter()
                .map(|v| PluginConfigIssue {
                    key: v.get("key").and_then(|k| k.as_str()).map(str::to_owned),
                    message: v
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or("invalid options")
                        .to_owned(),
                })
                .collect(),
            Err(_) => vec![PluginConfigIssue {
                key: None,
                message: String::from_utf8_lossy(&bytes).into_owned(),
            }],
        }
    }
}

/// A live plugin instance. Not `Send`: it stays on the thread that created
/// it, as the ABI promises plugins.
#[derive(Debug)]
pub struct PluginInstance {
    plugin: Arc<LoadedPlugin>,
    ptr: *mut c_void,
    /// Given to the plugin's log callback; dropped after the instance.
    _log_context: Box<LogContext>,
    /// Set after a panic: the instance may be inconsistent and is only
    /// destroyed.
    poisoned: bool,
}

impl PluginInstance {
    /// Creates an instance of `source_type` resuming after `checkpoints`.
    pub fn create(
        plugin: Arc<LoadedPlugin>,
        source_type: &str,
        source_name: &str,
        config_json: &str,
        checkpoints: &[Checkpoint],
    ) -> Result<Self, PluginError> {
        let mut log_context = Box::new(LogContext {
            source: source_name.to_owned(),
        });
        let holder = make_args(
            plugin.source_type(source_type),
            source_type,
            source_name,
            config_json,
            checkpoints,
            std::ptr::from_mut(log_context.as_mut()).cast(),
        );
        let mut ptr: *mut c_void = std::ptr::null_mut();
        let mut err = ErrorInfo::empty();
        // SAFETY: arguments follow the ABI and outlive the call.
        let status = unsafe { (plugin.vtable.create)(&holder.args, &mut ptr, &mut err) };
        // SAFETY: the plugin filled `err` (or left it empty).
        let message = String::from_utf8_lossy(&unsafe { err.message.take() }).into_owned();
        if status != abi::STATUS_OK || ptr.is_null() {
            return Err(PluginError::Call {
                plugin: plugin.name.clone(),
                call: "create",
                category: if status == abi::STATUS_PANIC {
                    abi::ERROR_INTERNAL
                } else {
                    err.category
                },
                message: if message.is_empty() {
                    format!("status {status}")
                } else {
                    message
                },
            });
        }
        Ok(PluginInstance {
            plugin,
            ptr,
            _log_context: log_context,
            poisoned: false,
        })
    }

    fn last_error(&self, call: &'static str, status: i32) -> PluginError {
        let mut out = ErrorInfo::empty();
        // SAFETY: `ptr` is a live instance on its own thread.
        unsafe { (self.plugin.vtable.last_error)(self.ptr, &mut out) };
        // SAFETY: the plugin filled `out` (or left it empty).
        let message = String::from_utf8_lossy(&unsafe { out.message.take() }).into_owned();
        let message = if message.is_empty() {
            format!("status {status}")
        } else {
            message
        };
        if status == abi::STATUS_PANIC {
            PluginError::Panicked {
                plugin: self.plugin.name.clone(),
                call,
                message,
            }
        } else {
            PluginError::Call {
                plugin: self.plugin.name.clone(),
                call,
                category: out.category,
                message,
            }
        }
    }

    /// Waits up to `timeout` for the next batch.
    pub fn poll(&mut self, timeout: Duration) -> Result<PollOutcome, PluginError> {
        if self.poisoned {
            return Err(self.poisoned_error("poll"));
        }
        let mut out = PolledBatch::empty();
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        // SAFETY: `ptr` is a live instance on its own thread; `out` is ours.
        let status = unsafe { (self.plugin.vtable.poll)(self.ptr, ms, &mut out) };
        match status {
            abi::STATUS_OK => self.import(out).map(PollOutcome::Batch),
            abi::STATUS_IDLE => Ok(PollOutcome::Idle),
            abi::STATUS_FINISHED => Ok(PollOutcome::Finished),
            other => {
                if other == abi::STATUS_PANIC {
                    self.poisoned = true;
                }
                Err(self.last_error("poll", other))
            }
        }
    }

    fn poisoned_error(&self, call: &'static str) -> PluginError {
        PluginError::Call {
            plugin: self.plugin.name.clone(),
            call,
            category: abi::ERROR_INTERNAL,
            message: "the instance panicked earlier and is no longer called".into(),
        }
    }

    /// Converts the plugin's Arrow C structs into a validated `RecordBatch`.
    fn import(&self, mut out: PolledBatch) -> Result<Polled, PluginError> {
        // A malformed batch is a plugin bug, not bad input: internal.
        let bad = |message: String| PluginError::Call {
            plugin: self.plugin.name.clone(),
            call: "poll",
            category: abi::ERROR_INTERNAL,
            message,
        };
        // SAFETY: both came from the plugin and are released by their own callbacks.
        let (partition, checkpoint) = unsafe { (out.partition.take(), out.checkpoint.take()) };
        let array = std::mem::replace(&mut out.array, abi::FFI_ArrowArray::empty());
        // SAFETY: the plugin promised a valid C Data Interface array and schema.
        let data = unsafe { arrow_array::ffi::from_ffi(array, &out.schema) }
            .map_err(|e| bad(format!("invalid Arrow batch: {e}")))?;
        // A buggy plugin must not be able to make the serializer read out of
        // bounds or invalid UTF-8, so the data is checked in full once here.
        data.validate_full()
            .map_err(|e| bad(format!("invalid Arrow batch: {e}")))?;
        if !matches!(data.data_type(), arrow_schema::DataType::Struct(_)) {
            return Err(bad(format!(
                "a batch must be a struct array, got {}",
                data.data_type()
            )));
        }
        let struct_array = StructArray::from(data);
        if struct_array.null_count() > 0 {
            return Err(bad(
                "a batch's top-level struct must not have null rows".into()
            ));
        }
        let mut records = RecordBatch::from(struct_array);
        // Schema-level metadata (e.g. the dead-letter mark) travels on the
        // schema, not on the struct's data type.
        let schema = arrow_schema::Schema::try_from(&out.schema)
            .map_err(|e| bad(format!("invalid Arrow schema: {e}")))?;
        if !schema.metadata().is_empty() {
            records = records
                .with_schema(Arc::new(schema))
                .map_err(|e| bad(format!("invalid Arrow schema: {e}")))?;
        }
        Ok(Polled {
            records,
            partition,
            checkpoint,
            lag: u64::try_from(out.lag).ok(),
        })
    }

    /// Tells the instance a checkpoint is committed.
    pub fn committed(&mut self, committed: &Checkpoint) -> Result<(), PluginError> {
        if self.poisoned {
            return Err(self.poisoned_error("committed"));
        }
        // SAFETY: `ptr` is a live instance; the slices outlive the call.
        let status = unsafe {
            (self.plugin.vtable.committed)(
                self.ptr,
                BytesRef::new(&committed.partition),
                BytesRef::new(&committed.checkpoint),
            )
        };
        if status == abi::STATUS_OK {
            Ok(())
        } else {
            if status == abi::STATUS_PANIC {
                self.poisoned = true;
            }
            Err(self.last_error("committed", status))
        }
    }
}

impl Drop for PluginInstance {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `create`, is destroyed once, on its thread.
        unsafe { (self.plugin.vtable.destroy)(self.ptr) };
    }
}
