/*
 * counter -- an example tributary source plugin written in C, against
 * tributary_plugin.h and the Arrow C Data Interface only.
 *
 * It counts from 0 to `count`, one row per number, in batches of
 * `batch_rows`, and then finishes. Each row has six typed columns:
 *
 *   seq    int64                      the number
 *   ratio  float64                    seq / count
 *   label  utf8                       the `label` option, then "-", then seq
 *   even   bool                       whether seq is even
 *   at     timestamp[ms, UTC]         2023-11-14T22:13:20Z plus seq seconds
 *   third  int64, nullable            seq / 3, null unless seq is a multiple of 3
 *
 * The checkpoint of partition "seq" is the next number as decimal text, so a
 * restarted source resumes exactly after the last committed row. With
 * `fail_at = N`, poll fails with TRIBUTARY_ERROR_INVALID_DATA when it reaches
 * row N: the daemon then leaves the source failed instead of restarting it.
 *
 * Build: cc -shared -fPIC -O2 -I plugins/sdk/include \
 *            -o libtributary_counter.so plugins/examples/c/counter.c
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary_plugin.h"

/* ---- options, declared once ------------------------------------------- */

static const tributary_option_descriptor OPTIONS[] = {
    {
        .struct_size = sizeof(tributary_option_descriptor),
        .kind = TRIBUTARY_OPTION_INTEGER,
        .name = "count",
        .doc = "How many rows to produce before the source finishes.",
        .default_value = "100",
        .minimum = "0",
        .maximum = "1000000000",
    },
    {
        .struct_size = sizeof(tributary_option_descriptor),
        .kind = TRIBUTARY_OPTION_INTEGER,
        .name = "batch_rows",
        .doc = "Most rows per batch.",
        .default_value = "10",
        .minimum = "1",
        .maximum = "100000",
    },
    {
        .struct_size = sizeof(tributary_option_descriptor),
        .kind = TRIBUTARY_OPTION_STRING,
        .name = "label",
        .doc = "Text in front of each row's number in the `label` column.",
        .default_value = "\"row\"",
    },
    {
        .struct_size = sizeof(tributary_option_descriptor),
        .kind = TRIBUTARY_OPTION_INTEGER,
        .name = "fail_at",
        .doc = "Fail with an invalid-data error on reaching this row (for tests).",
        .minimum = "0",
    },
};

static const tributary_source_type_descriptor SOURCE_TYPES[] = {
    {
        .struct_size = sizeof(tributary_source_type_descriptor),
        .name = "counter",
        .description = "Counts to a number in typed rows (an example plugin written in C).",
        .options = OPTIONS,
        .options_len = sizeof(OPTIONS) / sizeof(OPTIONS[0]),
        .default_key = "seq",
        .lag_unit = "rows", /* poll's `lag` is the rows left to count */
    },
};

/* ---- instance --------------------------------------------------------- */

typedef struct counter {
    int64_t next;
    int64_t count;
    int64_t batch_rows;
    int64_t fail_at; /* -1: never */
    char label[64];
    uint32_t error_category;
    char error[256];
} counter;

static const char PARTITION[] = "seq";
static const int64_t EPOCH_MS = 1700000000000LL;

/* Memory handed to the host is freed by this library's own callback. */
static void release_bytes(tributary_owned_bytes *bytes) {
    free(bytes->ptr);
    bytes->ptr = NULL;
    bytes->len = 0;
}

static tributary_owned_bytes owned_copy(const char *data, size_t len) {
    tributary_owned_bytes out = {0};
    out.ptr = malloc(len ? len : 1);
    if (out.ptr == NULL) {
        return out;
    }
    memcpy(out.ptr, data, len);
    out.len = len;
    out.release = release_bytes;
    return out;
}

static int name_is(tributary_str_ref name, const char *want) {
    return name.len == strlen(want) && memcmp(name.ptr, want, name.len) == 0;
}

