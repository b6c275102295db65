/*
 * bad_input.c: every C API function with bad input. Each call must return its documented
 * code, leave a message for stoffel_last_error, and leave the VM working.
 *
 * Run by tests/c_api.rs (also under valgrind: none of this may touch freed or foreign
 * memory, and nothing may leak).
 */
#include <limits.h>

#include "check.h"

static const char *const PROGRAM =
    ".function add(a, b)\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    ".function id(x)\n"
    "    RET r0\n"
    ".function make_closure(count) registers 3\n"
    "    LDI r1, \"bump\"\n"
    "    LDI r2, \"count\"\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    CALL create_closure\n"
    "    RET r0\n"
    ".function bump(step) registers 4\n"
    "    MOV r1, r0\n"
    "    LDI r2, \"count\"\n"
    "    PUSHARG r2\n"
    "    CALL get_upvalue\n"
    "    ADD r3, r0, r1\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    CALL set_upvalue\n"
    "    RET r3\n"
    ".function big_u64\n"
    "    LDI r0, 18446744073709551615u64\n"
    "    RET r0\n"
    ".function nul_string\n"
    "    LDI r0, \"a\\0b\"\n"
    "    RET r0\n"
    ".function spin registers 2\n"
    "top:\n"
    "    JMP top\n"
    ".function recurse(n) registers 2\n"
    "    PUSHARG r0\n"
    "    CALL recurse\n"
    "    RET r0\n"
    ".function hog registers 4\n"
    "    CALL create_array\n"
    "    MOV r1, r0\n"
    "    LDI r2, \"a string that takes some room in the heap, repeated many times\"\n"
    "more:\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    CALL array_push\n"
    "    JMP more\n"
    ".function call_cb\n"
    "    CALL cb\n"
    "    RET r0\n";

static int cb_calls = 0;

static int cb(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    (void)args;
    cb_calls++;
    result->value_type = STOFFEL_VALUE_INT;
    result->data.int_val = arg_count;
    return 0;
}

static int cb_ex(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                 StoffelValue *result)
{
    (void)vm;
    (void)user_data;
    return cb(args, arg_count, result);
}

static int bad_tag_result(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    (void)args;
    (void)arg_count;
    int tag = 99;
    memcpy(&result->value_type, &tag, sizeof tag);
    return 0;
}

static int null_string_result(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    (void)args;
    (void)arg_count;
    result->value_type = STOFFEL_VALUE_STRING;
    result->data.string_val = NULL;
    return 0;
}

static int finalized = 0;

static void count_finalizer(void *object)
{
    (void)object;
    finalized++;
}

static int print_lines = 0;

static void count_print(const char *text, void *user_data)
{
    (void)text;
    (void)user_data;
    print_lines++;
}

/* Invalid UTF-8: a lone continuation byte, an overlong encoding, a truncated sequence. */
static const char BAD_UTF8_1[] = {(char)0xff, (char)0xfe, 0};
static const char BAD_UTF8_2[] = {'a', (char)0xc0, (char)0xaf, 0};
static const char BAD_UTF8_3[] = {'x', (char)0xe2, (char)0x82, 0};

/* Every function that takes a VM, called with the bad handle `h`: each must return `code`
 * (STOFFEL_ERROR_NULL for NULL, as StoffelVM; STOFFEL_ERROR_INVALID_VM for any other bad
 * handle) and name itself in the thread's last error. */
