/*
 * tributary_plugin.h -- the C ABI between the tributary daemon and its source
 * plugins (ABI 2.0). Generated from plugins/sdk/src/abi.rs; do not edit.
 *
 * A plugin is a shared library named libtributary_<name>.so, placed in one of
 * the daemon's plugin directories. It exports one function,
 *
 *     const tributary_plugin_descriptor *tributary_plugin_v1(void);
 *
 * returning a descriptor that lives as long as the library. The descriptor
 * names the library, lists its source types with their options (declared
 * once: the daemon checks a config file against them, shows them in
 * `tributary plugins describe`, and passes the values back typed), and holds
 * six functions. For each `[[source]]` of a configuration the daemon calls:
 *
 *   validate(args)            when a config is checked (no instance is made);
 *   create(args, &instance)   once per run, with the last committed
 *                             checkpoint of every source partition;
 *   poll(instance, timeout)   in a loop, on one thread: return a batch of rows
 *                             (an Arrow record batch through the Arrow C Data
 *                             Interface, plus a partition and a checkpoint),
 *                             IDLE, or FINISHED;
 *   committed(instance, ...)  when Kafka has acknowledged every row up to a
 *                             checkpoint and it is durably stored;
 *   last_error(instance)      after a call returned an error status;
 *   destroy(instance)         once, at the end of the run.
 *
 * Rules: fill every struct_size with sizeof of your struct; memory handed
 * across carries its own release callback (tributary_owned_bytes, the Arrow
 * structs); an error carries a category (TRIBUTARY_ERROR_*) that decides
 * whether the daemon restarts the source after a back-off or leaves it failed;
 * a checkpoint is opaque bytes only your plugin reads, and the daemon gives it
 * back to create() after a restart, so resuming after it must neither skip nor
 * repeat a row. An example plugin in C: plugins/examples/c/counter.c.
 */


#ifndef TRIBUTARY_PLUGIN_H
#define TRIBUTARY_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The Arrow C Data Interface, as specified at
 * https://arrow.apache.org/docs/format/CDataInterface.html (guarded so that
 * Arrow's own headers may come first).
 */
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
    const char *format;
    const char *name;
    const char *metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema **children;
    struct ArrowSchema *dictionary;
    void (*release)(struct ArrowSchema *);
    void *private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void **buffers;
    struct ArrowArray **children;
    struct ArrowArray *dictionary;
    void (*release)(struct ArrowArray *);
    void *private_data;
};

#endif /* ARROW_C_DATA_INTERFACE */


/*
 The major version of this ABI. A host only loads plugins of its own major.
 */
#define TRIBUTARY_ABI_MAJOR 2

/*
 The minor version of this ABI: fields appended to the structs below.
 */
#define TRIBUTARY_ABI_MINOR 1

/*
 A call succeeded; `poll` filled in a batch.
 */
#define TRIBUTARY_STATUS_OK 0

/*
 `poll`: no data arrived within the timeout; the host calls again.
 */
#define TRIBUTARY_STATUS_IDLE 1

/*
 `poll`: the source has no more data, ever (a finite generator, a one-shot
 file import). The host stops polling and keeps the offsets.
 */
#define TRIBUTARY_STATUS_FINISHED 2

/*
 The call failed. `create` and `validate` describe the failure in their
 error out-parameter; other calls through `last_error`.
 */
#define TRIBUTARY_STATUS_ERROR -1

/*
 The call panicked or crashed inside the plugin and the instance may be
 inconsistent: the host only destroys it.
 */
#define TRIBUTARY_STATUS_PANIC -2

/*
 Error category: a bug or an unexpected state inside the plugin. The
 source is restarted after a back-off.
 */
#define TRIBUTARY_ERROR_INTERNAL 1

/*
 Error category: reading failed (a disk error, a dropped connection). The
 source is restarted after a back-off.
 */
#define TRIBUTARY_ERROR_IO 2

/*
 Error category: something took too long. The source is restarted after a
 back-off.
 */
#define TRIBUTARY_ERROR_TIMEOUT 3

/*
 Error category: something the source needs does not exist yet (a file, a
 directory). The source is restarted after a back-off, so it starts once
 the thing appears.
 */
#define TRIBUTARY_ERROR_NOT_FOUND 4

/*
 Error category: the input itself is wrong and will stay wrong (a binary
 file where text was expected, a corrupt Parquet footer). **Permanent**:
 the source is marked failed and not restarted until its configuration
 changes or an operator restarts it.
 */
#define TRIBUTARY_ERROR_INVALID_DATA 5

/*
 Error category: the options cannot work (found only at run time, e.g. a
 pattern that matches a directory). **Permanent**, like
 `TRIBUTARY_ERROR_INVALID_DATA`.
 */
