/*
 * ids.c: ids are unique for the life of the process (include/README.md, "Ids").
 *
 * 1 000 000 VMs are created one after another in this one process. Each makes an object
 * (field "n" = its number) and an array. RESIDENTS of them stay alive holding their values:
 * every REPLACE_EVERY-th new VM takes the place of the oldest resident (which is destroyed),
 * so a resident lives for RESIDENTS * REPLACE_EVERY creations, longer than any 16-bit VM tag
 * lasts; every other VM is destroyed at the end of its iteration.
 *
 * In each iteration the new VM must refuse every resident's object id, and every resident
 * the new VM's object id, with STOFFEL_ERROR_INVALID_HANDLE and the message "handle N is not
 * live in this VM (...)" (get_field, set_field, retain or release in turn; all four on the
 * first and last iterations and whenever a resident is replaced, among all live VMs), with
 * nothing changed: the refusing VM's own values still read back and its live_handles count is
 * unchanged. The new VM also refuses its own array's id once released.
 *
 * Prints "ids: ..." figures for tests/handle_ids.rs.
 */
#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "check.h"

#ifndef VMS
#define VMS 1000000L /* -DVMS=N for a shorter run when profiling */
#endif
#define RESIDENTS 4
#define REPLACE_EVERY 40000L

typedef struct {
    VMHandle vm;
    long n;
    StoffelValue obj;
    StoffelValue arr;
} Live;

static long refusals = 0;
static size_t max_id = 0;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t live_handles(VMHandle vm)
{
    StoffelGcStats stats;
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    return stats.live_handles;
}

/* `l`'s values are intact: obj.n == l->n, arr has one element. */
static void check_own(const Live *l)
{
    StoffelValue key = v_str("n");
    StoffelValue r;
    size_t len = 0;
    CHECK_OK(l->vm, stoffel_get_field(l->vm, &l->obj, &key, &r));
    if (r.value_type != STOFFEL_VALUE_INT || r.data.int_val != l->n) {
        FAIL("VM %ld: its object's n is %lld (type %d)", l->n, (long long)r.data.int_val,
             (int)r.value_type);
    }
    CHECK_OK(l->vm, stoffel_array_length(l->vm, &l->arr, &len));
    CHECK(len == 1);
}

/* `vm` refuses `id` (of kind `type`) with INVALID_HANDLE and a true message, through call
 * `how` (0 get_field, 1 set_field, 2 retain, 3 release), and changes nothing. */
static void check_refused(const Live *here, StoffelValueType type, size_t id, int how)
{
    VMHandle vm = here->vm;
    StoffelValue bad = v_id(type, id);
    StoffelValue key = v_str("n");
    StoffelValue val = v_int(-1);
    StoffelValue r;
    size_t before = live_handles(vm);
    int rc = 0;
    switch (how) {
    case 0:
        rc = stoffel_get_field(vm, &bad, &key, &r);
        break;
    case 1:
        rc = stoffel_set_field(vm, &bad, &key, &val);
        break;
    case 2:
        rc = stoffel_retain_value(vm, &bad);
        break;
    default:
        rc = stoffel_release_value(vm, &bad);
        break;
    }
    if (rc != STOFFEL_ERROR_INVALID_HANDLE) {
        FAIL("VM %ld accepted (rc %d, call %d) id %zu that is not its own", here->n, rc, how,
             id);
    }
    char expected[96];
    snprintf(expected, sizeof expected, "handle %zu is not live in this VM", id);
    const char *m = stoffel_last_error(vm);
    if (m == NULL || strstr(m, expected) == NULL) {
        FAIL("VM %ld refused id %zu with \"%s\", expected \"%s ...\"", here->n, id,
             m ? m : "(none)", expected);
    }
    CHECK(live_handles(vm) == before);
    refusals++;
}

