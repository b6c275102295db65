/*
 * watchdog.c: a watchdog thread stops a runaway program. The main thread runs an endless
 * loop on a VM; a second thread calls stoffel_interrupt on the same VM after 100 ms (the one
 * call that is safe from any thread while the VM runs), and again every 10 ms until the
 * execution has returned. The execution fails with
 * STOFFEL_ERROR_INTERRUPTED, and the VM is usable afterwards.
 *
 * Build (from the crate root, after `cargo build --release`):
 *   cc -std=c99 -Iinclude examples/watchdog.c -Ltarget/release -lstoffel_vm -lpthread \
 *      -Wl,-rpath,target/release -o watchdog && ./watchdog
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "stoffel_vm.h"

static const char *program =
    ".function spin\n"
    "top:\n"
    "    JMP top\n"
    ".function answer\n"
    "    LDI r0, 42\n"
    "    RET r0\n";

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Set by the main thread once the execution returned. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int finished = 0;

static int is_finished(void)
{
    pthread_mutex_lock(&lock);
    int f = finished;
    pthread_mutex_unlock(&lock);
    return f;
}

/* Interrupts after 100 ms, then every 10 ms until the execution has returned: an interrupt
 * that arrives before the execution starts is ignored (each execution starts uninterrupted),
 * so a watchdog repeats it. */
static void *watchdog(void *vm)
{
    struct timespec first = { 0, 100 * 1000 * 1000 };
    struct timespec again = { 0, 10 * 1000 * 1000 };
    nanosleep(&first, NULL);
    while (!is_finished()) {
        int rc = stoffel_interrupt((VMHandle)vm);
        if (rc != STOFFEL_OK) {
            fprintf(stderr, "stoffel_interrupt returned %d\n", rc);
        }
        nanosleep(&again, NULL);
    }
    return NULL;
}

int main(void)
{
    VMHandle vm = stoffel_create_vm();
    if (vm == NULL || stoffel_load_assembly(vm, program) != STOFFEL_OK) {
        fprintf(stderr, "set-up failed\n");
        return 1;
    }
    StoffelValue result;
    double start = now();
    pthread_t thread;
    if (pthread_create(&thread, NULL, watchdog, vm) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    int rc = stoffel_execute(vm, "spin", &result);
    double elapsed = now() - start;
    pthread_mutex_lock(&lock);
    finished = 1;
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    if (rc != STOFFEL_ERROR_INTERRUPTED) {
        fprintf(stderr, "spin returned %d (%s), expected STOFFEL_ERROR_INTERRUPTED\n", rc,
                stoffel_error_name(rc));
        return 1;
    }
    printf("watchdog: spin stopped after %.0f ms: %s\n", elapsed * 1000.0,
           stoffel_last_error(vm));

    /* Still usable; and an interrupt while nothing runs is ignored. */
    if (stoffel_interrupt(vm) != STOFFEL_OK || stoffel_execute(vm, "answer", &result) != STOFFEL_OK
        || result.value_type != STOFFEL_VALUE_INT || result.data.int_val != 42) {
        fprintf(stderr, "the VM is not usable after the interrupt\n");
        return 1;
    }
    stoffel_destroy_vm(vm);
    /* A destroyed handle is refused, not followed. */
    if (stoffel_interrupt(vm) != STOFFEL_ERROR_INVALID_VM || stoffel_interrupt(NULL) != STOFFEL_ERROR_NULL) {
        fprintf(stderr, "stale or NULL handles are not refused\n");
        return 1;
    }
    printf("watchdog: the VM answered 42 afterwards\n");
    return 0;
}