static void check_invalid_vm(VMHandle h, VMHandle good, int code)
{
    StoffelValue r;
    StoffelValue obj;
    CHECK_OK(good, stoffel_create_object(good, &obj)); /* a real id of another VM */
    StoffelValue k = v_str("k");
    StoffelValue one = v_int(1);
    size_t len = 0;
    void *ptr = NULL;
    int dummy = 0;
    uint8_t bytes[4] = {0};
    StoffelGcStats stats;

#define INVALID(call, name) CHECK_ERR(h, call, code, name)
    INVALID(stoffel_register_foreign_function(h, "f", cb), "stoffel_register_foreign_function");
    INVALID(stoffel_register_foreign_function_ex(h, "f", cb_ex, NULL),
            "stoffel_register_foreign_function_ex");
    INVALID(stoffel_register_foreign_object(h, &dummy, &r), "stoffel_register_foreign_object");
    INVALID(stoffel_register_foreign_object_ex(h, &dummy, count_finalizer, &r),
            "stoffel_register_foreign_object_ex");
    INVALID(stoffel_get_foreign_object(h, &obj, &ptr), "stoffel_get_foreign_object");
    INVALID(stoffel_create_string(h, "s", &r), "stoffel_create_string");
    INVALID(stoffel_release_value(h, &obj), "stoffel_release_value");
    INVALID(stoffel_retain_value(h, &obj), "stoffel_retain_value");
    INVALID(stoffel_create_object(h, &r), "stoffel_create_object");
    INVALID(stoffel_create_array(h, &r), "stoffel_create_array");
    INVALID(stoffel_get_field(h, &obj, &k, &r), "stoffel_get_field");
    INVALID(stoffel_set_field(h, &obj, &k, &one), "stoffel_set_field");
    INVALID(stoffel_array_length(h, &obj, &len), "stoffel_array_length");
    INVALID(stoffel_array_push(h, &obj, &one), "stoffel_array_push");
    INVALID(stoffel_call_closure(h, &obj, &one, 1, &r), "stoffel_call_closure");
    INVALID(stoffel_load_bytecode(h, bytes, sizeof bytes), "stoffel_load_bytecode");
    INVALID(stoffel_load_assembly(h, ".function f\n RET r0\n"), "stoffel_load_assembly");
    INVALID(stoffel_execute(h, "add", &r), "stoffel_execute");
    INVALID(stoffel_execute_with_args(h, "add", &one, 1, &r), "stoffel_execute_with_args");
    INVALID(stoffel_set_instruction_limit(h, 10), "stoffel_set_instruction_limit");
    INVALID(stoffel_set_max_call_depth(h, 10), "stoffel_set_max_call_depth");
    INVALID(stoffel_set_memory_limit(h, 10), "stoffel_set_memory_limit");
    INVALID(stoffel_set_local_storage(h, "/tmp"), "stoffel_set_local_storage");
    INVALID(stoffel_gc_collect(h), "stoffel_gc_collect");
    INVALID(stoffel_gc_stats(h, &stats), "stoffel_gc_stats");
    INVALID(stoffel_set_print_callback(h, count_print, NULL), "stoffel_set_print_callback");
    INVALID(stoffel_execute_start(h, "add", &one, 1, 10, &r), "stoffel_execute_start");
    INVALID(stoffel_resume(h, 10, &r), "stoffel_resume");
    INVALID(stoffel_cancel(h), "stoffel_cancel");
#undef INVALID
    CHECK(finalized == 0); /* nothing was registered, so nothing is finalized */

    /* stoffel_destroy_vm ignores the handle and says so. */
    stoffel_destroy_vm(h);
    CHECK_THREAD_ERROR("stoffel_destroy_vm");

    /* The good VM was not disturbed. */
    CHECK_OK(good, stoffel_release_value(good, &obj));
    CHECK_VM_WORKS(good);
}

/* Every function taking a StoffelValue, given a value with type tag `tag`. */
static void check_bad_tag(VMHandle vm, int tag)
{
    StoffelValue bad = v_tag(tag, 1);
    StoffelValue obj, arr, r;
    CHECK_OK(vm, stoffel_create_object(vm, &obj));
    CHECK_OK(vm, stoffel_create_array(vm, &arr));
    StoffelValue k = v_str("k");
    StoffelValue one = v_int(1);
    size_t len = 0;
    void *ptr = NULL;

    CHECK_ERR(vm, stoffel_release_value(vm, &bad), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_retain_value(vm, &bad), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_get_field(vm, &bad, &k, &r), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_get_field(vm, &obj, &bad, &r), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_set_field(vm, &bad, &k, &one), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_set_field(vm, &obj, &bad, &one), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_set_field(vm, &obj, &k, &bad), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_array_length(vm, &bad, &len), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_array_push(vm, &bad, &one), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_array_push(vm, &arr, &bad), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_get_foreign_object(vm, &bad, &ptr), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_call_closure(vm, &bad, NULL, 0, &r), STOFFEL_ERROR_TYPE, "type tag");
    CHECK_ERR(vm, stoffel_call_closure(vm, &obj, &bad, 1, &r), STOFFEL_ERROR_ARGUMENT, "type tag");
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "id", &bad, 1, &r), STOFFEL_ERROR_ARGUMENT,
              "type tag");
    StoffelValue two[2] = {v_int(1), bad};
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "add", two, 2, &r), STOFFEL_ERROR_ARGUMENT,
              "argument 1");

    /* Nothing was stored. */
    CHECK_OK(vm, stoffel_array_length(vm, &arr, &len));
    CHECK(len == 0);
    CHECK_OK(vm, stoffel_get_field(vm, &obj, &k, &r));
    CHECK(r.value_type == STOFFEL_VALUE_UNIT);
    CHECK_OK(vm, stoffel_release_value(vm, &obj));
    CHECK_OK(vm, stoffel_release_value(vm, &arr));
    CHECK_VM_WORKS(vm);
}