#define TRIBUTARY_ERROR_INVALID_CONFIG 6

/*
 Error category: permission denied. **Permanent**, like
 `TRIBUTARY_ERROR_INVALID_DATA`: retrying does not grant a permission.
 */
#define TRIBUTARY_ERROR_UNAUTHORIZED 7

/*
 Log level of `tributary_log_fn`: something failed.
 */
#define TRIBUTARY_LOG_ERROR 1

/*
 Log level: something is wrong but the source goes on.
 */
#define TRIBUTARY_LOG_WARN 2

/*
 Log level: a normal event an operator wants to see.
 */
#define TRIBUTARY_LOG_INFO 3

/*
 Log level: detail for debugging.
 */
#define TRIBUTARY_LOG_DEBUG 4

/*
 Option type: UTF-8 text.
 */
#define TRIBUTARY_OPTION_STRING 1

/*
 Option type: a signed 64-bit integer.
 */
#define TRIBUTARY_OPTION_INTEGER 2

/*
 Option type: a double; an integer is accepted.
 */
#define TRIBUTARY_OPTION_FLOAT 3

/*
 Option type: true or false.
 */
#define TRIBUTARY_OPTION_BOOLEAN 4

/*
 Option type: an array; its value is passed as JSON text.
 */
#define TRIBUTARY_OPTION_ARRAY 5

/*
 Option type: a table; its value is passed as JSON text.
 */
#define TRIBUTARY_OPTION_TABLE 6

/*
 `tributary_source_type_descriptor.placement`: a source of this type is one unit of
 work that runs on one member of a cluster at a time and moves when that
 member leaves (tables, generated data).
 */
#define TRIBUTARY_PLACEMENT_CLUSTER 0

/*
 `tributary_source_type_descriptor.placement`: a source of this type reads the host
 it runs on (log files, host metrics), so it runs on every member and never
 moves.
 */
#define TRIBUTARY_PLACEMENT_EVERY_MEMBER 1

/*
 The `struct_size` of a `tributary_source_type_descriptor` of ABI 2.0, which had no
 `placement`: the smallest entry a host accepts.
 */
#define TRIBUTARY_SOURCE_TYPE_DESCRIPTOR_2_0_SIZE 56

/*
 One option a source type accepts. The host checks a configuration
 against these declarations (unknown keys, types, choices, ranges,
 required keys) before the plugin sees it, shows them in
 `tributary plugins describe`, and passes each value typed, with the
 default applied, in `tributary_create_args.options`.
 */
typedef struct tributary_option_descriptor {
    /*
     `sizeof` this struct as the plugin knows it.
     */
    uint32_t struct_size;
    /*
     One of the `TRIBUTARY_OPTION_*` types.
     */
    uint32_t kind;
    /*
     Whether the key must be present.
     */
    bool required;
    /*
     The key, as written in the `[[source]]` table (NUL-terminated).
     */
    const char *name;
    /*
     What the option does, one or two sentences.
     */
    const char *doc;
    /*
     The default as a literal that is both valid TOML and valid JSON
     (`1000`, `"orders"`, `true`, `[]`); null when there is none.
     */
    const char *default_value;
    /*
     Allowed values of a string option; null when any text is allowed.
     */
    const char *const *choices;
    /*
     Number of entries in `choices`.
     */
    size_t choices_len;
    /*
     The smallest accepted value of a number option, as a literal; null
     for no lower bound.
     */
    const char *minimum;
    /*
     The largest accepted value of a number option, as a literal; null for
     no upper bound.
     */
    const char *maximum;
} tributary_option_descriptor;

/*
 One kind of source a library provides (a library may provide several,
 e.g. `csv` and `parquet`).
 */
typedef struct tributary_source_type_descriptor {
    /*
     `sizeof` this struct as the plugin knows it.
     */
    uint32_t struct_size;
    /*
     The value of `type` in a `[[source]]` table.
     */
    const char *name;
    /*
     One sentence for listings.
     */
    const char *description;
    /*
     The accepted options.
     */
    const struct tributary_option_descriptor *options;
    /*
     Number of entries in `options`.
     */
    size_t options_len;
    /*
     The column whose value becomes the record key when the source's
     config sets no `key` (e.g. `host` for host metrics); null for none.
     */
    const char *default_key;
    /*
     What `tributary_polled_batch.lag` counts: `"rows"` or `"bytes"` still to
     read; null when the type reports no lag (the host then ignores it).
     The host exports the lag as `tributary_source_lag_rows` or
     `tributary_source_lag_bytes`, and refuses the library for any other
     text.
     */
    const char *lag_unit;
    /*
     ABI 2.1: where the sources of this type run when daemons share work
     (`[cluster]`): `TRIBUTARY_PLACEMENT_CLUSTER` (0) or `TRIBUTARY_PLACEMENT_EVERY_MEMBER`
     (1). A 2.0 entry ends before this field (its `struct_size` is
     smaller) and counts as 0.
     */
    uint32_t placement;
} tributary_source_type_descriptor;

