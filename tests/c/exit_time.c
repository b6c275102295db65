/*
 * exit_time.c: the API called while a thread or the process exits (issue 18, item 1).
 *  1. From a pthread-key destructor, which runs after the thread's thread-local storage
 *     (the library's last-error slot included) has been destroyed: a double destroy, stale
 *     and NULL handles, stoffel_last_error(NULL), stoffel_free_string of a foreign pointer,
 *     and a VM created, used and destroyed there.
 *  2. The same from an atexit handler (the main thread's thread-local storage is destroyed
 *     before atexit handlers run), plus the destruction of a VM kept alive until then, whose
 *     finalizer must run.
 * Every call returns its documented code; nothing aborts. Failures are reported with
 * write(2) and _exit(1): at exit, stdio may be half gone.
 * Run by tests/c_api.rs.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <unistd.h>

#include "check.h"

static const char *const PROGRAM =
    ".function add(a, b)\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n";

static VMHandle stale; /* destroyed in main: every later call with it is refused */
static VMHandle kept;  /* alive until the atexit handler destroys it */
static int kept_finalized;
static int thread_failures = -1;

static void count_finalizer(void *object)
{
    (*(int *)object)++;
}

static void report(const char *where, const char *what, int line)
{
    char text[512];
    int n = snprintf(text, sizeof text, "exit_time.c:%d: %s: check failed: %s\n", line, where,
                     what);
    if (n > 0) {
        ssize_t ignored = write(2, text, (size_t)n);
        (void)ignored;
    }
}

#define EXPECT(cond)                                                                        \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            report(where, #cond, __LINE__);                                                 \
            bad++;                                                                          \
        }                                                                                   \
    } while (0)

/* Every kind of call a dying thread or process might make. Returns the number of failed
 * expectations. `live` is a VM that must still work (or NULL). */
static int exercise(const char *where, VMHandle live)
{
    int bad = 0;
    StoffelValue r;
    StoffelGcStats stats;
    StoffelValue args[2] = {v_int(40), v_int(2)};

    stoffel_destroy_vm(stale); /* a double destroy */
    stoffel_destroy_vm(NULL);
    EXPECT(stoffel_last_error(NULL) != NULL);
    EXPECT(stoffel_execute(stale, "add", &r) == STOFFEL_ERROR_INVALID_VM);
    EXPECT(stoffel_execute_with_args(NULL, "add", args, 2, &r) == STOFFEL_ERROR_NULL);
    EXPECT(stoffel_gc_stats(stale, &stats) == STOFFEL_ERROR_INVALID_VM);
    EXPECT(stoffel_gc_collect((VMHandle)(uintptr_t)0x12345) == STOFFEL_ERROR_INVALID_VM);
    EXPECT(stoffel_last_error(stale) != NULL);
    stoffel_free_string((char *)"not the library's");
    EXPECT(stoffel_version() != NULL);

    if (live != NULL) {
        EXPECT(stoffel_execute_with_args(live, "add", args, 2, &r) == STOFFEL_OK &&
               r.data.int_val == 42);
    }

    /* A whole VM life, here. */
    VMHandle vm = stoffel_create_vm();
    EXPECT(vm != NULL);
    if (vm != NULL) {
        EXPECT(stoffel_load_assembly(vm, PROGRAM) == STOFFEL_OK);
        EXPECT(stoffel_execute_with_args(vm, "add", args, 2, &r) == STOFFEL_OK &&
               r.data.int_val == 42);
        EXPECT(stoffel_execute(vm, "missing", &r) == STOFFEL_ERROR_EXECUTE);
        EXPECT(stoffel_last_error(vm) != NULL);
        StoffelValue s;
        EXPECT(stoffel_create_string(vm, "text", &s) == STOFFEL_OK);
        stoffel_free_string((char *)s.data.string_val);
        int finalized = 0;
        StoffelValue object;
        EXPECT(stoffel_register_foreign_object_ex(vm, &finalized, count_finalizer, &object) ==
               STOFFEL_OK);
        stoffel_destroy_vm(vm);
        EXPECT(finalized == 1);
        stoffel_destroy_vm(vm); /* and a double destroy of it */
        EXPECT(stoffel_execute(vm, "add", &r) == STOFFEL_ERROR_INVALID_VM);
    }
    return bad;
}

/* ---- 1. ---- */
static pthread_key_t key;

static void key_destructor(void *value)
{
    (void)value;
    thread_failures = exercise("pthread-key destructor", NULL);
}

static void *thread_main(void *arg)
{
    (void)arg;
    /* Make sure the thread's last-error slot exists (it is then destroyed at thread exit,
     * before the pthread-key destructors run). */
    stoffel_destroy_vm(NULL);
    if (stoffel_last_error(NULL) == NULL) {
        thread_failures = 1000;
        return NULL;
    }
    pthread_setspecific(key, &key);
    return NULL;
}

/* ---- 2. ---- */
static void at_exit(void)
{
    const char *where = "atexit handler";
    int bad = exercise(where, kept);
    /* The main thread's slot is gone by now: the static message says so. */
    const char *m = stoffel_last_error(NULL);
    EXPECT(m != NULL && strstr(m, "exiting") != NULL);
    stoffel_destroy_vm(kept);
    EXPECT(kept_finalized == 1);
    if (bad != 0) {
        _exit(1);
    }
    printf("exit_time: atexit handler: every call returned its code\n");
    fflush(stdout);
}

int main(void)
{
    stale = stoffel_create_vm();
    CHECK(stale != NULL);
    stoffel_destroy_vm(stale);

    kept = stoffel_create_vm();
    CHECK_OK(kept, stoffel_load_assembly(kept, PROGRAM));
    StoffelValue object;
    CHECK_OK(kept,
             stoffel_register_foreign_object_ex(kept, &kept_finalized, count_finalizer, &object));

    CHECK(pthread_key_create(&key, key_destructor) == 0);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, thread_main, NULL) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK(thread_failures == 0);
    printf("exit_time: pthread-key destructor: every call returned its code\n");

    /* The main thread's slot exists (and is destroyed at exit, before at_exit runs). */
    stoffel_destroy_vm(NULL);
    CHECK_THREAD_ERROR("NULL VM handle");
    CHECK(atexit(at_exit) == 0);
    printf("exit_time: all checks=%ld passed before exit\n", checks_passed);
    fflush(stdout);
    return 0;
}
