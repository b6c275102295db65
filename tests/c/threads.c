/*
 * threads.c: VMs and threads.
 *  1. 8 threads at once, each with its own VM: load code, register a callback with
 *     per-thread state, run 10 000 executions checking every result, destroy.
 *  2. A VM busy on thread A (inside a long callback) refuses thread B with
 *     STOFFEL_ERROR_REENTRANCY, deterministically (the threads hand over through pipes);
 *     once A is done, B may use the VM (VMs may move between threads). Destroyed by B while
 *     A is inside it, the handle is dead at once, A's call finishes, and the VM is destroyed
 *     when it returns (its finalizer runs once, on A).
 *  3. A VM destroyed on one thread while another hammers it: every call either works or
 *     gets an error code (never a use of freed memory), and the destroy takes effect at once.
 *  4. A thread keeps the handle of a VM destroyed on another thread, whose storage the next
 *     VM reuses: the old handle is refused (also right after that thread used it), the new
 *     VM works from both threads.
 * Run by tests/c_api.rs.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "check.h"

#define THREADS 8
#define ITERATIONS 10000

static const char *const PROGRAM =
    ".function add(a, b)\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    /* work(i, t) = { i: i, v: tally(i * t) + i } .v */
    ".function work(i, t) registers 8\n"
    "    MOV r2, r0\n"
    "    MUL r3, r0, r1\n"
    "    PUSHARG r3\n"
    "    CALL tally\n"
    "    ADD r4, r0, r2\n"
    "    CALL create_object\n"
    "    MOV r5, r0\n"
    "    LDI r6, \"v\"\n"
    "    PUSHARG r5\n"
    "    PUSHARG r6\n"
    "    PUSHARG r4\n"
    "    CALL set_field\n"
    "    PUSHARG r5\n"
    "    PUSHARG r6\n"
    "    CALL get_field\n"
    "    RET r0\n"
    ".function block\n"
    "    CALL block_cb\n"
    "    RET r0\n";

/* ---- 1. ---- */
typedef struct {
    int index;
    int64_t tally_sum; /* per-thread state the callback updates through user_data */
    int64_t tally_calls;
    int ok;
    char error[256];
} Worker;

static int tally(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                 StoffelValue *result)
{
    (void)vm;
    Worker *w = user_data;
    if (arg_count != 1 || args[0].value_type != STOFFEL_VALUE_INT) {
        return 1;
    }
    w->tally_sum += args[0].data.int_val;
    w->tally_calls++;
    *result = v_int(args[0].data.int_val * 2);
    return 0;
}

#define WORKER_FAIL(...)                                                                    \
    do {                                                                                    \
        snprintf(w->error, sizeof w->error, __VA_ARGS__);                                   \
        return NULL;                                                                        \
    } while (0)

static void *worker_main(void *arg)
{
    Worker *w = arg;
    VMHandle vm = stoffel_create_vm();
    if (vm == NULL) {
        WORKER_FAIL("thread %d: no VM", w->index);
    }
    if (stoffel_load_assembly(vm, PROGRAM) != STOFFEL_OK ||
        stoffel_register_foreign_function_ex(vm, "tally", tally, w) != STOFFEL_OK) {
        WORKER_FAIL("thread %d: setup failed: %s", w->index, stoffel_last_error(vm));
    }
    int64_t t = w->index + 1;
    int64_t expected_sum = 0;
    for (int64_t i = 0; i < ITERATIONS; i++) {
        StoffelValue args[2] = {v_int(i), v_int(t)};
        StoffelValue r;
        int rc = stoffel_execute_with_args(vm, "work", args, 2, &r);
        if (rc != STOFFEL_OK) {
            WORKER_FAIL("thread %d: work(%lld) returned %d: %s", w->index, (long long)i, rc,
                        stoffel_last_error(vm));
        }
        if (r.value_type != STOFFEL_VALUE_INT || r.data.int_val != i * t * 2 + i) {
            WORKER_FAIL("thread %d: work(%lld) = %lld", w->index, (long long)i,
                        (long long)r.data.int_val);
        }
        expected_sum += i * t;
        if (i % 1000 == 0) {
            /* Some heap traffic from C as well. */
            StoffelValue obj;
            if (stoffel_create_object(vm, &obj) != STOFFEL_OK ||
                stoffel_release_value(vm, &obj) != STOFFEL_OK ||
                stoffel_gc_collect(vm) != STOFFEL_OK) {
                WORKER_FAIL("thread %d: heap calls failed", w->index);
            }
        }
    }
    StoffelGcStats stats;
    if (stoffel_gc_stats(vm, &stats) != STOFFEL_OK || stats.live_handles != 0) {
        WORKER_FAIL("thread %d: %zu live handles left", w->index, stats.live_handles);
    }
    if (w->tally_calls != ITERATIONS || w->tally_sum != expected_sum) {
        WORKER_FAIL("thread %d: tally saw %lld calls, sum %lld (expected %lld)", w->index,
                    (long long)w->tally_calls, (long long)w->tally_sum, (long long)expected_sum);
    }
    stoffel_destroy_vm(vm);
    w->ok = 1;
    return NULL;
}