/* Every function taking a name or string, given invalid UTF-8 `bad`. */
static void check_bad_utf8(VMHandle vm, const char *bad)
{
    StoffelValue r, obj, arr;
    CHECK_OK(vm, stoffel_create_object(vm, &obj));
    CHECK_OK(vm, stoffel_create_array(vm, &arr));
    StoffelValue bad_value = v_str(bad);
    StoffelValue k = v_str("k");
    StoffelValue one = v_int(1);

    CHECK_ERR(vm, stoffel_register_foreign_function(vm, bad, cb), STOFFEL_ERROR_UTF8, "UTF-8");
    CHECK_ERR(vm, stoffel_register_foreign_function_ex(vm, bad, cb_ex, NULL), STOFFEL_ERROR_UTF8,
              "UTF-8");
    CHECK_ERR(vm, stoffel_create_string(vm, bad, &r), STOFFEL_ERROR_UTF8, "UTF-8");
    CHECK_ERR(vm, stoffel_load_assembly(vm, bad), STOFFEL_ERROR_UTF8, "UTF-8");
    CHECK_ERR(vm, stoffel_execute(vm, bad, &r), STOFFEL_ERROR_UTF8, "UTF-8");
    CHECK_ERR(vm, stoffel_execute_with_args(vm, bad, &one, 1, &r), STOFFEL_ERROR_UTF8, "UTF-8");
    /* ... as a STRING value */
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "id", &bad_value, 1, &r), STOFFEL_ERROR_ARGUMENT,
              "UTF-8");
    CHECK_ERR(vm, stoffel_call_closure(vm, &obj, &bad_value, 1, &r), STOFFEL_ERROR_ARGUMENT,
              "UTF-8");
    CHECK_ERR(vm, stoffel_set_field(vm, &obj, &bad_value, &one), STOFFEL_ERROR_UTF8, "UTF-8");
    CHECK_ERR(vm, stoffel_set_field(vm, &obj, &k, &bad_value), STOFFEL_ERROR_UTF8, "UTF-8");
    CHECK_ERR(vm, stoffel_get_field(vm, &obj, &bad_value, &r), STOFFEL_ERROR_UTF8, "UTF-8");
    CHECK_ERR(vm, stoffel_array_push(vm, &arr, &bad_value), STOFFEL_ERROR_UTF8, "UTF-8");
    CHECK_ERR(vm, stoffel_release_value(vm, &bad_value), STOFFEL_ERROR_UTF8, "UTF-8");
    CHECK_ERR(vm, stoffel_retain_value(vm, &bad_value), STOFFEL_ERROR_UTF8, "UTF-8");

    size_t len = 99;
    CHECK_OK(vm, stoffel_array_length(vm, &arr, &len));
    CHECK(len == 0);
    CHECK_OK(vm, stoffel_release_value(vm, &obj));
    CHECK_OK(vm, stoffel_release_value(vm, &arr));
    CHECK_VM_WORKS(vm);
}

/* Every function taking an id, given `bad` (a stale, forged, zero or other VM's id) of
 * `type`; all must fail with STOFFEL_ERROR_INVALID_HANDLE and a message containing
 * `needle`. */
static void check_bad_id(VMHandle vm, StoffelValueType type, size_t id, const char *needle)
{
    StoffelValue bad = v_id(type, id);
    StoffelValue r, obj, arr;
    CHECK_OK(vm, stoffel_create_object(vm, &obj));
    CHECK_OK(vm, stoffel_create_array(vm, &arr));
    StoffelValue k = v_str("k");
    StoffelValue one = v_int(1);
    size_t len = 0;
    void *ptr = NULL;
    const int H = STOFFEL_ERROR_INVALID_HANDLE;

    CHECK_ERR(vm, stoffel_release_value(vm, &bad), H, needle);
    CHECK_ERR(vm, stoffel_retain_value(vm, &bad), H, needle);
    CHECK_ERR(vm, stoffel_get_field(vm, &bad, &k, &r), H, needle);
    CHECK_ERR(vm, stoffel_get_field(vm, &obj, &bad, &r), H, needle);
    CHECK_ERR(vm, stoffel_set_field(vm, &bad, &k, &one), H, needle);
    CHECK_ERR(vm, stoffel_set_field(vm, &obj, &bad, &one), H, needle);
    CHECK_ERR(vm, stoffel_set_field(vm, &obj, &k, &bad), H, needle);
    CHECK_ERR(vm, stoffel_array_length(vm, &bad, &len), H, needle);
    CHECK_ERR(vm, stoffel_array_push(vm, &bad, &one), H, needle);
    CHECK_ERR(vm, stoffel_array_push(vm, &arr, &bad), H, needle);
    CHECK_ERR(vm, stoffel_call_closure(vm, &bad, NULL, 0, &r), H, needle);
    CHECK_ERR(vm, stoffel_call_closure(vm, &obj, &bad, 1, &r), H, needle);
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "id", &bad, 1, &r), H, needle);
    /* ... also when the function called is a C function, which never looks at the id. */
    cb_calls = 0;
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "cb", &bad, 1, &r), H, needle);
    CHECK(cb_calls == 0);
    if (type == STOFFEL_VALUE_FOREIGN) {
        CHECK_ERR(vm, stoffel_get_foreign_object(vm, &bad, &ptr), H, needle);
    }

    CHECK_OK(vm, stoffel_array_length(vm, &arr, &len));
    CHECK(len == 0);
    CHECK_OK(vm, stoffel_release_value(vm, &obj));
    CHECK_OK(vm, stoffel_release_value(vm, &arr));
    CHECK_VM_WORKS(vm);
}

