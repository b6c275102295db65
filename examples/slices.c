/*
 * slices.c: a game-loop host runs a long script 1000 instructions per frame.
 *
 * The script (`simulate`) builds objects and sums their fields; it would stall a frame if
 * run to its end at once. The host starts it with stoffel_execute_start and continues it with
 * stoffel_resume once per frame; between frames it makes other calls on the same VM (a
 * short execution, heap calls, a collection), which run as executions of their own and leave
 * the suspended script alone. The script's C callback (`on_step`) runs inside slices. At the
 * end the host checks the answer against an uninterrupted run, and shows the calls that do
 * not fit the state (STOFFEL_ERROR_STATE) and stoffel_cancel. The VM is destroyed with an
 * execution still suspended, which is fine.
 *
 * Build (from the crate root, after `cargo build --release`):
 *   cc -std=c99 -Wall -Wextra -Werror -Iinclude examples/slices.c -Ltarget/release \
 *      -lstoffel_vm -Wl,-rpath,target/release -o slices && ./slices
 */
#include <stdio.h>
#include <string.h>

#include "stoffel_vm.h"

static const char *program =
    ".function simulate(n)\n"
    "    MOV r1, r0\n"           /* r1 = n */
    "    LDI r2, 0\n"            /* r2 = i */
    "    LDI r3, 1\n"
    "    LDI r4, 0\n"            /* r4 = sum */
    "    LDI r5, \"hp\"\n"
    "top:\n"
    "    CMP r2, r1\n"
    "    JMPEQ done\n"
    "    CALL create_object\n"
    "    MOV r6, r0\n"
    "    PUSHARG r6\n"
    "    PUSHARG r5\n"
    "    PUSHARG r2\n"
    "    CALL set_field\n"
    "    PUSHARG r2\n"
    "    CALL on_step\n"         /* a C callback, inside the slice */
    "    PUSHARG r6\n"
    "    PUSHARG r5\n"
    "    CALL get_field\n"
    "    ADD r4, r4, r0\n"
    "    ADD r2, r2, r3\n"
    "    JMP top\n"
    "done:\n"
    "    RET r4\n"
    ".function score(a, b)\n"
    "    MUL r2, r0, r1\n"
    "    RET r2\n";

static long long steps = 0;

/* Counts the script's steps; returns its argument. */
static int on_step(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    if (arg_count != 1 || args[0].value_type != STOFFEL_VALUE_INT)
        return -1;
    steps++;
    *result = args[0];
    return 0;
}

static int fail(VMHandle vm, const char *what, int rc)
{
    fprintf(stderr, "slices: %s failed: %s (%d): %s\n", what, stoffel_error_name(rc), rc,
            stoffel_last_error(vm));
    stoffel_destroy_vm(vm);
    return 1;
}

static StoffelValue int_value(long long v)
{
    StoffelValue value;
    memset(&value, 0, sizeof value);
    value.value_type = STOFFEL_VALUE_INT;
    value.data.int_val = v;
    return value;
}

int main(void)
{
    VMHandle vm = stoffel_create_vm();
    if (vm == NULL)
        return 1;
    int rc = stoffel_load_assembly(vm, program);
    if (rc != STOFFEL_OK)
        return fail(vm, "load", rc);
    rc = stoffel_register_foreign_function(vm, "on_step", on_step);
    if (rc != STOFFEL_OK)
        return fail(vm, "register", rc);

    const long long n = 5000;
    StoffelValue arg = int_value(n);
    StoffelValue result;

    /* The answer of an uninterrupted run, to compare with. */
    rc = stoffel_execute_with_args(vm, "simulate", &arg, 1, &result);
    if (rc != STOFFEL_OK)
        return fail(vm, "simulate", rc);
    long long expected = result.data.int_val;
    steps = 0;

    /* The game loop: one slice of 1000 instructions per frame. */
    int frames = 1;
    rc = stoffel_execute_start(vm, "simulate", &arg, 1, 1000, &result);
    while (rc == STOFFEL_SUSPENDED) {
        if (result.value_type != STOFFEL_VALUE_UNIT)
            return fail(vm, "suspended result is UNIT", rc);
        /* Other work of the frame, on the same VM. */
        StoffelValue pair[2] = { int_value(frames), int_value(3) };
        StoffelValue score;
        int other = stoffel_execute_with_args(vm, "score", pair, 2, &score);
        if (other != STOFFEL_OK || score.data.int_val != 3LL * frames)
            return fail(vm, "score between frames", other);
        StoffelValue obj;
        other = stoffel_create_object(vm, &obj);
        if (other != STOFFEL_OK)
            return fail(vm, "create_object", other);
        stoffel_release_value(vm, &obj);
        if (frames % 10 == 0 && (other = stoffel_gc_collect(vm)) != STOFFEL_OK)
            return fail(vm, "gc", other);
        /* One suspended execution per VM. */
        if (frames == 1) {
            other = stoffel_execute_start(vm, "score", pair, 2, 10, &score);
            printf("slices: a second start: %s: %s\n", stoffel_error_name(other),
                   stoffel_last_error(vm));
        }
        frames++;
        rc = stoffel_resume(vm, 1000, &result);
    }
    if (rc != STOFFEL_OK)
        return fail(vm, "resume", rc);
    printf("slices: frames=%d callbacks=%lld result=%lld uninterrupted=%lld\n", frames,
           steps, (long long)result.data.int_val, expected);
    if (result.data.int_val != expected || steps != n || frames < 50)
        return fail(vm, "the sliced result", rc);

    /* Nothing suspended now. */
    rc = stoffel_resume(vm, 1000, &result);
    printf("slices: resume with nothing suspended: %s: %s\n", stoffel_error_name(rc),
           stoffel_last_error(vm));
    if (rc != STOFFEL_ERROR_STATE)
        return 1;

    /* Fuel 0 starts without running; cancel drops it. */
    rc = stoffel_execute_start(vm, "simulate", &arg, 1, 0, &result);
    if (rc != STOFFEL_SUSPENDED)
        return fail(vm, "start with fuel 0", rc);
    rc = stoffel_cancel(vm);
    if (rc != STOFFEL_OK)
        return fail(vm, "cancel", rc);
    rc = stoffel_cancel(vm);
    printf("slices: cancel twice: %s\n", stoffel_error_name(rc));
    if (rc != STOFFEL_ERROR_STATE)
        return 1;

    /* Destroyed with an execution suspended: its values go with the VM. */
    rc = stoffel_execute_start(vm, "simulate", &arg, 1, 5000, &result);
    if (rc != STOFFEL_SUSPENDED)
        return fail(vm, "start before destroy", rc);
    stoffel_destroy_vm(vm);
    printf("slices: destroyed with an execution suspended\n");
    return 0;
}
