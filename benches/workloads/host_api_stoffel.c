/*
 * host_api_stoffel.c: the host-boundary workloads for stoffel-vm, through the C API
 * (include/stoffel_vm.h). Same work as host_api_lua.c.
 *
 *   host_api_stoffel calls N      N calls from C of the VM function f(a, b) = (a + b) % 1000003
 *                                 with stoffel_execute_with_args: s = f(s, i), i = 0 .. N-1
 *   host_api_stoffel cached N     the same N calls through a handle looked up once
 *                                 (stoffel_lookup_function + stoffel_call_function)
 *   host_api_stoffel callbacks N  one execution of VM code that makes N calls of the C
 *                                 function host_f(a, b) = (a + b) % 1000003 (registered with
 *                                 stoffel_register_foreign_function): s = host_f(s, i)
 *   host_api_stoffel lifecycle N  N times: create a VM, load a small program (assembly),
 *                                 run it with i (g(i) = (7i + 3) % 1000003), destroy the VM:
 *                                 s = (s + g(i)) % 1000003
 *
 * Prints s on stdout and the process's peak RSS ("peak_rss_kb=N", from VmHWM) on stderr.
 * Built and run by benches/vs_lua.rs:
 *   gcc -O2 -std=c99 -I include host_api_stoffel.c -L DIR -lstoffel_vm -Wl,-rpath,DIR
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stoffel_vm.h"

static const char *PROGRAM =
    ".function f(a, b) registers 4\n"
    "    ADD r2, r0, r1\n"
    "    LDI r3, 1000003\n"
    "    MOD r2, r2, r3\n"
    "    RET r2\n"
    "\n"
    ".function callbacks(n) registers 6\n"
    "    MOV r1, r0          ; r1 = n\n"
    "    LDI r2, 0           ; r2 = i\n"
    "    LDI r3, 0           ; r3 = s\n"
    "    LDI r4, 1\n"
    "    CMP r2, r1\n"
    "    JMPLT body\n"
    "    RET r3\n"
    "body:\n"
    "    PUSHARG r3\n"
    "    PUSHARG r2\n"
    "    CALL host_f\n"
    "    MOV r3, r0\n"
    "    ADD r2, r2, r4\n"
    "    CMP r2, r1\n"
    "    JMPLT body\n"
    "    RET r3\n";

static const char *SMALL_PROGRAM =
    ".function g(i) registers 3\n"
    "    LDI r1, 7\n"
    "    MUL r1, r0, r1\n"
    "    LDI r2, 3\n"
    "    ADD r1, r1, r2\n"
    "    LDI r2, 1000003\n"
    "    MOD r1, r1, r2\n"
    "    RET r1\n";

static int host_f(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    if (arg_count != 2 || args[0].value_type != STOFFEL_VALUE_INT ||
        args[1].value_type != STOFFEL_VALUE_INT) {
        return 1;
    }
    result->value_type = STOFFEL_VALUE_INT;
    result->data.int_val = (args[0].data.int_val + args[1].data.int_val) % 1000003;
    return 0;
}

static void fail(VMHandle vm, const char *what, int code)
{
    const char *message = stoffel_last_error(vm);
    fprintf(stderr, "%s failed (%d): %s\n", what, code, message ? message : "(no message)");
    exit(1);
}

static void report_peak_rss(void)
{
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    if (status == NULL) {
        return;
    }
    while (fgets(line, sizeof line, status) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            fprintf(stderr, "peak_rss_kb=%ld\n", strtol(line + 6, NULL, 10));
        }
    }
    fclose(status);
}

static StoffelValue int_value(int64_t i)
{
    StoffelValue v;
    v.value_type = STOFFEL_VALUE_INT;
    v.data.int_val = i;
    return v;
}

/* N VM lifecycles: create, load, run, destroy. */
static int64_t lifecycles(int64_t n)
{
    int64_t s = 0;
    for (int64_t i = 0; i < n; i++) {
        VMHandle vm = stoffel_create_vm();
        if (vm == NULL) {
            fprintf(stderr, "stoffel_create_vm failed\n");
            exit(1);
        }
        int rc = stoffel_load_assembly(vm, SMALL_PROGRAM);
        if (rc != STOFFEL_OK) {
            fail(vm, "stoffel_load_assembly", rc);
        }
        StoffelValue arg = int_value(i), result;
        rc = stoffel_execute_with_args(vm, "g", &arg, 1, &result);
        if (rc != STOFFEL_OK || result.value_type != STOFFEL_VALUE_INT) {
            fail(vm, "stoffel_execute_with_args", rc);
        }
        s = (s + result.data.int_val) % 1000003;
        stoffel_destroy_vm(vm);
    }
    return s;
}

int main(int argc, char **argv)
{
    const char *modes[] = {"calls", "cached", "callbacks", "lifecycle"};
    int known = 0;
    for (size_t m = 0; argc == 3 && m < sizeof modes / sizeof modes[0]; m++) {
        known |= strcmp(argv[1], modes[m]) == 0;
    }
    if (!known) {
        fprintf(stderr, "usage: %s calls|cached|callbacks|lifecycle N\n", argv[0]);
        return 2;
    }
    const int64_t n = strtoll(argv[2], NULL, 10);
    if (strcmp(argv[1], "lifecycle") == 0) {
        printf("%lld\n", (long long)lifecycles(n));
        fflush(stdout);
        report_peak_rss();
        return 0;
    }
    VMHandle vm = stoffel_create_vm();
    if (vm == NULL) {
        fprintf(stderr, "stoffel_create_vm failed\n");
        return 1;
    }
    int rc = stoffel_load_assembly(vm, PROGRAM);
    if (rc != STOFFEL_OK) {
        fail(vm, "stoffel_load_assembly", rc);
    }
    int64_t s = 0;
    StoffelValue result;
    if (strcmp(argv[1], "calls") == 0) {
        for (int64_t i = 0; i < n; i++) {
            StoffelValue args[2] = {int_value(s), int_value(i)};
            rc = stoffel_execute_with_args(vm, "f", args, 2, &result);
            if (rc != STOFFEL_OK || result.value_type != STOFFEL_VALUE_INT) {
                fail(vm, "stoffel_execute_with_args", rc);
            }
            s = result.data.int_val;
        }
    } else if (strcmp(argv[1], "cached") == 0) {
        StoffelFunction f;
        rc = stoffel_lookup_function(vm, "f", &f);
        if (rc != STOFFEL_OK) {
            fail(vm, "stoffel_lookup_function", rc);
        }
        for (int64_t i = 0; i < n; i++) {
            StoffelValue args[2] = {int_value(s), int_value(i)};
            rc = stoffel_call_function(vm, f, args, 2, &result);
            if (rc != STOFFEL_OK || result.value_type != STOFFEL_VALUE_INT) {
                fail(vm, "stoffel_call_function", rc);
            }
            s = result.data.int_val;
        }
    } else {
        rc = stoffel_register_foreign_function(vm, "host_f", host_f);
        if (rc != STOFFEL_OK) {
            fail(vm, "stoffel_register_foreign_function", rc);
        }
        StoffelValue args[1] = {int_value(n)};
        rc = stoffel_execute_with_args(vm, "callbacks", args, 1, &result);
        if (rc != STOFFEL_OK || result.value_type != STOFFEL_VALUE_INT) {
            fail(vm, "stoffel_execute_with_args", rc);
        }
        s = result.data.int_val;
    }
    printf("%lld\n", (long long)s);
    fflush(stdout);
    stoffel_destroy_vm(vm);
    report_peak_rss();
    return 0;
}