/*
 Borrowed UTF-8 text, valid only for the duration of the call it is passed
 to. Not NUL-terminated.
 */
typedef struct tributary_str_ref {
    /*
     Start of the bytes; may be dangling or null when `len` is 0.
     */
    const uint8_t *ptr;
    /*
     Length in bytes.
     */
    size_t len;
} tributary_str_ref;

/*
 One option's value, typed after its declaration.
 */
typedef struct tributary_option_value {
    /*
     The option's name.
     */
    struct tributary_str_ref name;
    /*
     The declared `TRIBUTARY_OPTION_*` type; selects the field that holds the value.
     */
    uint32_t kind;
    /*
     False when the option is absent from the configuration and declares
     no default; the value fields are then zero.
     */
    bool present;
    /*
     The value of a boolean option.
     */
    bool boolean;
    /*
     The value of an integer option.
     */
    int64_t integer;
    /*
     The value of a float option.
     */
    double number;
    /*
     The value of a string option; JSON text for an array or a table.
     */
    struct tributary_str_ref text;
} tributary_option_value;

/*
 Borrowed bytes, valid only for the duration of the call it is passed to.
 */
typedef struct tributary_bytes_ref {
    /*
     Start of the bytes; may be dangling or null when `len` is 0.
     */
    const uint8_t *ptr;
    /*
     Length in bytes.
     */
    size_t len;
} tributary_bytes_ref;

/*
 A source's last committed checkpoint for one of its partitions.
 */
typedef struct tributary_checkpoint_ref {
    /*
     The source partition (e.g. a file's identity).
     */
    struct tributary_bytes_ref partition;
    /*
     The checkpoint the plugin returned with the last committed batch.
     */
    struct tributary_bytes_ref checkpoint;
} tributary_checkpoint_ref;

/*
 Arguments to `validate` and `create`; borrowed for the duration of the
 call only (copy what you keep). Append-only: check `struct_size`.
 */
typedef struct tributary_create_args {
    /*
     `sizeof` this struct as the host knows it.
     */
    uint32_t struct_size;
    /*
     Which of the library's source types to create.
     */
    struct tributary_str_ref source_type;
    /*
     The name of the source in the config, for messages.
     */
    struct tributary_str_ref source_name;
    /*
     The source's plugin options as one JSON object (the common keys such
     as `name`, `topic` and `key` are the host's and are not included).
     */
    struct tributary_str_ref config_json;
    /*
     Every declared option of the source type, in declaration order,
     typed, with defaults applied: the same options as `config_json`, for
     plugins that would rather not parse JSON.
     */
    const struct tributary_option_value *options;
    /*
     Number of entries in `options`.
     */
    size_t options_len;
    /*
     The last committed checkpoint of every partition of this source.
     A partition without a checkpoint has never been committed.
     */
    const struct tributary_checkpoint_ref *checkpoints;
    /*
     Number of entries in `checkpoints`.
     */
    size_t checkpoints_len;
    /*
     Where to send log messages, a `tributary_log_fn`; may be null. (Spelt out
     rather than named so the generated C header has the plain function
     pointer type.)
     */
    void (*log)(void *context, uint32_t level, struct tributary_str_ref message);
    /*
     Passed back as the first argument of every `log` call. Valid until
     the instance is destroyed (for `validate`, until it returns).
     */
    void *log_context;
} tributary_create_args;

/*
 Bytes handed from one side to the other together with the means to free
 them: the receiver copies what it needs and calls `release` exactly once
 (with a pointer to this struct).
 */
typedef struct tributary_owned_bytes {
    /*
     Start of the bytes.
     */
    uint8_t *ptr;
    /*
     Length in bytes.
     */
    size_t len;
    /*
     Free for the allocator's own use (a capacity, a handle).
     */
    size_t cap;
    /*
     Frees the bytes; null when there is nothing to free (for example
     bytes in static storage).
     */
    void (*release)(struct tributary_owned_bytes *bytes);
} tributary_owned_bytes;

/*
 Checks options and creates nothing, for `tributary validate` and before
 a reload goes live. Returns `TRIBUTARY_STATUS_OK`, or `TRIBUTARY_STATUS_ERROR` with a
 JSON array of `{"key": "option or null", "message": "..."}` in `issues`.
 */
typedef int32_t (*tributary_validate_fn)(const struct tributary_create_args *args,
                                         struct tributary_owned_bytes *issues);

/*
 A failure, as `create` and `last_error` report it.
 */
