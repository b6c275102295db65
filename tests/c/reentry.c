/*
 * reentry.c: calling back into a VM from inside it.
 *  - an _ex callback may execute code, use the heap and collect garbage on the VM that
 *    called it, nested many levels deep; runaway re-entry is a clean error;
 *  - a print callback or a finalizer that calls into its VM gets STOFFEL_ERROR_REENTRANCY
 *    (and reading stoffel_last_error from there works);
 *  - a finalizer runs exactly once: when its object is collected, or at destroy if it is
 *    still reachable;
 *  - stoffel_destroy_vm from inside a callback (or a print callback) is deferred until the
 *    outermost call returns, and is safe.
 * Run by tests/c_api.rs, also under valgrind.
 */
#include "check.h"

static const char *const PROGRAM =
    ".function add(a, b)\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    /* use_heap(x): heap_cb(x) + 1 */
    ".function use_heap(x) registers 3\n"
    "    PUSHARG r0\n"
    "    CALL heap_cb\n"
    "    LDI r1, 1\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    /* down(n): n == 0 ? 0 : down_cb(n), where down_cb(n) = down(n - 1) + 1 */
    ".function down(n) registers 3\n"
    "    MOV r1, r0\n"
    "    LDI r2, 0\n"
    "    CMP r1, r2\n"
    "    JMPEQ zero\n"
    "    PUSHARG r1\n"
    "    CALL down_cb\n"
    "    RET r0\n"
    "zero:\n"
    "    RET r2\n"
    /* forever(): again_cb() re-enters forever() */
    ".function forever\n"
    "    CALL again_cb\n"
    "    RET r0\n"
    /* say(x): print(x); returns 7 */
    ".function say(x) registers 2\n"
    "    PUSHARG r0\n"
    "    CALL print\n"
    "    LDI r1, 7\n"
    "    RET r1\n"
    /* churn(n): allocates n objects (garbage), returns n */
    ".function churn(n) registers 4\n"
    "    MOV r1, r0\n"
    "    LDI r2, 0\n"
    "    LDI r3, 1\n"
    "loop:\n"
    "    CMP r1, r2\n"
    "    JMPEQ done\n"
    "    CALL create_object\n"
    "    SUB r1, r1, r3\n"
    "    JMP loop\n"
    "done:\n"
    "    RET r1\n"
    /* boom(): destroy_cb() */
    ".function boom\n"
    "    CALL destroy_cb\n"
    "    RET r0\n";

/* ---- 1. An _ex callback using the VM that called it. ---- */
static int heap_cb(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                   StoffelValue *result)
{
    int *calls = user_data;
    (*calls)++;
    if (arg_count != 1 || args[0].value_type != STOFFEL_VALUE_INT) {
        return 1;
    }
    /* Execute VM code. */
    StoffelValue sum_args[2] = {args[0], v_int(100)};
    StoffelValue sum;
    if (stoffel_execute_with_args(vm, "add", sum_args, 2, &sum) != STOFFEL_OK) {
        return 2;
    }
    /* Build and read heap values. */
    StoffelValue obj, arr, got;
    StoffelValue key = v_str("sum");
    if (stoffel_create_object(vm, &obj) != STOFFEL_OK || stoffel_create_array(vm, &arr) != 0) {
        return 3;
    }
    if (stoffel_set_field(vm, &obj, &key, &sum) != STOFFEL_OK ||
        stoffel_array_push(vm, &arr, &obj) != STOFFEL_OK) {
        return 4;
    }
    /* Collect garbage while VM code is waiting for us: our ids keep our values alive. */
    if (stoffel_gc_collect(vm) != STOFFEL_OK) {
        return 5;
    }
    StoffelValue zero = v_int(0);
    StoffelValue elem;
    if (stoffel_get_field(vm, &arr, &zero, &elem) != STOFFEL_OK ||
        elem.value_type != STOFFEL_VALUE_OBJECT ||
        stoffel_get_field(vm, &elem, &key, &got) != STOFFEL_OK) {
        return 6;
    }
    StoffelGcStats stats;
    if (stoffel_gc_stats(vm, &stats) != STOFFEL_OK || stats.live_handles < 3) {
        return 7;
    }
    /* A string made and freed inside. */
    StoffelValue s;
    if (stoffel_create_string(vm, "inside", &s) != STOFFEL_OK) {
        return 8;
    }
    stoffel_free_string((char *)s.data.string_val);
    /* An error inside a callback is reported as usual and does not disturb the outer call. */
    StoffelValue ignored;
    if (stoffel_execute(vm, "no_such_function", &ignored) != STOFFEL_ERROR_EXECUTE) {
        return 9;
    }
    const char *m = stoffel_last_error(vm);
    if (m == NULL || strstr(m, "no_such_function") == NULL) {
        return 10;
    }
    stoffel_release_value(vm, &elem);
    stoffel_release_value(vm, &obj);
    stoffel_release_value(vm, &arr);
    *result = got; /* an INT */
    return 0;
}

