/*
 * destroy_chain.c: finalizer-driven destroys take no stack (issue 18, item 11). N VMs, each
 * holding a foreign object whose finalizer destroys the next VM; destroying the first, on a
 * thread with a 256 KiB stack, runs all N finalizers, each exactly once and in chain order
 * (a destroy asked for by a finalizer runs after the current destroy, in the same loop,
 * instead of inside it).
 * Usage: destroy_chain [n] (default 100000). Run by tests/c_api.rs.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "check.h"

static VMHandle *vms;
static long n;
static long next_expected; /* the finalizer that must run next */
static long out_of_order;
static long nested;  /* finalizers that ran while another finalizer of the chain was running */
static int running; /* a finalizer of the chain is running */

typedef struct {
    long index;
    int runs;
} Link;

static void chain_finalizer(void *object)
{
    Link *link = object;
    if (running) {
        nested++;
    }
    running = 1;
    link->runs++;
    if (link->index != next_expected) {
        out_of_order++;
    }
    next_expected = link->index + 1;
    if (link->index + 1 < n) {
        stoffel_destroy_vm(vms[link->index + 1]);
    }
    running = 0;
}

static void *destroyer_main(void *arg)
{
    (void)arg;
    stoffel_destroy_vm(vms[0]);
    return NULL;
}

int main(int argc, char **argv)
{
    n = argc > 1 ? atol(argv[1]) : 100000;
    vms = calloc((size_t)n, sizeof *vms);
    Link *links = calloc((size_t)n, sizeof *links);
    CHECK(vms != NULL && links != NULL);
    for (long i = 0; i < n; i++) {
        vms[i] = stoffel_create_vm();
        CHECK(vms[i] != NULL);
        links[i].index = i;
        StoffelValue object;
        CHECK_OK(vms[i],
                 stoffel_register_foreign_object_ex(vms[i], &links[i], chain_finalizer, &object));
    }

    pthread_attr_t attr;
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, 256 * 1024) == 0);
    pthread_t destroyer;
    CHECK(pthread_create(&destroyer, &attr, destroyer_main, NULL) == 0);
    CHECK(pthread_join(destroyer, NULL) == 0);
    CHECK(pthread_attr_destroy(&attr) == 0);

    long runs = 0;
    for (long i = 0; i < n; i++) {
        if (links[i].runs != 1) {
            FAIL("finalizer %ld ran %d times", i, links[i].runs);
        }
        runs += links[i].runs;
    }
    StoffelValue r;
    CHECK(stoffel_execute(vms[0], "add", &r) == STOFFEL_ERROR_INVALID_VM);
    CHECK(stoffel_execute(vms[n - 1], "add", &r) == STOFFEL_ERROR_INVALID_VM);
    printf("destroy_chain: n=%ld finalizers=%ld nested=%ld out_of_order=%ld\n", n, runs, nested,
           out_of_order);
    CHECK(runs == n);
    CHECK(nested == 0);
    CHECK(out_of_order == 0);
    free(vms);
    free(links);
    printf("destroy_chain: all checks=%ld passed\n", checks_passed);
    return 0;
}
