/*
 * callbacks.c: C functions called from VM code.
 *  - a non-zero return fails the execution with a message naming the function and the code;
 *  - string arguments arrive intact and are owned (and freed) by the VM;
 *  - a callback may return every value type (and invalid results are refused);
 *  - ids in a callback's arguments die when it returns, unless retained.
 * Run by tests/c_api.rs, also under valgrind.
 */
#include "check.h"

static VMHandle g_vm;

static const char *const PROGRAM =
    ".function add(a, b)\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    /* call_fail(x): fail_cb(x) */
    ".function call_fail(x)\n"
    "    PUSHARG r0\n"
    "    CALL fail_cb\n"
    "    RET r0\n"
    /* strings(): str_cb("hello", "gr\u{fc}\u{df}e", "") + 1 */
    ".function strings registers 4\n"
    "    LDI r1, \"hello\"\n"
    "    LDI r2, \"gr\\u{fc}\\u{df}e\"\n"
    "    LDI r3, \"\"\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    CALL str_cb\n"
    "    LDI r1, 1\n"
    "    ADD r0, r0, r1\n"
    "    RET r0\n"
    /* many_strings(n): calls str_cb n times (each call gets fresh copies) */
    ".function many_strings(n) registers 6\n"
    "    MOV r1, r0\n"
    "    LDI r2, 0\n"
    "    LDI r3, 1\n"
    "    LDI r4, \"hello\"\n"
    "    LDI r5, \"gr\\u{fc}\\u{df}e\"\n"
    "loop:\n"
    "    CMP r1, r2\n"
    "    JMPEQ done\n"
    "    PUSHARG r4\n"
    "    PUSHARG r5\n"
    "    PUSHARG r4\n"
    "    CALL str_cb\n"
    "    SUB r1, r1, r3\n"
    "    JMP loop\n"
    "done:\n"
    "    RET r0\n"
    /* nul_arg(): str_cb gets a string with a NUL inside: the call fails */
    ".function nul_arg registers 2\n"
    "    LDI r1, \"a\\0b\"\n"
    "    PUSHARG r1\n"
    "    CALL str_cb\n"
    "    RET r0\n"
    /* echo_string(): echo_cb(<a string>) */
    ".function echo_string registers 2\n"
    "    LDI r1, \"a string argument, echoed back as the result\"\n"
    "    PUSHARG r1\n"
    "    CALL echo_cb\n"
    "    RET r0\n"
    /* relay(k): whatever ret_cb(k) returns */
    ".function relay(k)\n"
    "    PUSHARG r0\n"
    "    CALL ret_cb\n"
    "    RET r0\n"
    /* kind(k): type(ret_cb(k)), the VM's own view of the value */
    ".function kind(k)\n"
    "    PUSHARG r0\n"
    "    CALL ret_cb\n"
    "    PUSHARG r0\n"
    "    CALL type\n"
    "    RET r0\n"
    /* pass_ids(): keep_cb(obj, arr) with obj.n = 5, arr = [1]; returns obj */
    ".function pass_ids registers 6\n"
    "    CALL create_object\n"
    "    MOV r1, r0\n"
    "    LDI r2, \"n\"\n"
    "    LDI r3, 5\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    CALL set_field\n"
    "    CALL create_array\n"
    "    MOV r4, r0\n"
    "    LDI r3, 1\n"
    "    PUSHARG r4\n"
    "    PUSHARG r3\n"
    "    CALL array_push\n"
    "    PUSHARG r1\n"
    "    PUSHARG r4\n"
    "    CALL keep_cb\n"
    "    RET r1\n"
    /* no_args(): count_cb() */
    ".function no_args\n"
    "    CALL count_cb\n"
    "    RET r0\n"
    /* make_closure(): a closure over add1 */
    ".function make_closure registers 2\n"
    "    LDI r1, \"add1\"\n"
    "    PUSHARG r1\n"
    "    CALL create_closure\n"
    "    RET r0\n"
    ".function add1(x) registers 3\n"
    "    LDI r1, 1\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    /* call_returned_closure(k): call_closure(ret_cb(k), 41) */
    ".function call_returned_closure(k) registers 3\n"
    "    PUSHARG r0\n"
    "    CALL ret_cb\n"
    "    MOV r1, r0\n"
    "    LDI r2, 41\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    CALL call_closure\n"
    "    RET r0\n";