/* Every live VM refuses every other live VM's ids, by every call; all values intact. */
static void check_all_pairs(Live *live, int count)
{
    for (int a = 0; a < count; a++) {
        for (int b = 0; b < count; b++) {
            if (a == b) {
                continue;
            }
            for (int how = 0; how < 4; how++) {
                check_refused(&live[a], STOFFEL_VALUE_OBJECT, live[b].obj.data.object_id, how);
                check_refused(&live[a], STOFFEL_VALUE_ARRAY, live[b].arr.data.array_id, how);
            }
        }
    }
    for (int a = 0; a < count; a++) {
        check_own(&live[a]);
    }
}

static Live make(long n)
{
    Live l;
    l.n = n;
    l.vm = stoffel_create_vm();
    if (l.vm == NULL) {
        FAIL("stoffel_create_vm returned NULL at VM %ld", n);
    }
    StoffelValue key = v_str("n");
    StoffelValue val = v_int(n);
    CHECK_OK(l.vm, stoffel_create_object(l.vm, &l.obj));
    CHECK_OK(l.vm, stoffel_set_field(l.vm, &l.obj, &key, &val));
    CHECK_OK(l.vm, stoffel_create_array(l.vm, &l.arr));
    CHECK_OK(l.vm, stoffel_array_push(l.vm, &l.arr, &val));
    if (l.obj.data.object_id > max_id) {
        max_id = l.obj.data.object_id;
    }
    if (l.arr.data.array_id > max_id) {
        max_id = l.arr.data.array_id;
    }
    return l;
}

int main(void)
{
    double start = now_seconds();
    /* residents[0..RESIDENTS) and, during an iteration, the new VM at residents[RESIDENTS]. */
    Live live[RESIDENTS + 1];
    int residents = 0;
    int oldest = 0;
    long replaced = 0;

    for (long n = 0; n < VMS; n++) {
        Live fresh = make(n);
        int full = n == 0 || n == VMS - 1;
        int how = (int)(n % 4);
        for (int i = 0; i < residents && !full; i++) {
            check_refused(&fresh, STOFFEL_VALUE_OBJECT, live[i].obj.data.object_id, how);
            check_refused(&live[i], STOFFEL_VALUE_OBJECT, fresh.obj.data.object_id, how);
        }
        /* Its own array, released, is refused by it too. */
        size_t arr_id = fresh.arr.data.array_id;
        if (n % 16 == 0) {
            StoffelValue arr = fresh.arr;
            CHECK_OK(fresh.vm, stoffel_release_value(fresh.vm, &arr));
            check_refused(&fresh, STOFFEL_VALUE_ARRAY, arr_id, how);
            CHECK_OK(fresh.vm, stoffel_create_array(fresh.vm, &fresh.arr));
            StoffelValue val = v_int(n);
            CHECK_OK(fresh.vm, stoffel_array_push(fresh.vm, &fresh.arr, &val));
            CHECK(fresh.arr.data.array_id != arr_id);
        }
        check_own(&fresh);

        if (residents < RESIDENTS && n % REPLACE_EVERY == 0) {
            live[residents++] = fresh;
            full = 1;
        } else if (n % REPLACE_EVERY == 0) {
            stoffel_destroy_vm(live[oldest].vm);
            live[oldest] = fresh;
            oldest = (oldest + 1) % RESIDENTS;
            replaced++;
            full = 1;
        } else if (full) {
            live[residents] = fresh;
            check_all_pairs(live, residents + 1);
            stoffel_destroy_vm(fresh.vm);
            continue;
        } else {
            stoffel_destroy_vm(fresh.vm);
        }
        if (full) {
            check_all_pairs(live, residents);
        }
        for (int i = 0; i < residents && n % 1024 == 0; i++) {
            check_own(&live[i]);
        }
    }
    for (int i = 0; i < residents; i++) {
        check_own(&live[i]);
        stoffel_destroy_vm(live[i].vm);
    }
    double seconds = now_seconds() - start;
    printf("ids: vms=%ld residents=%d replaced=%ld refusals=%ld max_id=%zu seconds=%.2f\n", VMS,
           RESIDENTS, replaced, refusals, max_id, seconds);
    printf("ids: all %ld checks passed\n", checks_passed);
    return 0;
}