typedef struct tributary_error_info {
    /*
     One of the `TRIBUTARY_ERROR_*` categories; the host treats an unknown value as
     `TRIBUTARY_ERROR_INTERNAL`.
     */
    uint32_t category;
    /*
     What failed and what was expected, UTF-8, for the operator: name the
     file, line and option involved.
     */
    struct tributary_owned_bytes message;
} tributary_error_info;

/*
 Creates an instance resuming after the checkpoints in `args`. On
 `TRIBUTARY_STATUS_OK` `*instance` is set; otherwise `error` says why.
 */
typedef int32_t (*tributary_create_fn)(const struct tributary_create_args *args,
                                       void **instance,
                                       struct tributary_error_info *error);

/*
 What `poll` fills in when it returns `TRIBUTARY_STATUS_OK`.

 `array` is a struct array whose children are the batch's columns and
 `schema` its struct-typed schema, as the Arrow C Data Interface exports a
 record batch; schema metadata travels on `schema`. The host takes
 ownership of everything in it and calls the release callbacks.
 */
typedef struct tributary_polled_batch {
    /*
     The rows, one record each.
     */
    struct ArrowArray array;
    /*
     The schema of `array`.
     */
    struct ArrowSchema schema;
    /*
     The source partition these rows came from (e.g. a file identity);
     checkpoints are tracked per partition.
     */
    struct tributary_owned_bytes partition;
    /*
     Where to resume once every row of this batch (and of every earlier
     batch of the same partition) is acknowledged by Kafka. An empty
     checkpoint ends the partition: the host forgets it once committed.
     */
    struct tributary_owned_bytes checkpoint;
    /*
     How far behind the source is after this batch, in the source type's
     `tributary_source_type_descriptor.lag_unit`, or -1 when unknown.
     */
    int64_t lag;
} tributary_polled_batch;

/*
 Waits up to `timeout_ms` for the next batch; returns `TRIBUTARY_STATUS_OK` with
 `out` filled, `TRIBUTARY_STATUS_IDLE`, `TRIBUTARY_STATUS_FINISHED` or an error status.
 */
typedef int32_t (*tributary_poll_fn)(void *instance,
                                     uint32_t timeout_ms,
                                     struct tributary_polled_batch *out);

/*
 Tells the instance that everything up to `checkpoint` of `partition` is
 durably committed (a spool directory may now move the file away).
 */
typedef int32_t (*tributary_committed_fn)(void *instance,
                                          struct tributary_bytes_ref partition,
                                          struct tributary_bytes_ref checkpoint);

/*
 Describes the instance's last failed call (after an error status).
 */
typedef void (*tributary_last_error_fn)(void *instance, struct tributary_error_info *out);

/*
 Frees the instance. Called once, on the thread that created it.
 */
typedef void (*tributary_destroy_fn)(void *instance);

/*
 What the entry symbol returns. The first three fields keep their place
 in every ABI version; the rest is append-only within a major.
 */
typedef struct tributary_plugin_descriptor {
    /*
     `TRIBUTARY_ABI_MAJOR` of the header or SDK the plugin was built with.
     */
    uint32_t abi_major;
    /*
     `TRIBUTARY_ABI_MINOR` of the header or SDK the plugin was built with.
     */
    uint32_t abi_minor;
    /*
     `sizeof(PluginDescriptor)` as the plugin knows it.
     */
    uint32_t struct_size;
    /*
     The library's name (e.g. `datagen`).
     */
    const char *name;
    /*
     The library's version.
     */
    const char *version;
    /*
     The source types the library provides.
     */
    const struct tributary_source_type_descriptor *source_types;
    /*
     Number of entries in `source_types`.
     */
    size_t source_types_len;
    /*
     See `tributary_validate_fn`.
     */
    tributary_validate_fn validate;
    /*
     See `tributary_create_fn`.
     */
    tributary_create_fn create;
    /*
     See `tributary_poll_fn`.
     */
    tributary_poll_fn poll;
    /*
     See `tributary_committed_fn`.
     */
    tributary_committed_fn committed;
    /*
     See `tributary_last_error_fn`.
     */
    tributary_last_error_fn last_error;
    /*
     See `tributary_destroy_fn`.
     */
    tributary_destroy_fn destroy;
} tributary_plugin_descriptor;

/*
 The type of the entry symbol.
 */
typedef const struct tributary_plugin_descriptor *(*tributary_entry_fn)(void);

#endif  /* TRIBUTARY_PLUGIN_H */

/** The name of the entry symbol, for dlsym. */
#define TRIBUTARY_ENTRY_SYMBOL "tributary_plugin_v1"

/** The entry point every plugin library exports (see the top of this file). */
const tributary_plugin_descriptor *tributary_plugin_v1(void);