/* ---- failing callbacks ---- */
static int fail_cb(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    (void)result;
    if (arg_count != 1 || args[0].value_type != STOFFEL_VALUE_INT) {
        return 1;
    }
    return (int)args[0].data.int_val; /* 0 succeeds, anything else fails with that code */
}

/* ---- string arguments ---- */
static int str_calls = 0;

static int str_cb(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    str_calls++;
    if (arg_count != 3) {
        return 100 + arg_count;
    }
    for (int i = 0; i < 3; i++) {
        if (args[i].value_type != STOFFEL_VALUE_STRING || args[i].data.string_val == NULL) {
            return 200 + i;
        }
    }
    /* "gr\u00fc\u00dfe" in UTF-8 */
    static const char grusse[] = "gr\xc3\xbc\xc3\x9f" "e";
    if (strcmp(args[0].data.string_val, "hello") != 0 ||
        strcmp(args[1].data.string_val, grusse) != 0) {
        return 300;
    }
    result->value_type = STOFFEL_VALUE_INT;
    result->data.int_val = (int64_t)(strlen(args[0].data.string_val) +
                                     strlen(args[1].data.string_val) +
                                     strlen(args[2].data.string_val));
    return 0;
}

/* echo_cb(x) = x: a callback may return one of its own arguments, strings included. */
static int echo_cb(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    if (arg_count != 1) {
        return 1;
    }
    *result = args[0];
    return 0;
}

/* ---- returning every type ---- */
static StoffelValue held_object, held_array, held_foreign, held_closure;
static int host_thing = 42;
static char returned_text[32];

static int ret_cb(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    if (arg_count != 1 || args[0].value_type != STOFFEL_VALUE_INT) {
        return 1;
    }
    int64_t k = args[0].data.int_val;
    int tag;
    switch (k) {
    case 0: /* leave the preset UNIT */
        if (result->value_type != STOFFEL_VALUE_UNIT) {
            return 2;
        }
        break;
    case 1:
        *result = v_int(-1234567890123LL);
        break;
    case 2:
        *result = v_float(2.5);
        break;
    case 3:
        *result = v_bool(256); /* any non-zero is true */
        break;
    case 4:
        /* A string the callback owns; the VM copies it before the callback's memory
         * changes (it is overwritten right after the execution below). */
        strcpy(returned_text, "from C");
        *result = v_str(returned_text);
        break;
    /* An id written to *result is handed over to the VM, which releases it once it has
     * the value. These ids stay ours, so each is retained first (re-entering the VM from a
     * callback is allowed). */
    case 5:
        *result = held_object;
        if (stoffel_retain_value(g_vm, result) != STOFFEL_OK) return 3;
        break;
    case 6:
        *result = held_array;
        if (stoffel_retain_value(g_vm, result) != STOFFEL_OK) return 3;
        break;
    case 7:
        *result = held_foreign;
        if (stoffel_retain_value(g_vm, result) != STOFFEL_OK) return 3;
        break;
    case 8:
        *result = held_closure;
        if (stoffel_retain_value(g_vm, result) != STOFFEL_OK) return 3;
        break;
    case 10: /* invalid results */
        tag = 9;
        memcpy(&result->value_type, &tag, sizeof tag);
        break;
    case 11:
        *result = v_str(NULL);
        break;
    case 12:
        *result = v_id(STOFFEL_VALUE_OBJECT, 0x1234); /* forged */
        break;
    case 13:
        *result = v_id(STOFFEL_VALUE_OBJECT, 0); /* zero */
        break;
    case 14:
        *result = v_id(STOFFEL_VALUE_ARRAY, held_object.data.object_id); /* wrong kind */
        break;
    case 15: {
        static const char bad[] = {(char)0xff, 0};
        *result = v_str(bad);
        break;
    }
    default:
        return 3;
    }
    return 0;
}

