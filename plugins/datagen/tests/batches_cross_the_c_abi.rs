//! Drives `datagen` through its exported C entry point, as the daemon does
//! after `dlopen`: create with a checkpoint, poll, import the Arrow batch
//! back, and check the rows and checkpoint that crossed the boundary.

use std::ffi::{CStr, c_void};

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, StructArray};
use tributary_plugin_sdk::abi::{
    ABI_MAJOR, BytesRef, CheckpointRef, CreateArgs, ERROR_INVALID_DATA, ErrorInfo,
    PluginDescriptor, PolledBatch, STATUS_ERROR, STATUS_FINISHED, STATUS_OK, StrRef,
};

fn descriptor() -> &'static PluginDescriptor {
    // SAFETY: the entry point takes no arguments and returns a pointer to a
    // descriptor that lives as long as the library (here: the process).
    unsafe { &*tributary_datagen::tributary_plugin_v1() }
}

fn args<'a>(config: &'a str, checkpoints: &'a [CheckpointRef]) -> CreateArgs {
    CreateArgs {
        struct_size: size_of::<CreateArgs>() as u32,
        source_type: StrRef::new("datagen"),
        source_name: StrRef::new("orders-test"),
        config_json: StrRef::new(config),
        options: std::ptr::null(),
        options_len: 0,
        checkpoints: checkpoints.as_ptr(),
        checkpoints_len: checkpoints.len(),
        log: None,
        log_context: std::ptr::null_mut(),
    }
}

#[test]
fn batches_cross_the_c_abi() {
    let d = descriptor();
    assert_eq!(d.abi_major, ABI_MAJOR);
    // SAFETY: the descriptor's strings are NUL-terminated statics.
    let name = unsafe { CStr::from_ptr(d.name) };
    assert_eq!(name.to_str().unwrap(), "datagen");

    let config = r#"{"kind":"orders","rate_per_sec":0,"batch_size":10,"count":25}"#;
    let resume = 10u64.to_le_bytes();
    let checkpoints = [CheckpointRef {
        partition: BytesRef::new(b"seq"),
        checkpoint: BytesRef::new(&resume),
    }];
    let args = args(config, &checkpoints);
    let mut instance: *mut c_void = std::ptr::null_mut();
    let mut error = ErrorInfo::empty();
    // SAFETY: valid arguments and out-parameters for the duration of the call.
    let status = unsafe { (d.create)(&args, &mut instance, &mut error) };
    assert_eq!(status, STATUS_OK);
    // SAFETY: nothing was written on success; releasing an empty value is a no-op.
    drop(unsafe { error.message.take() });

    let mut seqs = Vec::new();
    loop {
        let mut out = PolledBatch::empty();
        // SAFETY: `instance` came from `create`; `out` is a fresh placeholder.
        let status = unsafe { (d.poll)(instance, 100, &mut out) };
        if status == STATUS_FINISHED {
            break;
        }
        assert_eq!(status, STATUS_OK);
        // SAFETY: the plugin filled `out` with an exported struct array.
        let data = unsafe { arrow_array::ffi::from_ffi(out.array, &out.schema) }.unwrap();
        let rows = StructArray::from(data);
        assert_eq!(rows.column_names()[..3], ["seq", "order_id", "customer_id"]);
        let col = rows.column(0).as_primitive::<UInt64Type>();
        seqs.extend(col.values().iter().copied());
        // SAFETY: both were handed over with their release callbacks.
        let (partition, checkpoint) = unsafe { (out.partition.take(), out.checkpoint.take()) };
        assert_eq!(partition, b"seq");
        assert_eq!(checkpoint, (10 + seqs.len() as u64).to_le_bytes());
        assert!(rows.len() <= 10);
    }
    assert_eq!(seqs, (10..25).collect::<Vec<_>>());
    // SAFETY: created above and destroyed once.
    unsafe { (d.destroy)(instance) };
}

#[test]
fn a_malformed_checkpoint_fails_create_with_a_message() {
    let d = descriptor();
    let checkpoints = [CheckpointRef {
        partition: BytesRef::new(b"seq"),
        checkpoint: BytesRef::new(&[1, 2, 3]),
    }];
    let args = args("{}", &checkpoints);
    let mut instance: *mut c_void = std::ptr::null_mut();
    let mut error = ErrorInfo::empty();
    // SAFETY: valid arguments and out-parameters for the duration of the call.
    let status = unsafe { (d.create)(&args, &mut instance, &mut error) };
    assert_eq!(status, STATUS_ERROR);
    assert!(instance.is_null());
    // SAFETY: the plugin wrote the message with its release callback.
    let message = String::from_utf8(unsafe { error.message.take() }).unwrap();
    assert!(message.contains("is 3 bytes, expected 8"), "{message}");
    // A checkpoint that cannot be read stays unreadable: restarting the
    // source would only repeat the error.
    assert_eq!(error.category, ERROR_INVALID_DATA);
}
