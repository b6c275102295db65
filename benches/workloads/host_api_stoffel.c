/*
 * host_api_stoffel.c: the host-boundary workloads for stoffel-vm, through the C API
 * (include/stoffel_vm.h). Same work as host_api_lua.c.
 *
 *   host_api_stoffel calls N      N calls from C of the VM function f(a, b) = (a + b) % 1000003
 *                                 with stoffel_execute_with_args: s = f(s, i), i = 0 .. N-1
 *   host_api_stoffel callbacks N  one execution of VM code that makes N calls of the C
 *                                 function host_f(a, b) = (a + b) % 1000003 (registered with
 *                                 stoffel_register_foreign_function): s = host_f(s, i)
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

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "calls") != 0 && strcmp(argv[1], "callbacks") != 0)) {
        fprintf(stderr, "usage: %s calls|callbacks N\n", argv[0]);
        return 2;
    }
    const int64_t n = strtoll(argv[2], NULL, 10);
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