/* ---- ids in arguments ---- */
static StoffelValue kept_plain, kept_retained;
static int64_t seen_n = -1;
static size_t seen_len = 0;

static int keep_cb(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                   StoffelValue *result)
{
    (void)result;
    if (vm != g_vm || user_data != &host_thing || arg_count != 2 ||
        args[0].value_type != STOFFEL_VALUE_OBJECT || args[1].value_type != STOFFEL_VALUE_ARRAY) {
        return 1;
    }
    /* During the callback both ids work. */
    StoffelValue key = v_str("n");
    StoffelValue n;
    if (stoffel_get_field(vm, &args[0], &key, &n) != STOFFEL_OK) {
        return 2;
    }
    seen_n = n.data.int_val;
    if (stoffel_array_length(vm, &args[1], &seen_len) != STOFFEL_OK) {
        return 3;
    }
    kept_plain = args[0];    /* not retained: dies when the callback returns */
    kept_retained = args[1]; /* retained: lives until released */
    if (stoffel_retain_value(vm, &args[1]) != STOFFEL_OK) {
        return 4;
    }
    return 0;
}

static int count_calls = 0;
static int count_seen_args = -1;

static int count_cb(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    count_calls++;
    count_seen_args = arg_count;
    if (args == NULL) { /* never NULL, even with no arguments */
        return 1;
    }
    result->value_type = STOFFEL_VALUE_INT;
    result->data.int_val = arg_count;
    return 0;
}

static int finalized = 0;

static void count_finalizer(void *object)
{
    if (object == &host_thing) {
        finalized++;
    }
}