int main(void)
{
    VMHandle vm = stoffel_create_vm();
    VMHandle other = stoffel_create_vm();
    CHECK(vm != NULL && other != NULL && vm != other);
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
    CHECK_OK(other, stoffel_load_assembly(other, PROGRAM));
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "cb", cb));
    CHECK_VM_WORKS(vm);

    /* No error yet: stoffel_last_error is NULL. */
    CHECK(stoffel_last_error(vm) == NULL);

    /* ---- 1. Invalid VM handles: NULL, destroyed, forged. ---- */
    VMHandle dead = stoffel_create_vm();
    CHECK(dead != NULL);
    stoffel_destroy_vm(dead);
    /* (No VM is created from here on until the checks with `dead` are done, so its address
     * cannot be reused by a new VM.) */
    check_invalid_vm(NULL, vm, STOFFEL_ERROR_NULL);
    check_invalid_vm(dead, vm, STOFFEL_ERROR_INVALID_VM);
    check_invalid_vm((VMHandle)(uintptr_t)0x1234, vm, STOFFEL_ERROR_INVALID_VM);
    /* a real address that is not a VM */
    check_invalid_vm((VMHandle)&cb_calls, vm, STOFFEL_ERROR_INVALID_VM);
    CHECK(stoffel_last_error(dead) != NULL);   /* the thread's last error */
    stoffel_destroy_vm(dead);                   /* destroying twice is ignored */
    CHECK_THREAD_ERROR("stoffel_destroy_vm");
    stoffel_destroy_vm(NULL); /* a no-op */

    /* A destroyed VM's storage is reused by the next VM: its old handle stays invalid, also
     * right after this thread used it (the gate remembers the last VM a thread used). */
    {
        VMHandle first = stoffel_create_vm();
        CHECK_OK(first, stoffel_load_assembly(first, PROGRAM));
        CHECK_VM_WORKS(first);
        stoffel_destroy_vm(first);
        VMHandle second = stoffel_create_vm();
        CHECK(second != NULL && second != first);
        check_invalid_vm(first, vm, STOFFEL_ERROR_INVALID_VM);
        CHECK_OK(second, stoffel_load_assembly(second, PROGRAM));
        CHECK_VM_WORKS(second);
        check_invalid_vm(first, vm, STOFFEL_ERROR_INVALID_VM);
        CHECK_VM_WORKS(second);
        stoffel_destroy_vm(second);
        check_invalid_vm(second, vm, STOFFEL_ERROR_INVALID_VM);
    }

    /* ---- 2. NULL pointers. ---- */
    StoffelValue r, obj, arr, closure, foreign;
    int host_thing = 7;
    StoffelValue k = v_str("k");
    StoffelValue one = v_int(1);
    StoffelValue args2[2] = {v_int(1), v_int(2)};
    size_t len = 0;
    void *ptr = NULL;
    const int N = STOFFEL_ERROR_NULL;
    CHECK_OK(vm, stoffel_create_object(vm, &obj));
    CHECK_OK(vm, stoffel_create_array(vm, &arr));
    CHECK_OK(vm, stoffel_execute_with_args(vm, "make_closure", &one, 1, &closure));
    CHECK(closure.value_type == STOFFEL_VALUE_CLOSURE);
    CHECK_OK(vm, stoffel_register_foreign_object_ex(vm, &host_thing, count_finalizer, &foreign));

    CHECK_ERR(vm, stoffel_register_foreign_function(vm, NULL, cb), N, "NULL");
    CHECK_ERR(vm, stoffel_register_foreign_function(vm, "f", NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_register_foreign_function_ex(vm, NULL, cb_ex, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_register_foreign_function_ex(vm, "f", NULL, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_execute(vm, "f", &r), STOFFEL_ERROR_EXECUTE, "not found");
    CHECK_ERR(vm, stoffel_register_foreign_object(vm, NULL, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_register_foreign_object(vm, &host_thing, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_register_foreign_object_ex(vm, NULL, count_finalizer, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_register_foreign_object_ex(vm, &host_thing, count_finalizer, NULL), N,
              "NULL");
    CHECK_ERR(vm, stoffel_get_foreign_object(vm, NULL, &ptr), N, "NULL");
    CHECK_ERR(vm, stoffel_get_foreign_object(vm, &foreign, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_create_string(vm, NULL, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_create_string(vm, "s", NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_release_value(vm, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_retain_value(vm, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_create_object(vm, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_create_array(vm, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_get_field(vm, NULL, &k, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_get_field(vm, &obj, NULL, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_get_field(vm, &obj, &k, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_set_field(vm, NULL, &k, &one), N, "NULL");
    CHECK_ERR(vm, stoffel_set_field(vm, &obj, NULL, &one), N, "NULL");
    CHECK_ERR(vm, stoffel_set_field(vm, &obj, &k, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_array_length(vm, NULL, &len), N, "NULL");
    CHECK_ERR(vm, stoffel_array_length(vm, &arr, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_array_push(vm, NULL, &one), N, "NULL");
    CHECK_ERR(vm, stoffel_array_push(vm, &arr, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_call_closure(vm, NULL, &one, 1, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_call_closure(vm, &closure, NULL, 1, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_call_closure(vm, &closure, &one, 1, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_load_bytecode(vm, NULL, 16), N, "NULL");
    CHECK_ERR(vm, stoffel_load_bytecode(vm, NULL, SIZE_MAX), N, "NULL");
    CHECK_ERR(vm, stoffel_load_assembly(vm, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_execute(vm, NULL, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_execute(vm, "add", NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_execute_with_args(vm, NULL, args2, 2, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "add", NULL, 2, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "add", args2, 2, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_gc_stats(vm, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_set_max_call_depth(vm, 0), N, "at least 1");
    /* Time slices: the execute checks, then the state checks; nothing stays suspended. */
    CHECK_ERR(vm, stoffel_execute_start(vm, NULL, args2, 2, 10, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_execute_start(vm, "add", NULL, 2, 10, &r), N, "NULL");
    CHECK_ERR(vm, stoffel_execute_start(vm, "add", args2, 2, 10, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_execute_start(vm, "add", args2, -1, 10, &r), N, "");
    CHECK_ERR(vm, stoffel_execute_start(vm, "add", args2, 1, 10, &r),
              STOFFEL_ERROR_EXECUTE_WITH_ARGS, "expects 2");
    CHECK_ERR(vm, stoffel_execute_start(vm, "no_such", args2, 2, 10, &r),
              STOFFEL_ERROR_EXECUTE_WITH_ARGS, "not found");
    CHECK_ERR(vm, stoffel_resume(vm, 10, NULL), N, "NULL");
    CHECK_ERR(vm, stoffel_resume(vm, 10, &r), STOFFEL_ERROR_STATE, "no execution is suspended");
    CHECK_ERR(vm, stoffel_cancel(vm), STOFFEL_ERROR_STATE, "no execution is suspended");
    CHECK(stoffel_execute_start(vm, "add", args2, 2, 0, &r) == STOFFEL_SUSPENDED);
    CHECK(r.value_type == STOFFEL_VALUE_UNIT);
    CHECK_ERR(vm, stoffel_execute_start(vm, "add", args2, 2, 10, &r), STOFFEL_ERROR_STATE,
              "already suspended");
    CHECK_ERR(vm, stoffel_resume(vm, 10, NULL), N, "NULL");
    CHECK_VM_WORKS(vm);
    CHECK(stoffel_resume(vm, 10, &r) == STOFFEL_OK && r.value_type == STOFFEL_VALUE_INT);
    CHECK(stoffel_execute_start(vm, "add", args2, 2, 1, &r) == STOFFEL_SUSPENDED);
    CHECK_OK(vm, stoffel_cancel(vm));
    /* A STRING value whose pointer is NULL. */
    StoffelValue null_string = v_str(NULL);
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "id", &null_string, 1, &r),
              STOFFEL_ERROR_ARGUMENT, "NULL");
    CHECK_ERR(vm, stoffel_set_field(vm, &obj, &k, &null_string), N, "NULL");
    CHECK_ERR(vm, stoffel_array_push(vm, &arr, &null_string), N, "NULL");
    /* NULL where NULL is allowed: no arguments, no finalizer, user_data, print callback. */
    CHECK_OK(vm, stoffel_execute_with_args(vm, "call_cb", NULL, 0, &r));
    CHECK(r.value_type == STOFFEL_VALUE_INT && r.data.int_val == 0);
    /* (NULL args with count 0 reach the closure, which wants its one argument.) */
    CHECK_ERR(vm, stoffel_call_closure(vm, &closure, NULL, 0, &r),
              STOFFEL_ERROR_EXECUTE_WITH_ARGS, "expects 1 argument");
    CHECK_ERR(vm, stoffel_execute(vm, "cb_ex_null", &r), STOFFEL_ERROR_EXECUTE, "not found");
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "cb_ex_null", cb_ex, NULL));
    CHECK_OK(vm, stoffel_execute(vm, "cb_ex_null", &r));
    StoffelValue no_finalizer;
    CHECK_OK(vm, stoffel_register_foreign_object_ex(vm, &host_thing, NULL, &no_finalizer));
    CHECK_OK(vm, stoffel_get_foreign_object(vm, &no_finalizer, &ptr));
    CHECK(ptr == &host_thing);
    CHECK_OK(vm, stoffel_release_value(vm, &no_finalizer));
    CHECK_OK(vm, stoffel_set_print_callback(vm, NULL, NULL));
    CHECK(finalized == 0);
    CHECK_VM_WORKS(vm);

    /* ---- 3. Argument counts: negative, huge, just above the maximum; the maximum works. */
    int bad_counts[] = {-1, -2, INT_MIN, STOFFEL_MAX_ARGS + 1, 100000, INT_MAX};
    for (size_t i = 0; i < sizeof bad_counts / sizeof bad_counts[0]; i++) {
        CHECK_ERR(vm, stoffel_execute_with_args(vm, "add", args2, bad_counts[i], &r), N,
                  "arg_count");
        CHECK_ERR(vm, stoffel_execute_with_args(vm, "cb", args2, bad_counts[i], &r), N,
                  "arg_count");
        CHECK_ERR(vm, stoffel_call_closure(vm, &closure, args2, bad_counts[i], &r), N,
                  "arg_count");
    }
    {
        static StoffelValue many[STOFFEL_MAX_ARGS];
        for (int i = 0; i < STOFFEL_MAX_ARGS; i++) {
            many[i] = v_int(i);
        }
        cb_calls = 0;
        CHECK_OK(vm, stoffel_execute_with_args(vm, "cb", many, STOFFEL_MAX_ARGS, &r));
        CHECK(cb_calls == 1 && r.data.int_val == STOFFEL_MAX_ARGS);
        /* A bytecode function needs exactly its parameter count (or none). */
        CHECK_ERR(vm, stoffel_execute_with_args(vm, "add", many, 3, &r),
                  STOFFEL_ERROR_EXECUTE_WITH_ARGS, "add");
        CHECK_ERR(vm, stoffel_execute_with_args(vm, "add", many, 1, &r),
                  STOFFEL_ERROR_EXECUTE_WITH_ARGS, "add");
    }
    CHECK_VM_WORKS(vm);

    /* ---- 4. Type tags outside 0..8. ---- */
    int bad_tags[] = {9, 10, -1, 255, 256, 1000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof bad_tags / sizeof bad_tags[0]; i++) {
        check_bad_tag(vm, bad_tags[i]);
    }
    /* A callback writing a bad tag (or a NULL string) fails the execution. */
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "bad_tag_result", bad_tag_result));
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "null_string_result", null_string_result));
    CHECK_ERR(vm, stoffel_execute(vm, "bad_tag_result", &r), STOFFEL_ERROR_EXECUTE, "type tag");
    CHECK_ERR(vm, stoffel_execute(vm, "null_string_result", &r), STOFFEL_ERROR_EXECUTE, "NULL");
    CHECK_VM_WORKS(vm);

    /* ---- 5. bool_val other than 0 / 1: any non-zero int is true; only the int is read. */
    {
        int bools[] = {256, -1, 2, INT_MIN, 1};
        for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
            StoffelValue b = v_bool(bools[i]);
            CHECK_OK(vm, stoffel_execute_with_args(vm, "id", &b, 1, &r));
            CHECK(r.value_type == STOFFEL_VALUE_BOOL && r.data.bool_val == 1);
            CHECK(r.data.int_val == 1); /* all 8 bytes written */
        }
        StoffelValue f = v_tag(STOFFEL_VALUE_BOOL, (int64_t)1 << 40); /* bool_val bits are 0 */
        CHECK_OK(vm, stoffel_execute_with_args(vm, "id", &f, 1, &r));
        CHECK(r.value_type == STOFFEL_VALUE_BOOL && r.data.int_val == 0);
        /* Stored in an object, read back. */
        StoffelValue b = v_bool(256);
        CHECK_OK(vm, stoffel_set_field(vm, &obj, &k, &b));
        CHECK_OK(vm, stoffel_get_field(vm, &obj, &k, &r));
        CHECK(r.value_type == STOFFEL_VALUE_BOOL && r.data.int_val == 1);
    }

    /* ---- 6. Invalid UTF-8 names and strings. ---- */
    check_bad_utf8(vm, BAD_UTF8_1);
    check_bad_utf8(vm, BAD_UTF8_2);
    check_bad_utf8(vm, BAD_UTF8_3);
    /* Valid non-ASCII UTF-8 is fine, names included. */
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "gr\xc3\xbc\xc3\x9f" "e", cb));
    CHECK_OK(vm, stoffel_execute(vm, "gr\xc3\xbc\xc3\x9f" "e", &r));

    /* ---- 7. Ids: released, double release, zero, forged, of another VM, wrong kind. ---- */
    {
        StoffelValue gone;
        CHECK_OK(vm, stoffel_create_object(vm, &gone));
        StoffelValue alias = gone;
        CHECK_OK(vm, stoffel_release_value(vm, &gone));
        CHECK_ERR(vm, stoffel_release_value(vm, &alias), STOFFEL_ERROR_INVALID_HANDLE,
                  "not live in this VM");
        check_bad_id(vm, STOFFEL_VALUE_OBJECT, gone.data.object_id, "not live in this VM");
        /* A new object does not bring the dead id back. */
        StoffelValue fresh;
        CHECK_OK(vm, stoffel_create_object(vm, &fresh));
        CHECK(fresh.data.object_id != gone.data.object_id);
        check_bad_id(vm, STOFFEL_VALUE_OBJECT, gone.data.object_id, "not live in this VM");
        CHECK_OK(vm, stoffel_release_value(vm, &fresh));

        /* Every kind of id, released. */
        StoffelValue a2, c2, f2;
        CHECK_OK(vm, stoffel_create_array(vm, &a2));
        CHECK_OK(vm, stoffel_release_value(vm, &a2));
        check_bad_id(vm, STOFFEL_VALUE_ARRAY, a2.data.array_id, "not live in this VM");
        CHECK_OK(vm, stoffel_execute_with_args(vm, "make_closure", &one, 1, &c2));
        CHECK_OK(vm, stoffel_release_value(vm, &c2));
        check_bad_id(vm, STOFFEL_VALUE_CLOSURE, c2.data.closure_id, "not live in this VM");
        CHECK_OK(vm, stoffel_register_foreign_object(vm, &host_thing, &f2));
        CHECK_OK(vm, stoffel_release_value(vm, &f2));
        check_bad_id(vm, STOFFEL_VALUE_FOREIGN, f2.data.foreign_id, "not live in this VM");

        /* Id 0 names nothing. */
        check_bad_id(vm, STOFFEL_VALUE_OBJECT, 0, "value id 0 names nothing");
        check_bad_id(vm, STOFFEL_VALUE_CLOSURE, 0, "value id 0 names nothing");
        check_bad_id(vm, STOFFEL_VALUE_FOREIGN, 0, "value id 0 names nothing");

        /* Forged ids. */
        /* (Ids count up from 1 across the process; this program issues far fewer than
         * these, so none of them can be live here.) */
        check_bad_id(vm, STOFFEL_VALUE_OBJECT, 0x12345678, "not live in this VM");
        check_bad_id(vm, STOFFEL_VALUE_ARRAY, SIZE_MAX, "not live in this VM");
        check_bad_id(vm, STOFFEL_VALUE_ARRAY, SIZE_MAX - 1, "not live in this VM");
        check_bad_id(vm, STOFFEL_VALUE_OBJECT, obj.data.object_id + 10000000,
                     "not live in this VM");
        check_bad_id(vm, STOFFEL_VALUE_OBJECT, obj.data.object_id ^ ((size_t)1 << 30),
                     "not live in this VM");

        /* An id of another VM (live there) is refused here, and still works there. */
        StoffelValue theirs;
        CHECK_OK(other, stoffel_create_object(other, &theirs));
        check_bad_id(vm, STOFFEL_VALUE_OBJECT, theirs.data.object_id, "not live in this VM");
        CHECK_OK(other, stoffel_set_field(other, &theirs, &k, &one));
        CHECK_OK(other, stoffel_release_value(other, &theirs));

        /* A live id with the wrong kind tag. */
        StoffelValue as_array = v_id(STOFFEL_VALUE_ARRAY, obj.data.object_id);
        CHECK_ERR(vm, stoffel_array_push(vm, &as_array, &one), STOFFEL_ERROR_INVALID_HANDLE,
                  "expected");
        CHECK_ERR(vm, stoffel_execute_with_args(vm, "id", &as_array, 1, &r),
                  STOFFEL_ERROR_INVALID_HANDLE, "expected");
        StoffelValue as_foreign = v_id(STOFFEL_VALUE_FOREIGN, obj.data.object_id);
        CHECK_ERR(vm, stoffel_get_foreign_object(vm, &as_foreign, &ptr),
                  STOFFEL_ERROR_INVALID_HANDLE, "expected");
        StoffelValue as_closure = v_id(STOFFEL_VALUE_CLOSURE, arr.data.array_id);
        CHECK_ERR(vm, stoffel_call_closure(vm, &as_closure, NULL, 0, &r),
                  STOFFEL_ERROR_INVALID_HANDLE, "expected");
        /* Wrong type for the call. */
        CHECK_ERR(vm, stoffel_get_foreign_object(vm, &obj, &ptr), STOFFEL_ERROR_TYPE, "FOREIGN");
        CHECK_ERR(vm, stoffel_array_length(vm, &obj, &len), STOFFEL_ERROR_TYPE, "array");
        CHECK_ERR(vm, stoffel_array_push(vm, &obj, &one), STOFFEL_ERROR_TYPE, "array");
        CHECK_ERR(vm, stoffel_set_field(vm, &one, &k, &one), STOFFEL_ERROR_TYPE, "object");
        CHECK_ERR(vm, stoffel_call_closure(vm, &obj, NULL, 0, &r),
                  STOFFEL_ERROR_EXECUTE_WITH_ARGS, "closure");
        /* get_field on a non-container is UNIT, as the builtin. */
        CHECK_OK(vm, stoffel_get_field(vm, &one, &k, &r));
        CHECK(r.value_type == STOFFEL_VALUE_UNIT && r.data.int_val == 0);
        /* Values without ids need no release. */
        CHECK_OK(vm, stoffel_release_value(vm, &one));
        CHECK_OK(vm, stoffel_retain_value(vm, &one));
        CHECK_VM_WORKS(vm);
    }

    /* ---- 8. stoffel_free_string on pointers the VM did not hand out, and twice. ---- */
    {
        static char not_ours[] = "not a VM string";
        stoffel_free_string(not_ours);
        CHECK_THREAD_ERROR("stoffel_free_string");
        CHECK(strcmp(not_ours, "not a VM string") == 0);
        char on_stack[8] = "stack";
        stoffel_free_string(on_stack);
        CHECK(strcmp(on_stack, "stack") == 0);
        char *mine = malloc(16);
        CHECK(mine != NULL);
        strcpy(mine, "malloc'd by C");
        stoffel_free_string(mine); /* not freed by the VM... */
        CHECK(strcmp(mine, "malloc'd by C") == 0);
        free(mine); /* ...so C frees it (valgrind: no double free) */

        StoffelValue s;
        CHECK_OK(vm, stoffel_create_string(vm, "twice", &s));
        stoffel_free_string((char *)s.data.string_val + 1); /* inside the string: ignored */
        CHECK(strcmp(s.data.string_val, "twice") == 0);
        stoffel_free_string((char *)s.data.string_val);
        stoffel_free_string((char *)s.data.string_val); /* double free: ignored */
        CHECK_THREAD_ERROR("already freed");
        stoffel_free_string(NULL); /* a no-op */

        /* A STRING result, freed twice. */
        StoffelValue hello = v_str("hello");
        CHECK_OK(vm, stoffel_execute_with_args(vm, "id", &hello, 1, &r));
        CHECK(r.value_type == STOFFEL_VALUE_STRING && strcmp(r.data.string_val, "hello") == 0);
        CHECK(r.data.string_val != hello.data.string_val); /* a copy */
        stoffel_free_string((char *)r.data.string_val);
        stoffel_free_string((char *)r.data.string_val);
        CHECK_VM_WORKS(vm);
    }

    /* ---- 9. Results C cannot represent; unknown functions; parse errors. ---- */
    CHECK_ERR(vm, stoffel_execute(vm, "big_u64", &r), STOFFEL_ERROR_RESULT, "int64_t");
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "big_u64", NULL, 0, &r),
              STOFFEL_ERROR_RESULT_WITH_ARGS, "int64_t");
    CHECK_ERR(vm, stoffel_execute(vm, "nul_string", &r), STOFFEL_ERROR_RESULT, "NUL");
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "nul_string", NULL, 0, &r),
              STOFFEL_ERROR_RESULT_WITH_ARGS, "NUL");
    CHECK_ERR(vm, stoffel_execute(vm, "missing", &r), STOFFEL_ERROR_EXECUTE, "missing");
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "missing", args2, 2, &r),
              STOFFEL_ERROR_EXECUTE_WITH_ARGS, "missing");
    {
        const uint8_t garbage[] = {'S', 'T', 'F', 'L', 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
        CHECK_ERR(vm, stoffel_load_bytecode(vm, garbage, sizeof garbage), STOFFEL_ERROR_PARSE,
                  "version");
        CHECK_ERR(vm, stoffel_load_bytecode(vm, garbage, 0), STOFFEL_ERROR_PARSE, "truncated");
        CHECK_ERR(vm, stoffel_load_bytecode(vm, (const uint8_t *)"hello", 5),
                  STOFFEL_ERROR_PARSE, "magic");
        /* Bytes that decode but a function that does not hold together: StoffelVM's -3
         * ("function registration failed"), here STOFFEL_ERROR_INVALID_FUNCTION. One v1
         * function `f`: JMP to the label "x", which it does not define. */
        const uint8_t unknown_label[] = {'S', 'T', 'F', 'L', 1, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                                         1, 0, 'f', 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                                         0x0e, 1, 0, 'x'};
        CHECK_ERR(vm, stoffel_load_bytecode(vm, unknown_label, sizeof unknown_label),
                  STOFFEL_ERROR_INVALID_FUNCTION, "label");
        /* The same function with LDI r0, constant 5 of an empty pool. */
        const uint8_t bad_constant[] = {'S', 'T', 'F', 'L', 1, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                                        1, 0, 'f', 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                                        0x01, 0, 0, 0, 0, 5, 0, 0, 0};
        CHECK_ERR(vm, stoffel_load_bytecode(vm, bad_constant, sizeof bad_constant),
                  STOFFEL_ERROR_INVALID_FUNCTION, "constant");
        CHECK_ERR(vm, stoffel_load_assembly(vm, ".function f\n    ADD r1\n"),
                  STOFFEL_ERROR_PARSE, "line 2");
        CHECK_ERR(vm, stoffel_load_assembly(vm, "NOP\n"), STOFFEL_ERROR_PARSE, "line 1");
        /* A failed load changes nothing. */
        CHECK_ERR(vm, stoffel_load_assembly(vm, ".function add\n RET r0\n.function x\n BAD\n"),
                  STOFFEL_ERROR_PARSE, "line 4");
        CHECK_VM_WORKS(vm);
    }

    /* ---- 10. Limits: each is an error code with a message; the VM stays usable. ---- */
    CHECK_OK(vm, stoffel_set_instruction_limit(vm, 10000));
    CHECK_ERR(vm, stoffel_execute(vm, "spin", &r), STOFFEL_ERROR_LIMIT, "instruction limit");
    CHECK_VM_WORKS(vm);
    CHECK_OK(vm, stoffel_set_instruction_limit(vm, 0));
    CHECK_OK(vm, stoffel_set_max_call_depth(vm, 50));
    CHECK_ERR(vm, stoffel_execute(vm, "recurse", &r), STOFFEL_ERROR_LIMIT, "call depth");
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "recurse", &one, 1, &r), STOFFEL_ERROR_LIMIT,
              "call depth");
    CHECK_VM_WORKS(vm);
    CHECK_OK(vm, stoffel_set_max_call_depth(vm, 10000));
    CHECK_OK(vm, stoffel_set_memory_limit(vm, (size_t)1 << 20));
    CHECK_ERR(vm, stoffel_execute(vm, "hog", &r), STOFFEL_ERROR_LIMIT, "memory limit");
    CHECK_VM_WORKS(vm);
    CHECK_OK(vm, stoffel_set_memory_limit(vm, 0));
    CHECK_VM_WORKS(vm);

    /* ---- Clean-up: everything still held is released; the VMs are idle and intact. ---- */
    CHECK_OK(vm, stoffel_release_value(vm, &obj));
    CHECK_OK(vm, stoffel_release_value(vm, &arr));
    CHECK_OK(vm, stoffel_release_value(vm, &closure));
    CHECK_OK(vm, stoffel_release_value(vm, &foreign));
    StoffelGcStats stats;
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    CHECK(stats.live_handles == 0);
    CHECK_OK(vm, stoffel_gc_collect(vm));
    CHECK(finalized == 1); /* `foreign`, once */
    CHECK_OK(other, stoffel_gc_stats(other, &stats));
    CHECK(stats.live_handles == 0);
    CHECK_VM_WORKS(other);
    stoffel_destroy_vm(other);
    stoffel_destroy_vm(vm);
    CHECK(finalized == 1);
    CHECK_ERR(vm, stoffel_execute(vm, "add", &r), STOFFEL_ERROR_INVALID_VM, "stoffel_execute");

    printf("bad_input: all checks=%ld passed\n", checks_passed);
    return 0;
}
