/*
 * longjmp.c: what this version does when a callback is left with longjmp (issue 18, item 8).
 * Callbacks must return normally; this checks the documented (not guaranteed) behaviour when
 * one does not, for a C function callback and for a print callback:
 *  - the VM stays in the abandoned call: a later call on it from the same thread, from the
 *    stack depth of the original call, gets STOFFEL_ERROR_REENTRANCY ("longjmp"), and from
 *    another thread STOFFEL_ERROR_REENTRANCY (busy);
 *  - stoffel_destroy_vm from that thread destroys it: its finalizer runs, once, and its
 *    handle is dead;
 *  - the thread's other VMs and new VMs work as before.
 * Both on the main thread and on another thread. And the other way round: a callback that
 * runs a re-entrant call on a stack of its own (a ucontext fiber, placed above the thread's
 * stack) is not taken for a longjmp.
 * Run by tests/c_api.rs (not under valgrind: the frames skipped by longjmp leak).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "check.h"

static const char *const PROGRAM =
    ".function add(a, b)\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    ".function jump(x)\n"
    "    PUSHARG r0\n"
    "    CALL jump_cb\n"
    "    RET r0\n"
    ".function say(x)\n"
    "    PUSHARG r0\n"
    "    CALL print\n"
    "    RET r0\n"
    ".function via_fiber(x)\n"
    "    PUSHARG r0\n"
    "    CALL fiber_cb\n"
    "    RET r0\n";

static jmp_buf escape;
static int finalized;

static void count_finalizer(void *object)
{
    (*(int *)object)++;
}

static int jump_cb(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                   StoffelValue *result)
{
    (void)vm;
    (void)user_data;
    (void)args;
    (void)arg_count;
    (void)result;
    longjmp(escape, 1);
}

static void jump_print(const char *text, void *user_data)
{
    (void)text;
    (void)user_data;
    longjmp(escape, 2);
}

typedef struct {
    VMHandle vm;
    int rc;
} Other;

static void *other_main(void *arg)
{
    Other *o = arg;
    StoffelValue r;
    o->rc = stoffel_execute(o->vm, "add", &r);
    return NULL;
}

/* ---- A re-entrant call from a fiber. ---- */
static ucontext_t callback_context, fiber_context;
static VMHandle fiber_vm;
static int fiber_rc = -100;
static int64_t fiber_sum;

static void fiber_main(void)
{
    StoffelValue args[2] = {v_int(40), v_int(2)};
    StoffelValue r;
    fiber_rc = stoffel_execute_with_args(fiber_vm, "add", args, 2, &r);
    fiber_sum = r.data.int_val;
    /* Returns to callback_context (uc_link). */
}

static int fiber_cb(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                    StoffelValue *result)
{
    (void)args;
    (void)arg_count;
    size_t size = 256 * 1024;
    /* Above this thread's stack, so that the fiber's frames are at higher addresses than
     * this callback's (where a longjmp out of the callback would land). */
    char *hint = (char *)user_data;
    void *stack = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED || (char *)stack < (char *)&size) {
        return 1;
    }
    fiber_vm = vm;
    if (getcontext(&fiber_context) != 0) {
        return 2;
    }
    fiber_context.uc_stack.ss_sp = stack;
    fiber_context.uc_stack.ss_size = size;
    fiber_context.uc_link = &callback_context;
    makecontext(&fiber_context, fiber_main, 0);
    if (swapcontext(&callback_context, &fiber_context) != 0) {
        return 3;
    }
    munmap(stack, size);
    *result = v_int(fiber_sum);
    return fiber_rc == STOFFEL_OK ? 0 : 4;
}

static void fiber_reentry(void)
{
    pthread_attr_t attr;
    void *base;
    size_t size;
    CHECK(pthread_getattr_np(pthread_self(), &attr) == 0);
    CHECK(pthread_attr_getstack(&attr, &base, &size) == 0);
    pthread_attr_destroy(&attr);
    char *above = (char *)base + size + (64 << 20);
    VMHandle vm = stoffel_create_vm();
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "fiber_cb", fiber_cb, above));
    StoffelValue arg = v_int(1);
    StoffelValue r;
    CHECK_OK(vm, stoffel_execute_with_args(vm, "via_fiber", &arg, 1, &r));
    CHECK(fiber_rc == STOFFEL_OK && r.data.int_val == 42);
    CHECK_VM_WORKS(vm);
    stoffel_destroy_vm(vm);
}

static void abandon(const char *function, int use_print);

static void *thread_main(void *arg)
{
    (void)arg;
    abandon("jump", 0);
    abandon("say", 1);
    fiber_reentry();
    return NULL;
}

static VMHandle make_vm(void)
{
    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "jump_cb", jump_cb, NULL));
    StoffelValue object;
    CHECK_OK(vm, stoffel_register_foreign_object_ex(vm, &finalized, count_finalizer, &object));
    return vm;
}

/* Runs `function` on a fresh VM, expecting its callback to longjmp out; then checks the
 * documented behaviour. */
static void abandon(const char *function, int use_print)
{
    VMHandle bystander = make_vm(); /* another VM of this thread, untouched */
    VMHandle vm = make_vm();
    if (use_print) {
        CHECK_OK(vm, stoffel_set_print_callback(vm, jump_print, NULL));
    }
    finalized = 0;
    StoffelValue arg = v_int(5);
    StoffelValue r;
    volatile int jumped = 0;
    if (setjmp(escape) == 0) {
        stoffel_execute_with_args(vm, function, &arg, 1, &r);
        FAIL("%s returned instead of jumping", function);
    } else {
        jumped = 1;
    }
    CHECK(jumped);

    /* Stuck in the abandoned call. */
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "add", (StoffelValue[]){v_int(1), v_int(2)}, 2,
                                            &r),
              STOFFEL_ERROR_REENTRANCY, "longjmp");
    StoffelGcStats stats;
    CHECK_ERR(vm, stoffel_gc_stats(vm, &stats), STOFFEL_ERROR_REENTRANCY, "longjmp");
    Other o = {vm, 0};
    pthread_t other;
    CHECK(pthread_create(&other, NULL, other_main, &o) == 0);
    CHECK(pthread_join(other, NULL) == 0);
    CHECK(o.rc == STOFFEL_ERROR_REENTRANCY);

    /* The bystander works. */
    CHECK_VM_WORKS(bystander);

    /* Destroy frees it: the finalizer runs once, the handle is dead. */
    CHECK(finalized == 0);
    stoffel_destroy_vm(vm);
    CHECK(finalized == 1);
    CHECK_ERR(NULL, stoffel_execute(vm, "add", &r), STOFFEL_ERROR_INVALID_VM, "invalid VM");
    stoffel_destroy_vm(bystander);
    CHECK(finalized == 2);

    /* A new VM on this thread works as ever. */
    VMHandle fresh = make_vm();
    CHECK_VM_WORKS(fresh);
    stoffel_destroy_vm(fresh);
    CHECK(finalized == 3);
}

int main(void)
{
    abandon("jump", 0);
    printf("longjmp: out of a C function callback: stuck, then destroyed (finalizer ran)\n");
    abandon("say", 1);
    printf("longjmp: out of a print callback: stuck, then destroyed (finalizer ran)\n");
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, thread_main, NULL) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    printf("longjmp: the same on another thread\n");
    fiber_reentry();
    printf("longjmp: a re-entrant call from a fiber above the thread's stack works\n");
    printf("longjmp: all checks=%ld passed\n", checks_passed);
    return 0;
}
