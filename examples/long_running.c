/*
 * long_running.c: a soak of the C API the way a long-running host uses it.
 *
 * For a given time it repeats, on one VM that lives for the whole run and on short-lived
 * VMs created and destroyed per "request":
 *   - executions that build objects, arrays and strings (results released);
 *   - a C callback that re-enters the VM (stoffel_execute from inside the callback);
 *   - foreign objects with finalizers, released and collected;
 *   - builtins and C functions executed by name (the Python bindings' pattern).
 * Every report interval it prints one line: elapsed seconds, iterations, VMs created, RSS,
 * the long-lived VM's live handles, heap bytes and collections, and finalizers run.
 *
 * At the end it destroys everything and checks: live handles back to 0, every finalizer run
 * exactly once, and RSS at the end within 2x (+ 8 MiB of slack for allocator noise) of RSS
 * after the warm-up. Exit status 0 when all hold, 1 otherwise.
 *
 * Build and run (from the repository root, after `cargo build --release`):
 *   cc -O2 -I include examples/long_running.c -L target/release -lstoffel_vm \
 *      -Wl,-rpath,"$PWD/target/release" -o long_running
 *   ./long_running 20        # seconds to run (default 20); optional 2nd argument:
 *                            # seconds between reports (default 2)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stoffel_vm.h"

static const char *const PROGRAM =
    /* record(i) = { id: i, tags: [i, "tag"], name: "record" } */
    ".function record(i) registers 6\n"
    "    MOV r1, r0\n"
    "    CALL create_object\n"
    "    MOV r2, r0\n"
    "    LDI r3, \"id\"\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    PUSHARG r1\n"
    "    CALL set_field\n"
    "    CALL create_array\n"
    "    MOV r4, r0\n"
    "    PUSHARG r4\n"
    "    PUSHARG r1\n"
    "    CALL array_push\n"
    "    LDI r5, \"tag\"\n"
    "    PUSHARG r4\n"
    "    PUSHARG r5\n"
    "    CALL array_push\n"
    "    LDI r3, \"tags\"\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    PUSHARG r4\n"
    "    CALL set_field\n"
    "    LDI r3, \"name\"\n"
    "    LDI r5, \"record\"\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    PUSHARG r5\n"
    "    CALL set_field\n"
    "    RET r2\n"
    /* churn(n): n short-lived objects and strings, garbage at once; returns n */
    ".function churn(n) registers 6\n"
    "    MOV r1, r0\n"
    "    LDI r2, 0\n"
    "    LDI r3, 1\n"
    "    LDI r5, \"s\"\n"
    "top:\n"
    "    CMP r2, r1\n"
    "    JMPEQ done\n"
    "    CALL create_object\n"
    "    ADD r5, r5, r5\n"
    "    LDI r5, \"s\"\n"
    "    ADD r2, r2, r3\n"
    "    JMP top\n"
    "done:\n"
    "    RET r1\n"
    /* nest(n): calls the C function `down` with n, which re-enters nest(n - 1) */
    ".function nest(n) registers 2\n"
    "    MOV r1, r0\n"
    "    PUSHARG r1\n"
    "    CALL down\n"
    "    RET r0\n"
    /* hold(f): an object holding foreign value f */
    ".function hold(f) registers 4\n"
    "    MOV r1, r0\n"
    "    CALL create_object\n"
    "    MOV r2, r0\n"
    "    LDI r3, \"foreign\"\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    PUSHARG r1\n"
    "    CALL set_field\n"
    "    RET r2\n";

static long finalized = 0;
static long registered = 0;

static void finalize(void *object)
{
    (void)object;
    finalized++;
}

static void fail(VMHandle vm, const char *what, int rc)
{
    const char *m = stoffel_last_error(vm);
    fprintf(stderr, "long_running: %s failed with %d: %s\n", what, rc, m ? m : "(no message)");
    exit(1);
}