int main(void)
{
    VMHandle vm = stoffel_create_vm();
    g_vm = vm;
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "fail_cb", fail_cb));
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "str_cb", str_cb));
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "ret_cb", ret_cb));
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "count_cb", count_cb));
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "echo_cb", echo_cb));
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "keep_cb", keep_cb, &host_thing));
    StoffelValue r;

    /* ---- 1. A non-zero return fails the execution, naming the function and the code. */
    {
        StoffelValue x = v_int(0);
        CHECK_OK(vm, stoffel_execute_with_args(vm, "call_fail", &x, 1, &r));
        CHECK(r.value_type == STOFFEL_VALUE_UNIT);
        x = v_int(42);
        CHECK_ERR(vm, stoffel_execute_with_args(vm, "call_fail", &x, 1, &r),
                  STOFFEL_ERROR_EXECUTE_WITH_ARGS, "C function 'fail_cb' returned error code 42");
        CHECK_ERR(vm, stoffel_execute(vm, "call_fail", &r), STOFFEL_ERROR_EXECUTE,
                  "C function 'fail_cb' returned error code 1");
        /* The message also says where in VM code. */
        CHECK_ERR(vm, stoffel_execute_with_args(vm, "call_fail", &x, 1, &r),
                  STOFFEL_ERROR_EXECUTE_WITH_ARGS, "call_fail");
        x = v_int(-7);
        CHECK_ERR(vm, stoffel_execute_with_args(vm, "fail_cb", &x, 1, &r),
                  STOFFEL_ERROR_EXECUTE_WITH_ARGS, "C function 'fail_cb' returned error code -7");
        CHECK_VM_WORKS(vm);
    }

    /* ---- 2. String arguments: intact, owned by the VM, freed after the call. ---- */
    {
        CHECK_OK(vm, stoffel_execute(vm, "strings", &r));
        CHECK(r.value_type == STOFFEL_VALUE_INT && r.data.int_val == 5 + 7 + 0 + 1);
        str_calls = 0;
        StoffelValue n = v_int(2000);
        CHECK_OK(vm, stoffel_execute_with_args(vm, "many_strings", &n, 1, &r));
        CHECK(str_calls == 2000);
        /* Strings from C to a C function executed by name are copied too. */
        StoffelValue three[3] = {v_str("hello"), v_str("gr\xc3\xbc\xc3\x9f" "e"), v_str("abc")};
        CHECK_OK(vm, stoffel_execute_with_args(vm, "str_cb", three, 3, &r));
        CHECK(r.data.int_val == 5 + 7 + 3);
        /* A callback returning its string argument: the VM copies the result before it
         * frees the argument (valgrind checks the read). */
        for (int i = 0; i < 100; i++) {
            CHECK_OK(vm, stoffel_execute(vm, "echo_string", &r));
            CHECK(r.value_type == STOFFEL_VALUE_STRING);
            CHECK(strcmp(r.data.string_val, "a string argument, echoed back as the result") == 0);
            stoffel_free_string((char *)r.data.string_val);
        }
        StoffelValue mine = v_str("executed by name");
        CHECK_OK(vm, stoffel_execute_with_args(vm, "echo_cb", &mine, 1, &r));
        CHECK(r.value_type == STOFFEL_VALUE_STRING && r.data.string_val != mine.data.string_val);
        CHECK(strcmp(r.data.string_val, "executed by name") == 0);
        stoffel_free_string((char *)r.data.string_val);
        /* A string with a NUL cannot reach C: the call fails before the callback runs. */
        str_calls = 0;
        CHECK_ERR(vm, stoffel_execute(vm, "nul_arg", &r), STOFFEL_ERROR_EXECUTE, "NUL");
        CHECK(str_calls == 0);
        CHECK_VM_WORKS(vm);
    }

    /* ---- 3. A callback returning every type. ---- */
    {
        StoffelValue foreign_tmp, closure_tmp;
        CHECK_OK(vm, stoffel_create_object(vm, &held_object));
        CHECK_OK(vm, stoffel_create_array(vm, &held_array));
        CHECK_OK(vm, stoffel_register_foreign_object_ex(vm, &host_thing, count_finalizer,
                                                        &foreign_tmp));
        held_foreign = foreign_tmp;
        CHECK_OK(vm, stoffel_execute(vm, "make_closure", &closure_tmp));
        held_closure = closure_tmp;
        StoffelValue key = v_str("tag");
        StoffelValue val = v_int(99);
        CHECK_OK(vm, stoffel_set_field(vm, &held_object, &key, &val));
        CHECK_OK(vm, stoffel_array_push(vm, &held_array, &val));

        StoffelGcStats before;
        CHECK_OK(vm, stoffel_gc_stats(vm, &before));

        static const char *const kinds[] = {"nil",   "int64",  "float",   "boolean", "string",
                                            "object", "array", "cffi_function", "function"};
        static const StoffelValueType types[] = {
            STOFFEL_VALUE_UNIT,   STOFFEL_VALUE_INT,   STOFFEL_VALUE_FLOAT,
            STOFFEL_VALUE_BOOL,   STOFFEL_VALUE_STRING, STOFFEL_VALUE_OBJECT,
            STOFFEL_VALUE_ARRAY,  STOFFEL_VALUE_FOREIGN, STOFFEL_VALUE_CLOSURE};
        for (int k = 0; k <= 8; k++) {
            StoffelValue kv = v_int(k);
            CHECK_OK(vm, stoffel_execute_with_args(vm, "relay", &kv, 1, &r));
            CHECK(r.value_type == types[k]);
            switch (k) {
            case 0:
                CHECK(r.data.int_val == 0);
                break;
            case 1:
                CHECK(r.data.int_val == -1234567890123LL);
                break;
            case 2:
                CHECK(r.data.float_val == 2.5);
                break;
            case 3:
                CHECK(r.data.int_val == 1);
                break;
            case 4:
                strcpy(returned_text, "overwritten");
                CHECK(strcmp(r.data.string_val, "from C") == 0);
                stoffel_free_string((char *)r.data.string_val);
                break;
            case 5: {
                /* A new id for the same object. */
                StoffelValue got;
                CHECK_OK(vm, stoffel_get_field(vm, &r, &key, &got));
                CHECK(got.value_type == STOFFEL_VALUE_INT && got.data.int_val == 99);
                CHECK_OK(vm, stoffel_release_value(vm, &r));
                break;
            }
            case 6: {
                size_t len = 0;
                CHECK_OK(vm, stoffel_array_length(vm, &r, &len));
                CHECK(len == 1);
                CHECK_OK(vm, stoffel_release_value(vm, &r));
                break;
            }
            case 7: {
                void *p = NULL;
                CHECK_OK(vm, stoffel_get_foreign_object(vm, &r, &p));
                CHECK(p == &host_thing);
                CHECK_OK(vm, stoffel_release_value(vm, &r));
                break;
            }
            case 8: {
                StoffelValue arg = v_int(1);
                StoffelValue sum;
                CHECK_OK(vm, stoffel_call_closure(vm, &r, &arg, 1, &sum));
                CHECK(sum.data.int_val == 2);
                CHECK_OK(vm, stoffel_release_value(vm, &r));
                break;
            }
            }
            /* The VM's own view of the value. */
            CHECK_OK(vm, stoffel_execute_with_args(vm, "kind", &kv, 1, &r));
            CHECK(r.value_type == STOFFEL_VALUE_STRING);
            if (strcmp(r.data.string_val, kinds[k]) != 0) {
                FAIL("type(ret_cb(%d)) is %s, expected %s", k, r.data.string_val, kinds[k]);
            }
            stoffel_free_string((char *)r.data.string_val);
        }
        /* VM code uses a closure a callback returned. */
        StoffelValue eight = v_int(8);
        CHECK_OK(vm, stoffel_execute_with_args(vm, "call_returned_closure", &eight, 1, &r));
        CHECK(r.data.int_val == 42);
        /* Returned ids were handed over (after a retain), so no handle is left behind and
         * ours are still alive. */
        StoffelGcStats after;
        CHECK_OK(vm, stoffel_gc_stats(vm, &after));
        CHECK(after.live_handles == before.live_handles);

        /* Invalid results fail the execution with a message naming the function. */
        const int invalid[] = {10, 11, 12, 13, 14, 15};
        const char *const why[] = {"type tag", "NULL", "handle", "0", "expected", "UTF-8"};
        for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
            StoffelValue kv = v_int(invalid[i]);
            CHECK_ERR(vm, stoffel_execute_with_args(vm, "relay", &kv, 1, &r),
                      STOFFEL_ERROR_EXECUTE_WITH_ARGS, "ret_cb");
            CHECK_ERR(vm, stoffel_execute_with_args(vm, "relay", &kv, 1, &r),
                      STOFFEL_ERROR_EXECUTE_WITH_ARGS, why[i]);
        }
        /* ... also when the C function is executed by name (no VM code in between). */
        for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
            StoffelValue kv = v_int(invalid[i]);
            CHECK_ERR(vm, stoffel_execute_with_args(vm, "ret_cb", &kv, 1, &r),
                      STOFFEL_ERROR_EXECUTE_WITH_ARGS, why[i]);
        }
        CHECK_OK(vm, stoffel_gc_stats(vm, &after));
        CHECK(after.live_handles == before.live_handles);
        CHECK_VM_WORKS(vm);
    }

    /* ---- 4. Ids in a callback's arguments die when it returns, unless retained. ---- */
    {
        StoffelGcStats before, after;
        CHECK_OK(vm, stoffel_gc_stats(vm, &before));
        StoffelValue obj;
        CHECK_OK(vm, stoffel_execute(vm, "pass_ids", &obj));
        CHECK(seen_n == 5 && seen_len == 1);
        StoffelValue key = v_str("n");
        /* The result is a separate id, owned by us. */
        CHECK(obj.value_type == STOFFEL_VALUE_OBJECT);
        CHECK(obj.data.object_id != kept_plain.data.object_id);
        CHECK_OK(vm, stoffel_get_field(vm, &obj, &key, &r));
        CHECK(r.data.int_val == 5);
        /* The unretained argument id is dead. */
        CHECK_ERR(vm, stoffel_get_field(vm, &kept_plain, &key, &r), STOFFEL_ERROR_INVALID_HANDLE,
                  "not live in this VM");
        CHECK_ERR(vm, stoffel_release_value(vm, &kept_plain), STOFFEL_ERROR_INVALID_HANDLE,
                  "not live in this VM");
        /* The retained one lives until released, then dies. */
        size_t len = 0;
        CHECK_OK(vm, stoffel_array_length(vm, &kept_retained, &len));
        CHECK(len == 1);
        CHECK_OK(vm, stoffel_gc_stats(vm, &after));
        CHECK(after.live_handles == before.live_handles + 2); /* obj and kept_retained */
        CHECK_OK(vm, stoffel_release_value(vm, &kept_retained));
        CHECK_ERR(vm, stoffel_array_length(vm, &kept_retained, &len),
                  STOFFEL_ERROR_INVALID_HANDLE, "not live in this VM");
        CHECK_ERR(vm, stoffel_release_value(vm, &kept_retained), STOFFEL_ERROR_INVALID_HANDLE,
                  "not live in this VM");
        CHECK_OK(vm, stoffel_release_value(vm, &obj));
        CHECK_OK(vm, stoffel_gc_stats(vm, &after));
        CHECK(after.live_handles == before.live_handles);
    }

    /* ---- 5. No arguments: args is still a valid pointer; arg_count 0. ---- */
    CHECK_OK(vm, stoffel_execute(vm, "no_args", &r));
    CHECK(count_calls == 1 && count_seen_args == 0 && r.data.int_val == 0);
    CHECK_OK(vm, stoffel_execute_with_args(vm, "count_cb", NULL, 0, &r));
    CHECK(count_calls == 2 && count_seen_args == 0);

    /* ---- 6. Re-registering replaces a function, builtins included. ---- */
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "add", count_cb));
    StoffelValue two[2] = {v_int(1), v_int(2)};
    CHECK_OK(vm, stoffel_execute_with_args(vm, "add", two, 2, &r));
    CHECK(r.data.int_val == 2); /* count_cb: the number of arguments */
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "type", count_cb));
    CHECK_OK(vm, stoffel_execute(vm, "type", &r));
    CHECK(r.data.int_val == 0);
    CHECK_OK(vm, stoffel_load_assembly(vm, ".function add(a, b)\n ADD r2, r0, r1\n RET r2\n"));
    CHECK_VM_WORKS(vm);

    /* ---- Clean-up. ---- */
    CHECK_OK(vm, stoffel_release_value(vm, &held_object));
    CHECK_OK(vm, stoffel_release_value(vm, &held_array));
    CHECK_OK(vm, stoffel_release_value(vm, &held_foreign));
    CHECK_OK(vm, stoffel_release_value(vm, &held_closure));
    StoffelGcStats stats;
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    CHECK(stats.live_handles == 0);
    CHECK_OK(vm, stoffel_gc_collect(vm));
    CHECK(finalized == 1);
    stoffel_destroy_vm(vm);
    CHECK(finalized == 1);

    printf("callbacks: all checks=%ld passed\n", checks_passed);
    return 0;
}
