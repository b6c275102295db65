/*
 * soak.c: memory stays bounded over a long run, and what calls cost.
 *  - 1 000 000 x (stoffel_execute_with_args of a function returning a fresh object, then
 *    stoffel_release_value): RSS (VmRSS of /proc/self/status) after 10 000 iterations and
 *    at the end must differ by less than 16 MiB, and the live handles must be back to the
 *    baseline;
 *  - ns per stoffel_execute_with_args of a tiny function (ADD);
 *  - ns per VM -> C callback (a loop in VM code calling a C function), next to the same
 *    loop calling a bytecode function.
 * Prints the figures as `key=value` for tests/c_api.rs.
 */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "check.h"

#define SOAK_ITERATIONS 1000000L
#define WARMUP_ITERATIONS 10000L
#define COST_ITERATIONS 1000000L
#define CALLBACK_ITERATIONS 2000000L

static const char *const PROGRAM =
    ".function add(a, b)\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    /* fresh(i) = { i: i, name: "fresh", list: [i] } */
    ".function fresh(i) registers 6\n"
    "    MOV r1, r0\n"
    "    CALL create_object\n"
    "    MOV r2, r0\n"
    "    LDI r3, \"i\"\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    PUSHARG r1\n"
    "    CALL set_field\n"
    "    LDI r3, \"name\"\n"
    "    LDI r4, \"fresh\"\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    PUSHARG r4\n"
    "    CALL set_field\n"
    "    CALL create_array\n"
    "    MOV r5, r0\n"
    "    PUSHARG r5\n"
    "    PUSHARG r1\n"
    "    CALL array_push\n"
    "    LDI r3, \"list\"\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    PUSHARG r5\n"
    "    CALL set_field\n"
    "    RET r2\n"
    /* call_c(n): calls the C function cb(i) n times */
    ".function call_c(n) registers 4\n"
    "    MOV r1, r0\n"
    "    LDI r2, 0\n"
    "    LDI r3, 1\n"
    "top:\n"
    "    CMP r1, r2\n"
    "    JMPEQ done\n"
    "    PUSHARG r1\n"
    "    CALL cb\n"
    "    SUB r1, r1, r3\n"
    "    JMP top\n"
    "done:\n"
    "    RET r1\n"
    /* call_vm(n): the same loop calling the bytecode function nop(i) */
    ".function call_vm(n) registers 4\n"
    "    MOV r1, r0\n"
    "    LDI r2, 0\n"
    "    LDI r3, 1\n"
    "top:\n"
    "    CMP r1, r2\n"
    "    JMPEQ done\n"
    "    PUSHARG r1\n"
    "    CALL nop\n"
    "    SUB r1, r1, r3\n"
    "    JMP top\n"
    "done:\n"
    "    RET r1\n"
    ".function nop(x)\n"
    "    RET r0\n";

static long cb_calls = 0;

static int cb(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    (void)args;
    (void)arg_count;
    cb_calls++;
    *result = args[0];
    return 0;
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

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static size_t live_handles(VMHandle vm)
{
    StoffelGcStats stats;
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    return stats.live_handles;
}

int main(void)
{
    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "cb", cb));
    size_t baseline_handles = live_handles(vm);

    /* ---- Soak. ---- */
    long rss_start = rss_kib();
    long rss_warm = 0;
    StoffelValue key = v_str("i");
    double t0 = now_ns();
    for (long i = 0; i < SOAK_ITERATIONS; i++) {
        StoffelValue arg = v_int(i);
        StoffelValue obj;
        int rc = stoffel_execute_with_args(vm, "fresh", &arg, 1, &obj);
        if (rc != STOFFEL_OK || obj.value_type != STOFFEL_VALUE_OBJECT) {
            FAIL("fresh(%ld) returned %d: %s", i, rc, stoffel_last_error(vm));
        }
        if (i % 99991 == 0) { /* now and then, look inside */
            StoffelValue got;
            CHECK_OK(vm, stoffel_get_field(vm, &obj, &key, &got));
            CHECK(got.value_type == STOFFEL_VALUE_INT && got.data.int_val == i);
        }
        rc = stoffel_release_value(vm, &obj);
        if (rc != STOFFEL_OK) {
            FAIL("release %ld returned %d: %s", i, rc, stoffel_last_error(vm));
        }
        if (i + 1 == WARMUP_ITERATIONS) {
            rss_warm = rss_kib();
        }
    }
    double soak_ns = (now_ns() - t0) / (double)SOAK_ITERATIONS;
    long rss_end = rss_kib();
    size_t end_handles = live_handles(vm);
    StoffelGcStats stats;
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    printf("soak: rss start_kib=%ld after_10k_kib=%ld after_1m_kib=%ld growth_kib=%ld\n",
           rss_start, rss_warm, rss_end, rss_end - rss_warm);
    printf("soak: live_handles baseline=%zu end=%zu\n", baseline_handles, end_handles);
    printf("soak: heap heap_bytes=%zu gc_objects=%zu collections=%llu\n", stats.heap_bytes,
           stats.gc_objects, (unsigned long long)stats.collections);
    printf("soak: ns_per_object_call ns=%.1f (execute fresh() + release, %ld iterations)\n",
           soak_ns, SOAK_ITERATIONS);
    CHECK(rss_end - rss_warm < 16 * 1024);
    CHECK(end_handles == baseline_handles);

    /* ---- Cost of one execution of a tiny function. ---- */
    StoffelValue args[2] = {v_int(1), v_int(2)};
    StoffelValue r;
    for (long i = 0; i < 10000; i++) { /* warm up */
        CHECK_OK(vm, stoffel_execute_with_args(vm, "add", args, 2, &r));
    }
    t0 = now_ns();
    for (long i = 0; i < COST_ITERATIONS; i++) {
        args[0].data.int_val = i;
        if (stoffel_execute_with_args(vm, "add", args, 2, &r) != STOFFEL_OK ||
            r.data.int_val != i + 2) {
            FAIL("add(%ld, 2) failed", i);
        }
    }
    double add_ns = (now_ns() - t0) / (double)COST_ITERATIONS;
    printf("cost: ns_per_execute_add ns=%.1f (stoffel_execute_with_args of add(a, b))\n", add_ns);

    /* ---- Cost of a VM -> C callback, next to a VM -> VM call in the same loop. ---- */
    StoffelValue n = v_int(CALLBACK_ITERATIONS);
    t0 = now_ns();
    CHECK_OK(vm, stoffel_execute_with_args(vm, "call_c", &n, 1, &r));
    double cb_ns = (now_ns() - t0) / (double)CALLBACK_ITERATIONS;
    CHECK(cb_calls == CALLBACK_ITERATIONS);
    t0 = now_ns();
    CHECK_OK(vm, stoffel_execute_with_args(vm, "call_vm", &n, 1, &r));
    double vm_ns = (now_ns() - t0) / (double)CALLBACK_ITERATIONS;
    printf("cost: ns_per_callback ns=%.1f (loop iteration calling a C function; the same loop "
           "calling a bytecode function: ns_vm=%.1f)\n",
           cb_ns, vm_ns);

    CHECK(live_handles(vm) == baseline_handles);
    stoffel_destroy_vm(vm);
    printf("soak: all checks=%ld passed\n", checks_passed);
    return 0;
}