#define MUST(vm, call)                                                                      \
    do {                                                                                    \
        int rc_ = (call);                                                                   \
        if (rc_ != STOFFEL_OK)                                                              \
            fail((vm), #call, rc_);                                                         \
    } while (0)

/* down(n): returns n at 0, else executes nest(n - 1) on the same VM (re-entry). */
static int down(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                StoffelValue *result)
{
    (void)user_data;
    if (arg_count != 1 || args[0].value_type != STOFFEL_VALUE_INT)
        return 1;
    int64_t n = args[0].data.int_val;
    if (n <= 0) {
        result->value_type = STOFFEL_VALUE_INT;
        result->data.int_val = 0;
        return 0;
    }
    StoffelValue arg = {.value_type = STOFFEL_VALUE_INT, .data.int_val = n - 1};
    StoffelValue inner;
    if (stoffel_execute_with_args(vm, "nest", &arg, 1, &inner) != STOFFEL_OK)
        return 2;
    result->value_type = STOFFEL_VALUE_INT;
    result->data.int_val = inner.data.int_val + 1;
    return 0;
}

/* greet(): a C function executed by name, returning a string. */
static int greet(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    (void)args;
    (void)arg_count;
    result->value_type = STOFFEL_VALUE_STRING;
    result->data.string_val = "hello from C";
    return 0;
}

static VMHandle new_vm(void)
{
    VMHandle vm = stoffel_create_vm();
    if (vm == NULL) {
        fprintf(stderr, "long_running: stoffel_create_vm failed\n");
        exit(1);
    }
    MUST(vm, stoffel_load_assembly(vm, PROGRAM));
    MUST(vm, stoffel_register_foreign_function_ex(vm, "down", down, NULL));
    MUST(vm, stoffel_register_foreign_function(vm, "greet", greet));
    MUST(vm, stoffel_set_instruction_limit(vm, 100000000));
    MUST(vm, stoffel_set_memory_limit(vm, (size_t)256 << 20));
    return vm;
}

static void release(VMHandle vm, const StoffelValue *v)
{
    if (v->value_type == STOFFEL_VALUE_STRING)
        stoffel_free_string((char *)v->data.string_val);
    else if (v->value_type >= STOFFEL_VALUE_OBJECT)
        MUST(vm, stoffel_release_value(vm, v));
}

/* One request's worth of work on `vm`. */
static void work(VMHandle vm, long i)
{
    StoffelValue arg = {.value_type = STOFFEL_VALUE_INT, .data.int_val = i};
    StoffelValue r;

    MUST(vm, stoffel_execute_with_args(vm, "record", &arg, 1, &r));
    StoffelValue key = {.value_type = STOFFEL_VALUE_STRING, .data.string_val = "name"};
    StoffelValue name;
    MUST(vm, stoffel_get_field(vm, &r, &key, &name));
    if (name.value_type != STOFFEL_VALUE_STRING || strcmp(name.data.string_val, "record") != 0) {
        fprintf(stderr, "long_running: record(%ld).name is wrong\n", i);
        exit(1);
    }
    release(vm, &name);
    release(vm, &r);

    StoffelValue n = {.value_type = STOFFEL_VALUE_INT, .data.int_val = 50};
    MUST(vm, stoffel_execute_with_args(vm, "churn", &n, 1, &r));

    StoffelValue depth = {.value_type = STOFFEL_VALUE_INT, .data.int_val = 1 + i % 20};
    MUST(vm, stoffel_execute_with_args(vm, "nest", &depth, 1, &r));
    if (r.value_type != STOFFEL_VALUE_INT || r.data.int_val != depth.data.int_val) {
        fprintf(stderr, "long_running: nest(%lld) returned %lld\n",
                (long long)depth.data.int_val, (long long)r.data.int_val);
        exit(1);
    }

    /* The Python bindings' pattern: builtins and C functions executed by name. */
    MUST(vm, stoffel_execute(vm, "create_object", &r));
    release(vm, &r);
    MUST(vm, stoffel_execute(vm, "create_array", &r));
    release(vm, &r);
    MUST(vm, stoffel_execute(vm, "greet", &r));
    release(vm, &r);

    /* A foreign object, held by an object, both released: collected, finalized once. */
    StoffelValue foreign;
    MUST(vm, stoffel_register_foreign_object_ex(vm, (void *)(intptr_t)(i + 1), finalize,
                                                &foreign));
    registered++;
    MUST(vm, stoffel_execute_with_args(vm, "hold", &foreign, 1, &r));
    release(vm, &foreign);
    release(vm, &r);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 20.0;
    double interval = argc > 2 ? atof(argv[2]) : 2.0;
    if (seconds <= 0 || interval <= 0) {
        fprintf(stderr, "usage: long_running [seconds] [report interval seconds]\n");
        return 2;
    }
    /* The VM that lives for the whole run, and the per-request VMs. */
    VMHandle resident = new_vm();
    long iterations = 0, vms_created = 1;
    long warm_rss = -1, start_rss = rss_kib();
    double start = now(), next_report = start + interval, warm_until = start + seconds / 10;

    while (now() - start < seconds) {
        for (int k = 0; k < 20; k++) {
            work(resident, iterations);
            iterations++;
        }
        /* A request on a VM of its own, then destroyed. */
        VMHandle request = new_vm();
        vms_created++;
        work(request, iterations);
        stoffel_destroy_vm(request);

        double t = now();
        if (warm_rss < 0 && t >= warm_until)
            warm_rss = rss_kib();
        if (t >= next_report) {
            StoffelGcStats stats;
            MUST(resident, stoffel_gc_stats(resident, &stats));
            printf("t=%.0fs iterations=%ld vms=%ld rss_kib=%ld live_handles=%zu "
                   "heap_bytes=%zu collections=%llu finalized=%ld/%ld\n",
                   t - start, iterations, vms_created, rss_kib(), stats.live_handles,
                   stats.heap_bytes, (unsigned long long)stats.collections, finalized,
                   registered);
            fflush(stdout);
            next_report = t + interval;
        }
    }
    if (warm_rss < 0)
        warm_rss = rss_kib();

    StoffelGcStats stats;
    MUST(resident, stoffel_gc_collect(resident));
    MUST(resident, stoffel_gc_stats(resident, &stats));
    long end_rss = rss_kib();
    size_t live = stats.live_handles;
    stoffel_destroy_vm(resident);

    printf("end: seconds=%.0f iterations=%ld vms=%ld rss_start_kib=%ld rss_warm_kib=%ld "
           "rss_end_kib=%ld live_handles=%zu collections=%llu finalized=%ld/%ld\n",
           now() - start, iterations, vms_created, start_rss, warm_rss, end_rss, live,
           (unsigned long long)stats.collections, finalized, registered);

    int ok = 1;
    if (live != 0) {
        fprintf(stderr, "long_running: %zu handles still live at the end\n", live);
        ok = 0;
    }
    if (finalized != registered) {
        fprintf(stderr, "long_running: %ld finalizers ran for %ld foreign objects\n", finalized,
                registered);
        ok = 0;
    }
    if (end_rss > 2 * warm_rss + 8 * 1024) {
        fprintf(stderr, "long_running: RSS grew from %ld KiB to %ld KiB\n", warm_rss, end_rss);
        ok = 0;
    }
    if (stats.collections == 0) {
        fprintf(stderr, "long_running: the collector never ran\n");
        ok = 0;
    }
    return ok ? 0 : 1;
}