/* ---- 2. ---- */
static int to_main[2];   /* A -> main: "I am inside the callback" */
static int to_worker[2]; /* main -> A: "you may return" */

static int block_cb(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                    StoffelValue *result)
{
    (void)vm;
    (void)user_data;
    (void)args;
    (void)arg_count;
    char c = 'i';
    if (write(to_main[1], &c, 1) != 1) {
        return 1;
    }
    if (read(to_worker[0], &c, 1) != 1 || c != 'g') {
        return 2;
    }
    *result = v_int(99);
    return 0;
}

typedef struct {
    VMHandle vm;
    int rc;
    StoffelValue result;
} Blocker;

static int finalized;

static void count_finalizer(void *object)
{
    __atomic_add_fetch((int *)object, 1, __ATOMIC_RELEASE);
}

static void *blocker_main(void *arg)
{
    Blocker *b = arg;
    b->rc = stoffel_execute(b->vm, "block", &b->result);
    return NULL;
}

/* ---- 3. ---- */
typedef struct {
    VMHandle vm;
    long signal_after; /* main destroys the VM once this many calls worked */
    long ok_calls;
    long invalid_calls;
    long busy_calls;
    long other;
} Hammer;

static void *hammer_main(void *arg)
{
    Hammer *h = arg;
    for (;;) {
        StoffelValue args[2] = {v_int(1), v_int(2)};
        StoffelValue r;
        int rc = stoffel_execute_with_args(h->vm, "add", args, 2, &r);
        if (rc == STOFFEL_OK && r.data.int_val == 3) {
            long done = __atomic_add_fetch(&h->ok_calls, 1, __ATOMIC_RELEASE);
            if (done > h->signal_after + 1000) {
                sched_yield(); /* leave gaps, so the destroying thread gets its turn soon */
            }
        } else if (rc == STOFFEL_ERROR_INVALID_VM) {
            h->invalid_calls++;
            break; /* destroyed: stays invalid */
        } else if (rc == STOFFEL_ERROR_REENTRANCY) {
            h->busy_calls++;
        } else {
            h->other++;
        }
    }
    return NULL;
}

typedef struct {
    VMHandle old_vm;
    VMHandle new_vm; /* set by main between the two barrier waits */
    pthread_barrier_t *barrier;
    int rc_old_before, rc_old_after, rc_new, rc_old_again;
    int64_t result;
} Reuse;

static void *reuse_main(void *arg)
{
    Reuse *u = arg;
    StoffelValue r;
    StoffelValue args[2] = {v_int(2), v_int(3)};
    u->rc_old_before = stoffel_execute_with_args(u->old_vm, "add", args, 2, &r);
    pthread_barrier_wait(u->barrier); /* main destroys old_vm and creates new_vm */
    pthread_barrier_wait(u->barrier);
    u->rc_old_after = stoffel_execute_with_args(u->old_vm, "add", args, 2, &r);
    r.value_type = STOFFEL_VALUE_UNIT;
    u->rc_new = stoffel_execute_with_args(u->new_vm, "add", args, 2, &r);
    u->result = r.value_type == STOFFEL_VALUE_INT ? r.data.int_val : -1;
    u->rc_old_again = stoffel_execute_with_args(u->old_vm, "add", args, 2, &r);
    return NULL;
}