/* The host checked every option against OPTIONS and applied the defaults. */
static void read_options(const tributary_create_args *args, counter *c) {
    c->count = 100;
    c->batch_rows = 10;
    c->fail_at = -1;
    snprintf(c->label, sizeof(c->label), "row");
    for (size_t i = 0; i < args->options_len; i++) {
        const tributary_option_value *o = &args->options[i];
        if (!o->present) {
            continue;
        }
        if (name_is(o->name, "count")) {
            c->count = o->integer;
        } else if (name_is(o->name, "batch_rows")) {
            c->batch_rows = o->integer;
        } else if (name_is(o->name, "fail_at")) {
            c->fail_at = o->integer;
        } else if (name_is(o->name, "label")) {
            size_t n = o->text.len < sizeof(c->label) - 1 ? o->text.len : sizeof(c->label) - 1;
            memcpy(c->label, o->text.ptr, n);
            c->label[n] = '\0';
        }
    }
}

static int32_t counter_validate(const tributary_create_args *args, tributary_owned_bytes *issues) {
    /* A rule the declarations cannot express: the label must not be empty. */
    for (size_t i = 0; i < args->options_len; i++) {
        const tributary_option_value *o = &args->options[i];
        if (o->present && name_is(o->name, "label") && o->text.len == 0) {
            static const char JSON[] = "[{\"key\":\"label\",\"message\":\"must not be empty\"}]";
            *issues = owned_copy(JSON, sizeof(JSON) - 1);
            return TRIBUTARY_STATUS_ERROR;
        }
    }
    return TRIBUTARY_STATUS_OK;
}

static void set_error(tributary_error_info *error, uint32_t category, const char *message) {
    error->category = category;
    error->message = owned_copy(message, strlen(message));
}

static int32_t counter_create(const tributary_create_args *args, void **instance,
                              tributary_error_info *error) {
    if (args->struct_size < sizeof(tributary_create_args)) {
        set_error(error, TRIBUTARY_ERROR_INTERNAL, "the host's arguments are too short");
        return TRIBUTARY_STATUS_ERROR;
    }
    counter *c = calloc(1, sizeof(counter));
    if (c == NULL) {
        set_error(error, TRIBUTARY_ERROR_INTERNAL, "out of memory");
        return TRIBUTARY_STATUS_ERROR;
    }
    read_options(args, c);
    for (size_t i = 0; i < args->checkpoints_len; i++) {
        const tributary_checkpoint_ref *cp = &args->checkpoints[i];
        if (cp->partition.len != strlen(PARTITION) ||
            memcmp(cp->partition.ptr, PARTITION, cp->partition.len) != 0) {
            continue;
        }
        char text[32];
        char *end = NULL;
        if (cp->checkpoint.len == 0 || cp->checkpoint.len >= sizeof(text)) {
            free(c);
            set_error(error, TRIBUTARY_ERROR_INVALID_DATA,
                      "the checkpoint of partition `seq` is not a row number");
            return TRIBUTARY_STATUS_ERROR;
        }
        memcpy(text, cp->checkpoint.ptr, cp->checkpoint.len);
        text[cp->checkpoint.len] = '\0';
        long long next = strtoll(text, &end, 10);
        if (*end != '\0' || next < 0) {
            free(c);
            set_error(error, TRIBUTARY_ERROR_INVALID_DATA,
                      "the checkpoint of partition `seq` is not a row number");
            return TRIBUTARY_STATUS_ERROR;
        }
        c->next = next;
    }
    if (args->log != NULL) {
        char line[128];
        int n = snprintf(line, sizeof(line), "Counting from %lld to %lld.", (long long)c->next,
                         (long long)c->count);
        tributary_str_ref message = {(const uint8_t *)line, (size_t)n};
        args->log(args->log_context, TRIBUTARY_LOG_INFO, message);
    }
    *instance = c;
    return TRIBUTARY_STATUS_OK;
}

/* ---- Arrow C Data Interface export ------------------------------------ */

/* Each exported array owns its buffers through `private_data`. */
typedef struct owned_array {
    const void *buffers[3];
    int64_t n_buffers;
} owned_array;

static void release_child(struct ArrowArray *array) {
    owned_array *owned = array->private_data;
    for (int64_t i = 0; i < owned->n_buffers; i++) {
        free((void *)owned->buffers[i]);
    }
    free(owned);
    array->release = NULL;
}

static void release_parent(struct ArrowArray *array) {
    for (int64_t i = 0; i < array->n_children; i++) {
        struct ArrowArray *child = array->children[i];
        if (child->release != NULL) {
            child->release(child);
        }
        free(child);
    }
    free(array->children);
    free((void *)array->buffers);
    array->release = NULL;
}

