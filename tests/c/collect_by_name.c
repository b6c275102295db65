/*
 * collect_by_name.c: the collector runs on the calls the Python bindings make, with no
 * stoffel_gc_collect from the host (tests/c_collect.rs runs it).
 *  - 1 000 000 x stoffel_execute(vm, "create_object", &r) + stoffel_release_value;
 *  - 1 000 000 x stoffel_execute(vm, "make_string", &r), a registered C function returning a
 *    string, + stoffel_free_string;
 *  - 1 000 000 x the heap API with no execution: stoffel_create_object, stoffel_set_field
 *    with string key and value, stoffel_release_value;
 *  - 1 000 000 x stoffel_register_foreign_object_ex + stoffel_release_value; every finalizer
 *    runs exactly once (the last ones at two closing stoffel_gc_collect calls).
 * For each: the peak heap bytes and Gc allocations after the first 10 000 calls stay within
 * 2x of their peak during them, collections keep happening, live ids come back to where they
 * were, and RSS (VmRSS) at the end is within 2x of, and less than 16 MiB above, RSS after
 * 10 000 calls. Prints `name: key=value` lines.
 */
#include "check.h"

#define CALLS 1000000L
#define WARMUP 10000L

static const char *const MADE = "a string made by C";

static int make_string(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    (void)args;
    (void)arg_count;
    *result = v_str(MADE);
    return 0;
}

static long finalized = 0;

static void count_finalized(void *object)
{
    (void)object;
    finalized++;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) {
        FAIL("cannot open /proc/self/status");
    }
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    if (kib < 0) {
        FAIL("no VmRSS in /proc/self/status");
    }
    return kib;
}

/* Peaks and collections of one workload, before and after the warm-up. */
typedef struct {
    size_t warm_heap, rest_heap, warm_gcs, rest_gcs;
    uint64_t warm_collections, end_collections;
    long warm_rss;
    size_t handles_before;
} Record;

static void sample(VMHandle vm, long call, Record *r)
{
    StoffelGcStats s;
    CHECK_OK(vm, stoffel_gc_stats(vm, &s));
    if (call <= WARMUP) {
        if (s.heap_bytes > r->warm_heap) r->warm_heap = s.heap_bytes;
        if (s.gc_objects > r->warm_gcs) r->warm_gcs = s.gc_objects;
        r->warm_collections = s.collections;
        if (call == WARMUP) r->warm_rss = rss_kib();
    } else {
        if (s.heap_bytes > r->rest_heap) r->rest_heap = s.heap_bytes;
        if (s.gc_objects > r->rest_gcs) r->rest_gcs = s.gc_objects;
        r->end_collections = s.collections;
    }
}

static void start(VMHandle vm, Record *r)
{
    StoffelGcStats s;
    memset(r, 0, sizeof *r);
    CHECK_OK(vm, stoffel_gc_stats(vm, &s));
    r->handles_before = s.live_handles;
}

static void finish(VMHandle vm, const char *name, const Record *r)
{
    StoffelGcStats s;
    CHECK_OK(vm, stoffel_gc_stats(vm, &s));
    long rss = rss_kib();
    printf("%s: peak_heap_bytes warm=%zu rest=%zu peak_gc_objects warm=%zu rest=%zu "
           "collections warm=%llu end=%llu rss_kib warm=%ld end=%ld live_handles=%zu\n",
           name, r->warm_heap, r->rest_heap, r->warm_gcs, r->rest_gcs,
           (unsigned long long)r->warm_collections, (unsigned long long)r->end_collections,
           r->warm_rss, rss, s.live_handles);
    CHECK(r->rest_heap <= 2 * r->warm_heap);
    CHECK(r->rest_gcs <= 2 * r->warm_gcs);
    CHECK(r->warm_collections > 0 && r->end_collections > r->warm_collections);
    CHECK(rss <= 2 * r->warm_rss && rss - r->warm_rss < 16 * 1024);
    CHECK(s.live_handles == r->handles_before);
}

int main(void)
{
    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "make_string", make_string));
    Record rec;

    /* A builtin by name, as the Python bindings call it. */
    start(vm, &rec);
    for (long i = 1; i <= CALLS; i++) {
        StoffelValue r;
        if (stoffel_execute(vm, "create_object", &r) != STOFFEL_OK ||
            r.value_type != STOFFEL_VALUE_OBJECT) {
            FAIL("create_object call %ld: %s", i, stoffel_last_error(vm));
        }
        if (stoffel_release_value(vm, &r) != STOFFEL_OK) {
            FAIL("release %ld: %s", i, stoffel_last_error(vm));
        }
        sample(vm, i, &rec);
    }
    finish(vm, "execute_create_object", &rec);

    /* A registered C function returning a string, by name. */
    start(vm, &rec);
    for (long i = 1; i <= CALLS; i++) {
        StoffelValue r;
        if (stoffel_execute(vm, "make_string", &r) != STOFFEL_OK ||
            r.value_type != STOFFEL_VALUE_STRING || strcmp(r.data.string_val, MADE) != 0) {
            FAIL("make_string call %ld: %s", i, stoffel_last_error(vm));
        }
        stoffel_free_string((char *)r.data.string_val);
        sample(vm, i, &rec);
    }
    finish(vm, "execute_c_function_returning_string", &rec);

    /* The heap API, no execution. */
    StoffelValue key = v_str("name");
    StoffelValue value = v_str("a value string");
    start(vm, &rec);
    for (long i = 1; i <= CALLS; i++) {
        StoffelValue obj;
        if (stoffel_create_object(vm, &obj) != STOFFEL_OK ||
            stoffel_set_field(vm, &obj, &key, &value) != STOFFEL_OK ||
            stoffel_release_value(vm, &obj) != STOFFEL_OK) {
            FAIL("heap API call %ld: %s", i, stoffel_last_error(vm));
        }
        sample(vm, i, &rec);
    }
    finish(vm, "heap_api", &rec);

    /* Foreign objects with finalizers, no execution. */
    static char payload;
    start(vm, &rec);
    for (long i = 1; i <= CALLS; i++) {
        StoffelValue f;
        if (stoffel_register_foreign_object_ex(vm, &payload, count_finalized, &f) !=
                STOFFEL_OK ||
            stoffel_release_value(vm, &f) != STOFFEL_OK) {
            FAIL("foreign object %ld: %s", i, stoffel_last_error(vm));
        }
        sample(vm, i, &rec);
    }
    finish(vm, "foreign_objects", &rec);
    long by_collector = finalized;
    CHECK_OK(vm, stoffel_gc_collect(vm));
    CHECK_OK(vm, stoffel_gc_collect(vm));
    printf("foreign_objects: finalized by_collector=%ld after_collect=%ld\n", by_collector,
           finalized);
    CHECK(by_collector > CALLS - 10000);
    CHECK(finalized == CALLS);

    stoffel_destroy_vm(vm);
    printf("collect_by_name: all %ld checks passed\n", checks_passed);
    return 0;
}