/* ---- 1b. A callback that replaces itself and reloads the code that called it. ---- */
static int replacement_calls = 0;

static int replacement_cb(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    (void)args;
    (void)arg_count;
    replacement_calls++;
    *result = v_int(2);
    return 0;
}

static int self_replacing_cb(VMHandle vm, void *user_data, const StoffelValue *args,
                             int arg_count, StoffelValue *result)
{
    (void)user_data;
    (void)args;
    (void)arg_count;
    /* Replace this very function while it runs, and redefine its caller. */
    if (stoffel_register_foreign_function(vm, "swap_cb", replacement_cb) != STOFFEL_OK) {
        return 1;
    }
    if (stoffel_load_assembly(vm, ".function swapper\n CALL swap_cb\n LDI r1, 10\n"
                                  " ADD r0, r0, r1\n RET r0\n") != STOFFEL_OK) {
        return 2;
    }
    *result = v_int(1);
    return 0;
}

/* ---- 2. Nested re-entry: down_cb(n) = down(n - 1) + 1. ---- */
static int max_depth_seen = 0;
static int depth_now = 0;

static int down_cb(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                   StoffelValue *result)
{
    (void)user_data;
    if (arg_count != 1) {
        return 1;
    }
    depth_now++;
    if (depth_now > max_depth_seen) {
        max_depth_seen = depth_now;
    }
    StoffelValue n = v_int(args[0].data.int_val - 1);
    StoffelValue r;
    int rc = stoffel_execute_with_args(vm, "down", &n, 1, &r);
    depth_now--;
    if (rc != STOFFEL_OK) {
        return rc;
    }
    *result = v_int(r.data.int_val + 1);
    return 0;
}

/* ---- 3. Runaway re-entry. ---- */
static int again_calls = 0;
static int again_first_failure = 0;
static char again_first_message[256];

static int again_cb(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                    StoffelValue *result)
{
    (void)user_data;
    (void)args;
    (void)arg_count;
    again_calls++;
    int rc = stoffel_execute(vm, "forever", result);
    if (rc != STOFFEL_OK && again_first_failure == 0) {
        again_first_failure = rc;
        const char *m = stoffel_last_error(vm);
        snprintf(again_first_message, sizeof again_first_message, "%s", m ? m : "");
    }
    return rc;
}

/* ---- 4. A print callback calling into its VM. ---- */
static VMHandle print_vm;
static int print_calls = 0;
static int print_execute_rc = 0;
static int print_gc_rc = 0;
static int print_object_rc = 0;
static int print_saw_busy_message = 0;
static char printed[64];

static void print_cb(const char *text, void *user_data)
{
    print_calls++;
    snprintf(printed, sizeof printed, "%s%s", (const char *)user_data, text);
    StoffelValue r;
    print_execute_rc = stoffel_execute(print_vm, "add", &r);
    const char *m = stoffel_last_error(print_vm);
    print_saw_busy_message = m != NULL && strstr(m, "busy") != NULL;
    print_gc_rc = stoffel_gc_collect(print_vm);
    print_object_rc = stoffel_create_object(print_vm, &r);
}

/* ---- 5. Finalizers. ---- */
#define N_THINGS 8
static int things[N_THINGS];
static int finalized[N_THINGS];
static VMHandle finalizer_vm;
static int finalizer_call_rc = 1;

static void count_finalizer(void *object)
{
    int *thing = object;
    finalized[thing - things]++;
}

/* A finalizer that tries to use its VM: refused while the VM is collecting, and an invalid
 * handle while it is being destroyed. */