static void release_schema(struct ArrowSchema *schema) {
    for (int64_t i = 0; i < schema->n_children; i++) {
        free(schema->children[i]);
    }
    free(schema->children);
    schema->release = NULL;
}

#define N_COLUMNS 6

static const char *const NAMES[N_COLUMNS] = {"seq", "ratio", "label", "even", "at", "third"};
static const char *const FORMATS[N_COLUMNS] = {"l", "g", "u", "b", "tsm:UTC", "l"};

static int export_schema(struct ArrowSchema *out) {
    struct ArrowSchema **children = calloc(N_COLUMNS, sizeof(*children));
    if (children == NULL) {
        return -1;
    }
    for (int i = 0; i < N_COLUMNS; i++) {
        children[i] = calloc(1, sizeof(struct ArrowSchema));
        if (children[i] == NULL) {
            for (int j = 0; j < i; j++) {
                free(children[j]);
            }
            free(children);
            return -1;
        }
        *children[i] = (struct ArrowSchema){
            .format = FORMATS[i],
            .name = NAMES[i],
            .flags = i == N_COLUMNS - 1 ? ARROW_FLAG_NULLABLE : 0,
            .release = release_schema, /* no children: frees nothing */
        };
    }
    *out = (struct ArrowSchema){
        .format = "+s",
        .name = "",
        .n_children = N_COLUMNS,
        .children = children,
        .release = release_schema,
    };
    return 0;
}

static struct ArrowArray *child(int64_t length, int64_t null_count, int64_t n_buffers,
                                const void *b0, const void *b1, const void *b2) {
    struct ArrowArray *array = calloc(1, sizeof(*array));
    owned_array *owned = calloc(1, sizeof(*owned));
    if (array == NULL || owned == NULL) {
        free(array);
        free(owned);
        return NULL;
    }
    owned->buffers[0] = b0;
    owned->buffers[1] = b1;
    owned->buffers[2] = b2;
    owned->n_buffers = n_buffers;
    *array = (struct ArrowArray){
        .length = length,
        .null_count = null_count,
        .n_buffers = n_buffers,
        .buffers = owned->buffers,
        .release = release_child,
        .private_data = owned,
    };
    return array;
}

static int export_rows(const counter *c, int64_t first, int64_t rows, struct ArrowArray *out) {
    size_t bitmap = (size_t)(rows + 7) / 8;
    int64_t *seq = malloc((size_t)rows * sizeof(int64_t));
    double *ratio = malloc((size_t)rows * sizeof(double));
    int32_t *offsets = malloc((size_t)(rows + 1) * sizeof(int32_t));
    char *text = malloc((size_t)rows * (sizeof(c->label) + 24));
    uint8_t *even = calloc(1, bitmap ? bitmap : 1);
    int64_t *at = malloc((size_t)rows * sizeof(int64_t));
    int64_t *third = malloc((size_t)rows * sizeof(int64_t));
    uint8_t *third_valid = calloc(1, bitmap ? bitmap : 1);
    struct ArrowArray **children = calloc(N_COLUMNS, sizeof(*children));
    const void **parent_buffers = calloc(1, sizeof(void *));
    if (!seq || !ratio || !offsets || !text || !even || !at || !third || !third_valid ||
        !children || !parent_buffers) {
        free(seq), free(ratio), free(offsets), free(text), free(even), free(at);
        free(third), free(third_valid), free(children), free((void *)parent_buffers);
        return -1;
    }
    int64_t nulls = 0;
    int32_t used = 0;
    offsets[0] = 0;
    for (int64_t i = 0; i < rows; i++) {
        int64_t n = first + i;
        seq[i] = n;
        ratio[i] = c->count > 0 ? (double)n / (double)c->count : 0.0;
        used += snprintf(text + used, sizeof(c->label) + 24, "%s-%lld", c->label, (long long)n);
        offsets[i + 1] = used;
        if (n % 2 == 0) {
            even[i / 8] |= (uint8_t)(1u << (i % 8));
        }
        at[i] = EPOCH_MS + n * 1000;
        third[i] = n / 3;
        if (n % 3 == 0) {
            third_valid[i / 8] |= (uint8_t)(1u << (i % 8));
        } else {
            nulls++;
        }
    }
    children[0] = child(rows, 0, 2, NULL, seq, NULL);
    children[1] = child(rows, 0, 2, NULL, ratio, NULL);
    children[2] = child(rows, 0, 3, NULL, offsets, text);
    children[3] = child(rows, 0, 2, NULL, even, NULL);
    children[4] = child(rows, 0, 2, NULL, at, NULL);
    children[5] = child(rows, nulls, 2, third_valid, third, NULL);
    *out = (struct ArrowArray){
        .length = rows,
        .null_count = 0,
        .n_buffers = 1,
        .buffers = parent_buffers, /* no validity bitmap: no null rows */
        .n_children = N_COLUMNS,
        .children = children,
        .release = release_parent,
    };
    for (int i = 0; i < N_COLUMNS; i++) {
        if (children[i] == NULL) {
            release_parent(out); /* frees what was built; leaked buffers are not */
            return -1;
        }
    }
    return 0;
}

