/*
 * backtrace.c: where did the script fail? A runtime error's message (stoffel_last_error)
 * ends with the call chain, innermost first: each bytecode frame with its function name and
 * the index of the instruction it was at (the numbers `stoffel-run --disasm` prints), and a
 * "host function" line where a C callback sits between frames.
 *
 * Here: main -> checkout -> the C callback "apply_discount" -> price_after (a division by
 * zero). The callback re-enters the VM, sees the failure and reports it; the outer execution
 * then fails too, and its message carries the whole chain.
 *
 * Build (from the crate root, after `cargo build --release`):
 *   cc -std=c99 -Iinclude examples/backtrace.c -Ltarget/release -lstoffel_vm \
 *      -Wl,-rpath,target/release -o backtrace && ./backtrace
 */
#include <stdio.h>

#include "stoffel_vm.h"

static const char *program =
    ".function main registers 2\n"
    "    LDI r1, 100\n"
    "    PUSHARG r1\n"
    "    CALL checkout\n"
    "    RET r0\n"
    ".function checkout(total) registers 2\n"
    "    PUSHARG r0\n"
    "    CALL apply_discount\n"
    "    RET r0\n"
    ".function price_after(total, percent) registers 4\n"
    "    LDI r2, 100\n"
    "    SUB r3, r2, r1\n"
    "    DIV r3, r2, r3\n"
    "    MUL r0, r0, r3\n"
    "    RET r0\n";

/* A C callback between two bytecode frames: re-enters the VM with a discount of 100 %. */
static int apply_discount(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                          StoffelValue *result)
{
    (void)user_data;
    if (arg_count != 1) {
        return 1;
    }
    StoffelValue call_args[2] = { args[0], { .value_type = STOFFEL_VALUE_INT } };
    call_args[1].data.int_val = 100;
    int rc = stoffel_execute_with_args(vm, "price_after", call_args, 2, result);
    if (rc != STOFFEL_OK) {
        printf("apply_discount: price_after failed with %d\n", rc);
        return 1;
    }
    return 0;
}

int main(void)
{
    VMHandle vm = stoffel_create_vm();
    if (vm == NULL) {
        fprintf(stderr, "stoffel_create_vm failed: %s\n", stoffel_last_error(NULL));
        return 1;
    }
    int rc = stoffel_load_assembly(vm, program);
    if (rc == STOFFEL_OK) {
        rc = stoffel_register_foreign_function_ex(vm, "apply_discount", apply_discount, NULL);
    }
    if (rc != STOFFEL_OK) {
        fprintf(stderr, "setup failed: %s\n", stoffel_last_error(vm));
        stoffel_destroy_vm(vm);
        return 1;
    }
    StoffelValue result;
    rc = stoffel_execute(vm, "main", &result);
    if (rc == STOFFEL_OK) {
        printf("main() unexpectedly returned\n");
        stoffel_destroy_vm(vm);
        return 1;
    }
    printf("main() failed with %d:\n%s\n", rc, stoffel_last_error(vm));
    stoffel_destroy_vm(vm);
    return 0;
}