static void reentrant_finalizer(void *object)
{
    count_finalizer(object);
    StoffelValue r;
    finalizer_call_rc = stoffel_execute(finalizer_vm, "add", &r);
}

/* ---- 6. Destroying the VM from inside its own callback. ---- */
static int destroy_inner_rc = 0;
static int destroy_finalized = 0;

static void destroy_finalizer(void *object)
{
    (void)object;
    destroy_finalized++;
}

static int destroy_cb(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                      StoffelValue *result)
{
    (void)user_data;
    (void)args;
    (void)arg_count;
    stoffel_destroy_vm(vm);
    /* From now on the VM refuses calls, but it is not freed under our feet. */
    StoffelValue r;
    destroy_inner_rc = stoffel_execute(vm, "add", &r);
    stoffel_destroy_vm(vm); /* twice: ignored */
    *result = v_int(7);
    return 0;
}

static VMHandle print_destroy_vm_handle;
static void destroying_print_cb(const char *text, void *user_data)
{
    (void)text;
    (void)user_data;
    stoffel_destroy_vm(print_destroy_vm_handle);
}

static VMHandle new_vm(void)
{
    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
    return vm;
}

int main(void)
{
    StoffelValue r;
    VMHandle vm = new_vm();

    /* ---- 1. ---- */
    int heap_calls = 0;
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "heap_cb", heap_cb, &heap_calls));
    for (int i = 0; i < 50; i++) {
        StoffelValue x = v_int(i);
        CHECK_OK(vm, stoffel_execute_with_args(vm, "use_heap", &x, 1, &r));
        CHECK(r.value_type == STOFFEL_VALUE_INT && r.data.int_val == i + 100 + 1);
    }
    CHECK(heap_calls == 50);
    /* The callback can also be executed directly (its VM is then the caller's). */
    StoffelValue x = v_int(1);
    CHECK_OK(vm, stoffel_execute_with_args(vm, "heap_cb", &x, 1, &r));
    CHECK(r.data.int_val == 101);
    StoffelGcStats stats;
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    CHECK(stats.live_handles == 0);
    /* The error inside the callbacks is the VM's last error. */
    CHECK(strstr(stoffel_last_error(vm), "no_such_function") != NULL);

    /* ---- 1b. ---- */
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "swap_cb", self_replacing_cb, NULL));
    CHECK_OK(vm, stoffel_load_assembly(vm, ".function swapper\n CALL swap_cb\n RET r0\n"));
    CHECK_OK(vm, stoffel_execute(vm, "swapper", &r)); /* the running code finishes as it was */
    CHECK(r.data.int_val == 1 && replacement_calls == 0);
    CHECK_OK(vm, stoffel_execute(vm, "swapper", &r)); /* the new definitions from now on */
    CHECK(r.data.int_val == 12 && replacement_calls == 1);

    /* ---- 2. ---- */
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "down_cb", down_cb, NULL));
    StoffelValue n = v_int(150);
    CHECK_OK(vm, stoffel_execute_with_args(vm, "down", &n, 1, &r));
    CHECK(r.data.int_val == 150);
    CHECK(max_depth_seen == 150 && depth_now == 0);

    /* ---- 3. ---- */
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "again_cb", again_cb, NULL));
    CHECK_ERR(vm, stoffel_execute(vm, "forever", &r), STOFFEL_ERROR_EXECUTE, "again_cb");
    /* The innermost call saw why; each level out reports the callback's code. */
    CHECK(strstr(again_first_message, "re-entered the VM more than") != NULL);
    CHECK(again_calls > 10 && again_calls < 1000);
    CHECK(again_first_failure == STOFFEL_ERROR_LIMIT); /* the refusal is a limit */
    CHECK_VM_WORKS(vm);

    /* ---- 4. ---- */
    print_vm = vm;
    CHECK_OK(vm, stoffel_set_print_callback(vm, print_cb, (void *)"got: "));
    StoffelValue hello = v_str("hello");
    CHECK_OK(vm, stoffel_execute_with_args(vm, "say", &hello, 1, &r)); /* print still works */
    CHECK(r.data.int_val == 7);
    CHECK(print_calls == 1 && strcmp(printed, "got: hello\n") == 0);
    CHECK(print_execute_rc == STOFFEL_ERROR_REENTRANCY);
    CHECK(print_gc_rc == STOFFEL_ERROR_REENTRANCY);
    CHECK(print_object_rc == STOFFEL_ERROR_REENTRANCY);
    CHECK(print_saw_busy_message);
    /* A print inside a nested execution (callback -> execute -> print) is refused too. */
    print_execute_rc = 0;
    CHECK_OK(vm, stoffel_load_assembly(vm, ".function say_via(x)\n PUSHARG r0\n CALL say_cb\n"
                                           " RET r0\n"));
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "say_cb", down_cb, NULL));
    CHECK_OK(vm, stoffel_load_assembly(vm, ".function down(n) registers 2\n PUSHARG r0\n"
                                           " CALL print\n LDI r1, 0\n RET r1\n"));
    StoffelValue five = v_int(5);
    CHECK_OK(vm, stoffel_execute_with_args(vm, "say_via", &five, 1, &r));
    CHECK(print_calls == 2 && strcmp(printed, "got: 4\n") == 0);
    CHECK(print_execute_rc == STOFFEL_ERROR_REENTRANCY);
    CHECK_OK(vm, stoffel_set_print_callback(vm, NULL, NULL));
    CHECK_VM_WORKS(vm);
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    CHECK(stats.live_handles == 0);
    stoffel_destroy_vm(vm);

    /* ---- 5. Finalizers: exactly once. ---- */
    vm = new_vm();
    finalizer_vm = vm;
    StoffelValue f[N_THINGS];
    for (int i = 0; i < N_THINGS; i++) {
        CHECK_OK(vm, stoffel_register_foreign_object_ex(
                         vm, &things[i], i == 3 ? reentrant_finalizer : count_finalizer, &f[i]));
    }
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    CHECK(stats.foreign_objects == N_THINGS);
    /* 0: released, then collected: finalized once, and never again. */
    CHECK_OK(vm, stoffel_release_value(vm, &f[0]));
    CHECK_OK(vm, stoffel_gc_collect(vm));
    CHECK(finalized[0] == 1);
    CHECK_OK(vm, stoffel_gc_collect(vm));
    CHECK_OK(vm, stoffel_gc_collect(vm));
    CHECK(finalized[0] == 1);
    /* 1: id held: collections leave it alone (finalized at destroy). */
    CHECK(finalized[1] == 0);
    /* 2: released but reachable from an object we hold; finalized when that goes. */
    StoffelValue holder;
    CHECK_OK(vm, stoffel_create_object(vm, &holder));
    StoffelValue key = v_str("thing");
    CHECK_OK(vm, stoffel_set_field(vm, &holder, &key, &f[2]));
    CHECK_OK(vm, stoffel_release_value(vm, &f[2]));
    CHECK_OK(vm, stoffel_gc_collect(vm));
    CHECK(finalized[2] == 0);
    void *p = NULL;
    StoffelValue again;
    CHECK_OK(vm, stoffel_get_field(vm, &holder, &key, &again)); /* a new id for it */
    CHECK_OK(vm, stoffel_get_foreign_object(vm, &again, &p));
    CHECK(p == &things[2]);
    CHECK_OK(vm, stoffel_release_value(vm, &again));
    CHECK_OK(vm, stoffel_release_value(vm, &holder));
    CHECK_OK(vm, stoffel_gc_collect(vm));
    CHECK(finalized[2] == 1);
    /* 3: a finalizer that calls into its VM while it collects: refused, finalized once. */
    CHECK_OK(vm, stoffel_release_value(vm, &f[3]));
    CHECK_OK(vm, stoffel_gc_collect(vm));
    CHECK(finalized[3] == 1);
    CHECK(finalizer_call_rc == STOFFEL_ERROR_REENTRANCY);
    CHECK_VM_WORKS(vm);
    /* 4: released, then collected by the VM's own collector during an allocating run. */
    CHECK_OK(vm, stoffel_release_value(vm, &f[4]));
    StoffelValue many = v_int(200000);
    CHECK_OK(vm, stoffel_execute_with_args(vm, "churn", &many, 1, &r));
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    CHECK(stats.collections > 5);
    CHECK(finalized[4] == 1);
    /* 5: retained twice, released twice: finalized only after the last release. */
    CHECK_OK(vm, stoffel_retain_value(vm, &f[5]));
    CHECK_OK(vm, stoffel_release_value(vm, &f[5]));
    CHECK_OK(vm, stoffel_gc_collect(vm));
    CHECK(finalized[5] == 0);
    CHECK_OK(vm, stoffel_release_value(vm, &f[5]));
    CHECK_OK(vm, stoffel_gc_collect(vm));
    CHECK(finalized[5] == 1);
    /* 6: released with no collection before destroy: finalized at destroy. 7: held. */
    CHECK_OK(vm, stoffel_release_value(vm, &f[6]));
    CHECK(finalized[1] == 0 && finalized[6] == 0 && finalized[7] == 0);
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    CHECK(stats.foreign_objects == 3); /* 1, 6, 7 */
    /* The same pointer registered again, with the finalizer that calls into the VM: at
     * destroy that call gets STOFFEL_ERROR_INVALID_VM. */
    StoffelValue late;
    CHECK_OK(vm, stoffel_register_foreign_object_ex(vm, &things[3], reentrant_finalizer, &late));
    finalizer_call_rc = 1;
    stoffel_destroy_vm(vm);
    for (int i = 0; i < N_THINGS; i++) {
        if (i == 3) {
            CHECK(finalized[i] == 2); /* two registrations of the same pointer */
        } else {
            CHECK(finalized[i] == 1);
        }
    }
    CHECK(finalizer_call_rc == STOFFEL_ERROR_INVALID_VM); /* the VM was being destroyed */

    /* ---- 6. Destroy from inside a callback: deferred until the outermost call returns. */
    vm = new_vm();
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "destroy_cb", destroy_cb, NULL));
    StoffelValue doomed;
    CHECK_OK(vm, stoffel_register_foreign_object_ex(vm, &things[0], destroy_finalizer, &doomed));
    StoffelValue kept_obj;
    CHECK_OK(vm, stoffel_create_object(vm, &kept_obj));
    CHECK_OK(vm, stoffel_execute(vm, "boom", &r)); /* the outer call completes normally */
    CHECK(r.value_type == STOFFEL_VALUE_INT && r.data.int_val == 7);
    CHECK(destroy_inner_rc == STOFFEL_ERROR_INVALID_VM);
    CHECK(destroy_finalized == 1); /* destroyed when `boom` returned */
    CHECK_ERR(vm, stoffel_execute(vm, "add", &r), STOFFEL_ERROR_INVALID_VM, "stoffel_execute");
    CHECK_ERR(vm, stoffel_release_value(vm, &kept_obj), STOFFEL_ERROR_INVALID_VM,
              "stoffel_release_value");
    stoffel_destroy_vm(vm); /* already gone: ignored */
    CHECK_THREAD_ERROR("stoffel_destroy_vm");

    /* ... nested deeper: destroy from a callback inside a re-entered execution. */
    vm = new_vm();
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "destroy_cb", destroy_cb, NULL));
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "down_cb", down_cb, NULL));
    CHECK_OK(vm, stoffel_load_assembly(vm, ".function down(n)\n CALL destroy_cb\n RET r0\n"
                                           ".function outer\n LDI r0, 3\n PUSHARG r0\n"
                                           " CALL down_cb\n RET r0\n"));
    destroy_inner_rc = 0;
    CHECK_OK(vm, stoffel_execute(vm, "outer", &r));
    CHECK(r.data.int_val == 8); /* down() = 7, + 1 */
    CHECK(destroy_inner_rc == STOFFEL_ERROR_INVALID_VM);
    CHECK_ERR(vm, stoffel_execute(vm, "add", &r), STOFFEL_ERROR_INVALID_VM, "stoffel_execute");

    /* ... and from a print callback. */
    vm = new_vm();
    print_destroy_vm_handle = vm;
    CHECK_OK(vm, stoffel_set_print_callback(vm, destroying_print_cb, NULL));
    CHECK_OK(vm, stoffel_execute_with_args(vm, "say", &hello, 1, &r));
    CHECK(r.data.int_val == 7);
    CHECK_ERR(vm, stoffel_execute(vm, "add", &r), STOFFEL_ERROR_INVALID_VM, "stoffel_execute");

    printf("reentry: all checks=%ld passed\n", checks_passed);
    return 0;
}