/* ---- calls ------------------------------------------------------------ */

static int32_t fail(counter *c, uint32_t category, const char *message) {
    c->error_category = category;
    snprintf(c->error, sizeof(c->error), "%s", message);
    return TRIBUTARY_STATUS_ERROR;
}

static int32_t counter_poll(void *instance, uint32_t timeout_ms, tributary_polled_batch *out) {
    (void)timeout_ms; /* never waits: rows are ready at once */
    counter *c = instance;
    if (c->next >= c->count) {
        return TRIBUTARY_STATUS_FINISHED;
    }
    if (c->fail_at >= 0 && c->next >= c->fail_at) {
        char message[128];
        snprintf(message, sizeof(message), "row %lld is invalid, as configured by `fail_at`",
                 (long long)c->next);
        return fail(c, TRIBUTARY_ERROR_INVALID_DATA, message);
    }
    int64_t rows = c->count - c->next;
    if (rows > c->batch_rows) {
        rows = c->batch_rows;
    }
    if (c->fail_at >= 0 && c->next + rows > c->fail_at) {
        rows = c->fail_at - c->next; /* the rows before it still go out */
    }
    if (export_schema(&out->schema) != 0) {
        return fail(c, TRIBUTARY_ERROR_INTERNAL, "out of memory");
    }
    if (export_rows(c, c->next, rows, &out->array) != 0) {
        out->schema.release(&out->schema);
        return fail(c, TRIBUTARY_ERROR_INTERNAL, "out of memory");
    }
    c->next += rows;
    char checkpoint[24];
    int n = snprintf(checkpoint, sizeof(checkpoint), "%lld", (long long)c->next);
    out->partition = owned_copy(PARTITION, strlen(PARTITION));
    out->checkpoint = owned_copy(checkpoint, (size_t)n);
    out->lag = c->count - c->next;
    return TRIBUTARY_STATUS_OK;
}

static int32_t counter_committed(void *instance, tributary_bytes_ref partition,
                                 tributary_bytes_ref checkpoint) {
    (void)instance, (void)partition, (void)checkpoint; /* nothing to clean up */
    return TRIBUTARY_STATUS_OK;
}

static void counter_last_error(void *instance, tributary_error_info *out) {
    counter *c = instance;
    set_error(out, c->error_category, c->error);
}

static void counter_destroy(void *instance) { free(instance); }

static const tributary_plugin_descriptor DESCRIPTOR = {
    .abi_major = TRIBUTARY_ABI_MAJOR,
    .abi_minor = TRIBUTARY_ABI_MINOR,
    .struct_size = sizeof(tributary_plugin_descriptor),
    .name = "counter",
    .version = "1.0.0",
    .source_types = SOURCE_TYPES,
    .source_types_len = sizeof(SOURCE_TYPES) / sizeof(SOURCE_TYPES[0]),
    .validate = counter_validate,
    .create = counter_create,
    .poll = counter_poll,
    .committed = counter_committed,
    .last_error = counter_last_error,
    .destroy = counter_destroy,
};

const tributary_plugin_descriptor *tributary_plugin_v1(void) { return &DESCRIPTOR; }
