/*
 * destroy_race.c: stoffel_destroy_vm always destroys (issue 18, item 6). One thread creates a
 * VM, registers a foreign object with a counting finalizer, publishes the handle, uses the VM
 * and destroys it, over and over; two others poll the published handle with read-only calls
 * (stoffel_gc_stats, stoffel_last_error) as fast as they can, so a destroy often lands while
 * a poller is inside a call. At the end every VM's finalizer has run exactly once: no VM
 * survived its destroy (a VM the poller was inside is destroyed by the poller, as its call
 * returns).
 * Usage: destroy_race [seconds] (default 3). Run by tests/c_api.rs.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>

#include "check.h"

#define POLLERS 2

static const char *const PROGRAM =
    ".function add(a, b)\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n";

static VMHandle current; /* the handle the pollers poll (atomic) */
static int stop;         /* atomic */
static long finalized;   /* atomic: finalizers run, on any thread */
static long polls_ok;    /* atomic: read-only calls that got through */
static long polls_busy;  /* atomic: ... that found the VM busy (in use by the creator) */

static void count_finalizer(void *object)
{
    (void)object;
    __atomic_add_fetch(&finalized, 1, __ATOMIC_RELAXED);
}

static void *poller_main(void *arg)
{
    (void)arg;
    long ok = 0, busy = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        VMHandle vm = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
        for (int i = 0; i < 16; i++) {
            StoffelGcStats stats;
            int rc = stoffel_gc_stats(vm, &stats);
            if (rc == STOFFEL_OK) {
                ok++;
            } else if (rc == STOFFEL_ERROR_REENTRANCY) {
                busy++;
            } else if (rc != STOFFEL_ERROR_INVALID_VM && rc != STOFFEL_ERROR_NULL) {
                fprintf(stderr, "stoffel_gc_stats returned %d\n", rc);
                exit(1);
            }
            /* The message itself is not read: another thread may destroy the VM (and its
             * messages) at any moment. */
            (void)stoffel_last_error(vm);
        }
    }
    __atomic_add_fetch(&polls_ok, ok, __ATOMIC_RELAXED);
    __atomic_add_fetch(&polls_busy, busy, __ATOMIC_RELAXED);
    return NULL;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    pthread_t pollers[POLLERS];
    for (int i = 0; i < POLLERS; i++) {
        CHECK(pthread_create(&pollers[i], NULL, poller_main, NULL) == 0);
    }
    long created = 0;
    long alive_after_destroy = 0;
    int dummy;
    double end = now() + seconds;
    while (now() < end) {
        for (int i = 0; i < 64; i++) {
            VMHandle vm = stoffel_create_vm();
            CHECK(vm != NULL);
            created++;
            StoffelValue object;
            CHECK_OK(vm, stoffel_register_foreign_object_ex(vm, &dummy, count_finalizer,
                                                            &object));
            CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
            __atomic_store_n(&current, vm, __ATOMIC_RELEASE);
            /* Use it: the pollers may have it at this moment (then this is refused). */
            StoffelValue args[2] = {v_int(40), v_int(2)};
            StoffelValue r;
            int rc = stoffel_execute_with_args(vm, "add", args, 2, &r);
            CHECK(rc == STOFFEL_OK || rc == STOFFEL_ERROR_REENTRANCY);
            stoffel_destroy_vm(vm);
            /* Dead at once, whoever finishes the destruction. */
            if (stoffel_execute_with_args(vm, "add", args, 2, &r) != STOFFEL_ERROR_INVALID_VM) {
                alive_after_destroy++;
            }
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < POLLERS; i++) {
        CHECK(pthread_join(pollers[i], NULL) == 0);
    }
    long done = __atomic_load_n(&finalized, __ATOMIC_ACQUIRE);
    printf("destroy_race: vms=%ld finalized=%ld survivors=%ld alive_after_destroy=%ld "
           "polls_ok=%ld polls_busy=%ld\n",
           created, done, created - done, alive_after_destroy, polls_ok, polls_busy);
    CHECK(alive_after_destroy == 0);
    CHECK(done == created);
    printf("destroy_race: all checks=%ld passed\n", checks_passed);
    return 0;
}