int main(void)
{
    /* ---- 1. ---- */
    pthread_t threads[THREADS];
    Worker workers[THREADS];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < THREADS; i++) {
        workers[i].index = i;
        CHECK(pthread_create(&threads[i], NULL, worker_main, &workers[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        if (!workers[i].ok) {
            FAIL("%s", workers[i].error);
        }
    }
    printf("threads: %d VMs x %d executions ok\n", THREADS, ITERATIONS);

    /* ---- 2. ---- */
    CHECK(pipe(to_main) == 0 && pipe(to_worker) == 0);
    VMHandle vm = stoffel_create_vm();
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "block_cb", block_cb, NULL));
    Blocker b = {vm, -100, {STOFFEL_VALUE_UNIT, {0}}};
    pthread_t blocker;
    CHECK(pthread_create(&blocker, NULL, blocker_main, &b) == 0);
    char c = 0;
    CHECK(read(to_main[0], &c, 1) == 1 && c == 'i'); /* A is now inside block_cb */

    StoffelValue r;
    StoffelValue args[2] = {v_int(1), v_int(2)};
    StoffelValue obj = v_id(STOFFEL_VALUE_OBJECT, 1);
    StoffelGcStats stats;
    const int BUSY = STOFFEL_ERROR_REENTRANCY;
    /* Every kind of call from this thread is refused while A uses the VM; the message is
     * in this thread's last error (stoffel_last_error(vm) from here gives it too). */
    CHECK_ERR(vm, stoffel_execute(vm, "add", &r), BUSY, "in use by another thread");
    CHECK_ERR(vm, stoffel_execute(vm, "add", &r), BUSY, "stoffel_execute");
    CHECK_ERR(NULL, stoffel_execute_with_args(vm, "add", args, 2, &r), BUSY,
              "stoffel_execute_with_args: the VM is in use by another thread");
    CHECK_ERR(vm, stoffel_create_object(vm, &r), BUSY, "another thread");
    CHECK_ERR(vm, stoffel_release_value(vm, &obj), BUSY, "another thread");
    CHECK_ERR(vm, stoffel_gc_collect(vm), BUSY, "another thread");
    CHECK_ERR(vm, stoffel_gc_stats(vm, &stats), BUSY, "another thread");
    CHECK_ERR(vm, stoffel_load_assembly(vm, ".function x\n RET r0\n"), BUSY, "another thread");
    CHECK_ERR(vm, stoffel_register_foreign_function_ex(vm, "x", block_cb, NULL), BUSY,
              "another thread");
    CHECK_ERR(vm, stoffel_set_instruction_limit(vm, 5), BUSY, "another thread");
    CHECK_ERR(vm, stoffel_set_print_callback(vm, NULL, NULL), BUSY, "another thread");

    c = 'g';
    CHECK(write(to_worker[1], &c, 1) == 1);
    CHECK(pthread_join(blocker, NULL) == 0);
    CHECK(b.rc == STOFFEL_OK && b.result.value_type == STOFFEL_VALUE_INT &&
          b.result.data.int_val == 99);

    /* Now idle: this thread may use it (VMs move between threads between calls). */
    CHECK_VM_WORKS(vm);
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    CHECK(stats.live_handles == 0);
    CHECK(stoffel_last_error(vm) == NULL); /* none of the refusals touched the VM */

    /* Destroyed while A is inside it: dead at once for everyone, destroyed when A's call
     * returns (A runs the finalizer). */
    StoffelValue res;
    CHECK_OK(vm, stoffel_register_foreign_object_ex(vm, &finalized, count_finalizer, &res));
    b.rc = -100;
    CHECK(pthread_create(&blocker, NULL, blocker_main, &b) == 0);
    CHECK(read(to_main[0], &c, 1) == 1 && c == 'i');
    stoffel_destroy_vm(vm);
    CHECK_ERR(NULL, stoffel_gc_stats(vm, &stats), STOFFEL_ERROR_INVALID_VM, "invalid VM handle");
    stoffel_destroy_vm(vm);
    CHECK_THREAD_ERROR("stoffel_destroy_vm: invalid VM handle");
    CHECK(__atomic_load_n(&finalized, __ATOMIC_ACQUIRE) == 0); /* A is still inside */
    c = 'g';
    CHECK(write(to_worker[1], &c, 1) == 1);
    CHECK(pthread_join(blocker, NULL) == 0);
    CHECK(b.rc == STOFFEL_OK && b.result.value_type == STOFFEL_VALUE_INT &&
          b.result.data.int_val == 99);
    CHECK(__atomic_load_n(&finalized, __ATOMIC_ACQUIRE) == 1);
    CHECK_ERR(NULL, stoffel_execute(vm, "add", &r), STOFFEL_ERROR_INVALID_VM, "invalid VM");
    close(to_main[0]);
    close(to_main[1]);
    close(to_worker[0]);
    close(to_worker[1]);
    printf("threads: busy VM refused a second thread with STOFFEL_ERROR_REENTRANCY\n");

    /* ---- 3. ---- */
    long total_ok = 0;
    for (int round = 0; round < 200; round++) {
        VMHandle target = stoffel_create_vm();
        CHECK_OK(target, stoffel_load_assembly(target, PROGRAM));
        Hammer h;
        memset(&h, 0, sizeof h);
        h.vm = target;
        h.signal_after = 1 + round % 50;
        pthread_t hammer;
        CHECK(pthread_create(&hammer, NULL, hammer_main, &h) == 0);
        /* Let it get going (spinning, so both threads are running), then destroy the VM
         * under it: the handle is dead at once, whether the hammer is inside a call or not. */
        while (__atomic_load_n(&h.ok_calls, __ATOMIC_ACQUIRE) < h.signal_after) {
            sched_yield();
        }
        stoffel_destroy_vm(target);
        CHECK(stoffel_set_instruction_limit(target, 0) == STOFFEL_ERROR_INVALID_VM);
        /* The hammer stops at its first STOFFEL_ERROR_INVALID_VM. */
        CHECK(pthread_join(hammer, NULL) == 0);
        CHECK(h.invalid_calls == 1 && h.ok_calls >= h.signal_after);
        CHECK(h.other == 0);
        total_ok += h.ok_calls;
        CHECK_ERR(target, stoffel_execute(target, "add", &r), STOFFEL_ERROR_INVALID_VM,
                  "invalid VM handle");
    }
    printf("threads: destroy while another thread calls: %ld calls ok before destruction, "
           "every destroy took effect at once\n",
           total_ok);

    /* ---- 4. ---- */
    for (int round = 0; round < 50; round++) {
        pthread_barrier_t barrier;
        CHECK(pthread_barrier_init(&barrier, NULL, 2) == 0);
        Reuse u;
        memset(&u, 0, sizeof u);
        u.barrier = &barrier;
        u.old_vm = stoffel_create_vm();
        CHECK_OK(u.old_vm, stoffel_load_assembly(u.old_vm, PROGRAM));
        pthread_t user;
        CHECK(pthread_create(&user, NULL, reuse_main, &u) == 0);
        pthread_barrier_wait(&barrier);
        stoffel_destroy_vm(u.old_vm);
        u.new_vm = stoffel_create_vm();
        CHECK(u.new_vm != NULL && u.new_vm != u.old_vm);
        CHECK_OK(u.new_vm, stoffel_load_assembly(u.new_vm, PROGRAM));
        pthread_barrier_wait(&barrier);
        CHECK(pthread_join(user, NULL) == 0);
        CHECK(pthread_barrier_destroy(&barrier) == 0);
        CHECK(u.rc_old_before == STOFFEL_OK);
        CHECK(u.rc_old_after == STOFFEL_ERROR_INVALID_VM);
        CHECK(u.rc_new == STOFFEL_OK && u.result == 5);
        CHECK(u.rc_old_again == STOFFEL_ERROR_INVALID_VM);
        CHECK_ERR(u.old_vm, stoffel_execute(u.old_vm, "add", &r), STOFFEL_ERROR_INVALID_VM,
                  "invalid VM handle");
        CHECK_VM_WORKS(u.new_vm);
        stoffel_destroy_vm(u.new_vm);
    }
    printf("threads: a destroyed VM's handle stays invalid after its storage is reused\n");

    printf("threads: all checks=%ld passed\n", checks_passed);
    return 0;
}
