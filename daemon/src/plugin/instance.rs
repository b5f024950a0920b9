//! Calling into a loaded plugin: validate, create, poll, committed, destroy.

use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, RecordBatch, StructArray};
use tributary_plugin_sdk::abi::{
    self, BytesRef, CheckpointRef, CreateArgs, OwnedBytes, PolledBatch, StrRef,
};

use super::{LoadedPlugin, PluginError};

/// A batch received from a plugin, converted to Rust ownership.
#[derive(Debug)]
pub struct Polled {
    /// The rows.
    pub records: RecordBatch,
    /// The source partition.
    pub partition: Vec<u8>,
    /// Where to resume after this batch.
    pub checkpoint: Vec<u8>,
    /// Units behind at the source, when known.
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

/// Forwards plugin log messages into `tracing`, inside the caller's span
/// (plugin calls happen on the source's own thread, which has entered the
/// source's span).
unsafe extern "C" fn log_bridge(level: u32, message: StrRef) {
    // SAFETY: borrowed for the duration of the call per the ABI.
    let Ok(msg) = (unsafe { message.as_str() }) else {
        return;
    };
    match level {
        abi::LOG_ERROR => tracing::error!(target: "tributary::plugin", "{msg}"),
        abi::LOG_WARN => tracing::warn!(target: "tributary::plugin", "{msg}"),
        abi::LOG_INFO => tracing::info!(target: "tributary::plugin", "{msg}"),
        _ => tracing::debug!(target: "tributary::plugin", "{msg}"),
    }
}

/// Borrowed arguments kept alive while a `CreateArgs` points into them.
struct ArgsHolder<'a> {
    refs: Vec<CheckpointRef>,
    args: CreateArgs,
    _borrow: std::marker::PhantomData<&'a ()>,
}

fn make_args<'a>(
    source_type: &'a str,
    source_name: &'a str,
    config_json: &'a str,
    checkpoints: &'a [(Vec<u8>, Vec<u8>)],
) -> Box<ArgsHolder<'a>> {
    let refs: Vec<CheckpointRef> = checkpoints
        .iter()
        .map(|(p, c)| CheckpointRef {
            partition: BytesRef::new(p),
            checkpoint: BytesRef::new(c),
        })
        .collect();
    let mut holder = Box::new(ArgsHolder {
        args: CreateArgs {
            struct_size: size_of::<CreateArgs>() as u32,
            source_type: StrRef::new(source_type),
            source_name: StrRef::new(source_name),
            config_json: StrRef::new(config_json),
            checkpoints: std::ptr::null(),
            checkpoints_len: refs.len(),
            log: Some(log_bridge),
        },
        refs,
        _borrow: std::marker::PhantomData,
    });
    holder.args.checkpoints = holder.refs.as_ptr();
    holder
}

impl LoadedPlugin {
    /// Runs the plugin's own checks on a source's options.
    pub fn validate(
        &self,
        source_type: &str,
        source_name: &str,
        config_json: &str,
    ) -> Vec<PluginConfigIssue> {
        let holder = make_args(source_type, source_name, config_json, &[]);
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
        checkpoints: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Self, PluginError> {
        let holder = make_args(source_type, source_name, config_json, checkpoints);
        let mut ptr: *mut c_void = std::ptr::null_mut();
        let mut err = OwnedBytes::empty();
        // SAFETY: arguments follow the ABI and outlive the call.
        let status = unsafe { (plugin.vtable.create)(&holder.args, &mut ptr, &mut err) };
        // SAFETY: the plugin filled `err` (or left it empty).
        let message = String::from_utf8_lossy(&unsafe { err.take() }).into_owned();
        if status != abi::STATUS_OK || ptr.is_null() {
            return Err(PluginError::Call {
                plugin: plugin.name.clone(),
                call: "create",
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
            poisoned: false,
        })
    }

    fn last_error(&self, call: &'static str, status: i32) -> PluginError {
        let mut out = OwnedBytes::empty();
        // SAFETY: `ptr` is a live instance on its own thread.
        unsafe { (self.plugin.vtable.last_error)(self.ptr, &mut out) };
        // SAFETY: the plugin filled `out` (or left it empty).
        let message = String::from_utf8_lossy(&unsafe { out.take() }).into_owned();
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
            message: "the instance panicked earlier and is no longer called".into(),
        }
    }

    /// Converts the plugin's Arrow C structs into a validated `RecordBatch`.
    fn import(&self, mut out: PolledBatch) -> Result<Polled, PluginError> {
        let bad = |message: String| PluginError::Call {
            plugin: self.plugin.name.clone(),
            call: "poll",
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
    pub fn committed(&mut self, partition: &[u8], checkpoint: &[u8]) -> Result<(), PluginError> {
        if self.poisoned {
            return Err(self.poisoned_error("committed"));
        }
        // SAFETY: `ptr` is a live instance; the slices outlive the call.
        let status = unsafe {
            (self.plugin.vtable.committed)(
                self.ptr,
                BytesRef::new(partition),
                BytesRef::new(checkpoint),
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
