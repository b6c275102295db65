/*
 * reentry_stack.c: re-entry against the native stack, and failure messages through many
 * nested executions (issue 12).
 *
 *  stacks:   on threads with 128, 256 and 512 KiB stacks, a C callback executes code on the
 *            VM that called it, which calls the callback again, ... until stoffel_execute
 *            refuses with STOFFEL_ERROR_LIMIT (never a stack overflow); each level then
 *            returns normally, and the VM works afterwards. On 128 KiB the stack is what
 *            refuses ("not enough native stack"), not the 200-level count. Prints the levels
 *            and the stack each level took.
 *  messages: on a big stack, a callback that passes every failure on (returns the code of
 *            its failed stoffel_execute) at every one of 200 levels: the top-level error
 *            (stoffel_last_error) names the innermost error and the number of levels, in
 *            under 1 KiB.
 *
 * Usage: reentry_stack stacks|messages. Run by tests/c_api.rs.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>

#include "check.h"

static const char *const PROGRAM =
    /* main() calls the callback `down`, which executes main() again. */
    ".function main\n"
    "    CALL down\n"
    "    RET r0\n"
    ".function ok\n"
    "    LDI r0, 7\n"
    "    RET r0\n";

/* State of one descent (one thread at a time). */
static int depth_now;
static int levels;
static int refusal;
static char refusal_message[512];
static uintptr_t first_frame;
static uintptr_t last_frame;

static void reset(void)
{
    depth_now = 0;
    levels = 0;
    refusal = 0;
    refusal_message[0] = '\0';
    first_frame = 0;
    last_frame = 0;
}

/* Re-enters until refused, then returns normally all the way up. */
static int down_cb(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                   StoffelValue *result)
{
    (void)user_data;
    (void)args;
    (void)arg_count;
    volatile char here = 0;
    uintptr_t frame = (uintptr_t)&here;
    depth_now++;
    if (depth_now > levels) {
        levels = depth_now;
    }
    if (depth_now == 2) {
        first_frame = frame;
    }
    last_frame = frame;
    StoffelValue r;
    int rc = stoffel_execute(vm, "main", &r);
    if (rc != STOFFEL_OK && refusal == 0) {
        refusal = rc;
        const char *m = stoffel_last_error(vm);
        snprintf(refusal_message, sizeof refusal_message, "%s", m ? m : "");
    }
    depth_now--;
    *result = v_int(depth_now);
    return 0;
}

/* Passes every failure on. */
static int failing_down_cb(VMHandle vm, void *user_data, const StoffelValue *args,
                           int arg_count, StoffelValue *result)
{
    (void)user_data;
    (void)args;
    (void)arg_count;
    depth_now++;
    if (depth_now > levels) {
        levels = depth_now;
    }
    int rc = stoffel_execute(vm, "main", result);
    depth_now--;
    return rc;
}

struct run {
    size_t stack_kib;
    const char *mode;
};

static void *descend(void *arg)
{
    const struct run *run = arg;
    reset();
    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
    StoffelValue r;
    if (strcmp(run->mode, "stacks") == 0) {
        CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "down", down_cb, NULL));
        CHECK_OK(vm, stoffel_execute(vm, "main", &r));
        CHECK(depth_now == 0 && levels >= 10);
        CHECK(refusal == STOFFEL_ERROR_LIMIT);
        long per_level = levels > 2 ? (long)(first_frame - last_frame) / (levels - 2) : 0;
        printf("%zu KiB stack: %d levels, %ld bytes per level, then: %s\n", run->stack_kib,
               levels, per_level, refusal_message);
        /* A C callback that re-enters costs well under 4 KiB of stack per level. */
        CHECK(per_level > 0 && per_level < 4096);
        if (run->stack_kib == 128) {
            CHECK(strstr(refusal_message, "not enough native stack") != NULL);
        } else {
            CHECK(strstr(refusal_message, "not enough native stack") != NULL ||
                  strstr(refusal_message, "re-entered the VM more than 200") != NULL);
        }
        /* The VM works afterwards, and goes as deep again. */
        CHECK_OK(vm, stoffel_execute(vm, "ok", &r));
        CHECK(r.data.int_val == 7);
        int first_levels = levels;
        reset();
        CHECK_OK(vm, stoffel_execute(vm, "main", &r));
        CHECK(levels == first_levels && refusal == STOFFEL_ERROR_LIMIT);
    } else {
        CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "down", failing_down_cb, NULL));
        CHECK_ERR(vm, stoffel_execute(vm, "main", &r), STOFFEL_ERROR_EXECUTE, "down");
        CHECK(levels == 200 && depth_now == 0);
        const char *m = stoffel_last_error(vm);
        printf("after %d levels (%zu bytes): %.1000s\n", levels, strlen(m), m);
        CHECK(strlen(m) < 1024);
        CHECK(strstr(m, "host functions re-entered the VM more than 200 levels deep") != NULL);
        CHECK(strstr(m, "(innermost error of 200 nested executions)") != NULL);
        CHECK_OK(vm, stoffel_execute(vm, "ok", &r));
        CHECK(r.data.int_val == 7);
    }
    StoffelGcStats stats;
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    CHECK(stats.live_handles == 0);
    stoffel_destroy_vm(vm);
    return NULL;
}

static void on_thread(size_t kib, const char *mode)
{
    struct run run = {kib, mode};
    pthread_attr_t attr;
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, kib * 1024) == 0);
    pthread_t thread;
    CHECK(pthread_create(&thread, &attr, descend, &run) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    pthread_attr_destroy(&attr);
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "stacks") != 0 && strcmp(argv[1], "messages") != 0)) {
        fprintf(stderr, "usage: %s stacks|messages\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "stacks") == 0) {
        on_thread(128, "stacks");
        on_thread(256, "stacks");
        on_thread(512, "stacks");
    } else {
        on_thread(8192, "messages");
    }
    printf("reentry_stack %s: all %ld checks passed\n", argv[1], checks_passed);
    return 0;
}
