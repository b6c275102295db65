/*
 * functions.c: function handles (stoffel_lookup_function, stoffel_call_function) through
 * the real library. A handle looked up once gives the same results as calls by name, many
 * times over; it follows its name across reloads and registrations; another VM's handle, a
 * made-up one and a destroyed VM are refused with their codes; bad arguments and NULLs get
 * the codes of stoffel_execute_with_args; results are owned as there. Prints
 * "functions: all N checks passed".
 */
#include <stddef.h>

#include "check.h"

static const char *PROGRAM =
    ".function add(a, b) registers 3\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    ".function f(a, b) registers 4\n"
    "    ADD r2, r0, r1\n"
    "    LDI r3, 1000003\n"
    "    MOD r2, r2, r3\n"
    "    RET r2\n"
    ".function make(v) registers 6\n"
    "    MOV r5, r0\n"
    "    CALL create_object\n"
    "    MOV r1, r0\n"
    "    LDI r2, \"v\"\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    PUSHARG r5\n"
    "    CALL set_field\n"
    "    RET r1\n"
    ".function greet registers 1\n"
    "    LDI r0, \"hello\"\n"
    "    RET r0\n"
    ".function boom registers 2\n"
    "    LDI r0, 1\n"
    "    LDI r1, 0\n"
    "    DIV r0, r0, r1\n"
    "    RET r0\n";

static int times_ten(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    if (arg_count != 1 || args[0].value_type != STOFFEL_VALUE_INT) {
        return 1;
    }
    result->value_type = STOFFEL_VALUE_INT;
    result->data.int_val = args[0].data.int_val * 10;
    return 0;
}

/* Calls `fn` with two ints and returns the INT result (checked). */
static int64_t call2(VMHandle vm, StoffelFunction fn, int64_t a, int64_t b)
{
    StoffelValue args[2] = {v_int(a), v_int(b)};
    StoffelValue r;
    CHECK_OK(vm, stoffel_call_function(vm, fn, args, 2, &r));
    CHECK(r.value_type == STOFFEL_VALUE_INT);
    return r.data.int_val;
}

int main(void)
{
    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));

    /* Many calls through one handle, against the same calls by name. */
    StoffelFunction f;
    CHECK_OK(vm, stoffel_lookup_function(vm, "f", &f));
    int64_t s = 0, by_name = 0;
    for (int64_t i = 0; i < 20000; i++) {
        s = call2(vm, f, s, i);
        StoffelValue args[2] = {v_int(by_name), v_int(i)};
        StoffelValue r;
        CHECK_OK(vm, stoffel_execute_with_args(vm, "f", args, 2, &r));
        by_name = r.data.int_val;
        CHECK(s == by_name);
    }
    int64_t expected = 0;
    for (int64_t i = 0; i < 20000; i++) {
        expected = (expected + i) % 1000003;
    }
    CHECK(s == expected);
    /* A copy of the handle is as good (plain data), and looking up again gives the same. */
    StoffelFunction copy = f, again;
    CHECK_OK(vm, stoffel_lookup_function(vm, "f", &again));
    CHECK(memcmp(&copy, &again, sizeof f) == 0);
    CHECK(call2(vm, copy, 1000000, 5) == 2);

    /* Results are owned as with stoffel_execute_with_args: an id to release, a string to
     * free. */
    StoffelFunction make, greet;
    CHECK_OK(vm, stoffel_lookup_function(vm, "make", &make));
    CHECK_OK(vm, stoffel_lookup_function(vm, "greet", &greet));
    StoffelValue arg = v_int(7), obj, field, key = v_str("v");
    CHECK_OK(vm, stoffel_call_function(vm, make, &arg, 1, &obj));
    CHECK(obj.value_type == STOFFEL_VALUE_OBJECT);
    CHECK_OK(vm, stoffel_get_field(vm, &obj, &key, &field));
    CHECK(field.value_type == STOFFEL_VALUE_INT && field.data.int_val == 7);
    CHECK_OK(vm, stoffel_release_value(vm, &obj));
    StoffelValue text;
    CHECK_OK(vm, stoffel_call_function(vm, greet, NULL, 0, &text));
    CHECK(text.value_type == STOFFEL_VALUE_STRING && strcmp(text.data.string_val, "hello") == 0);
    stoffel_free_string((char *)text.data.string_val);
    /* An id argument: the object passes through `make`'s field. */
    StoffelValue made;
    CHECK_OK(vm, stoffel_create_object(vm, &made));
    StoffelValue nested;
    CHECK_OK(vm, stoffel_call_function(vm, make, &made, 1, &nested));
    CHECK_OK(vm, stoffel_release_value(vm, &nested));
    CHECK_OK(vm, stoffel_release_value(vm, &made));

    /* Builtins and C functions have handles too. */
    StoffelFunction create_object, ten;
    CHECK_OK(vm, stoffel_lookup_function(vm, "create_object", &create_object));
    CHECK_OK(vm, stoffel_call_function(vm, create_object, NULL, 0, &obj));
    CHECK(obj.value_type == STOFFEL_VALUE_OBJECT);
    CHECK_OK(vm, stoffel_release_value(vm, &obj));
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "ten", times_ten));
    CHECK_OK(vm, stoffel_lookup_function(vm, "ten", &ten));
    StoffelValue r;
    arg = v_int(4);
    CHECK_OK(vm, stoffel_call_function(vm, ten, &arg, 1, &r));
    CHECK(r.value_type == STOFFEL_VALUE_INT && r.data.int_val == 40);

    /* Failures inside the function: the codes of stoffel_execute_with_args. */
    StoffelFunction boom;
    CHECK_OK(vm, stoffel_lookup_function(vm, "boom", &boom));
    CHECK_ERR(vm, stoffel_call_function(vm, boom, NULL, 0, &r), STOFFEL_ERROR_EXECUTE_WITH_ARGS,
              "boom");
    /* Wrong arity. */
    arg = v_int(1);
    CHECK_ERR(vm, stoffel_call_function(vm, f, &arg, 1, &r), STOFFEL_ERROR_EXECUTE_WITH_ARGS,
              "f");

    /* Bad arguments. */
    StoffelValue two[2] = {v_int(1), v_int(2)};
    CHECK_ERR(vm, stoffel_call_function(vm, f, two, -1, &r), STOFFEL_ERROR_NULL, "arg_count");
    CHECK_ERR(vm, stoffel_call_function(vm, f, two, 5000, &r), STOFFEL_ERROR_NULL, "arg_count");
    CHECK_ERR(vm, stoffel_call_function(vm, f, NULL, 2, &r), STOFFEL_ERROR_NULL, "args");
    StoffelValue bad[2] = {v_tag(42, 0), v_int(1)};
    CHECK_ERR(vm, stoffel_call_function(vm, f, bad, 2, &r), STOFFEL_ERROR_ARGUMENT, "argument 0");
    StoffelValue forged[2] = {v_int(1), v_id(STOFFEL_VALUE_OBJECT, 987654321)};
    CHECK_ERR(vm, stoffel_call_function(vm, f, forged, 2, &r), STOFFEL_ERROR_INVALID_HANDLE,
              "argument 1");
    StoffelValue no_string[2] = {v_str(NULL), v_int(1)};
    CHECK_ERR(vm, stoffel_call_function(vm, f, no_string, 2, &r), STOFFEL_ERROR_ARGUMENT,
              "argument 0");
    CHECK_VM_WORKS(vm);

    /* NULLs and bad names. */
    CHECK_ERR(vm, stoffel_call_function(vm, f, two, 2, NULL), STOFFEL_ERROR_NULL, "result");
    CHECK(stoffel_call_function(NULL, f, two, 2, &r) == STOFFEL_ERROR_NULL);
    CHECK_THREAD_ERROR("NULL");
    CHECK_ERR(vm, stoffel_lookup_function(vm, NULL, &again), STOFFEL_ERROR_NULL, "function name");
    CHECK_ERR(vm, stoffel_lookup_function(vm, "f", NULL), STOFFEL_ERROR_NULL, "out");
    CHECK(stoffel_lookup_function(NULL, "f", &again) == STOFFEL_ERROR_NULL);
    CHECK_ERR(vm, stoffel_lookup_function(vm, "\xff\xfe", &again), STOFFEL_ERROR_UTF8, "UTF-8");
    StoffelFunction untouched = {12345, 678};
    CHECK_ERR(vm, stoffel_lookup_function(vm, "no_such_function", &untouched),
              STOFFEL_ERROR_INVALID_FUNCTION, "no_such_function");
    CHECK(untouched.vm == 12345 && untouched.slot == 678);

    /* Made-up handles: all zero, a slot past the table, a VM number never used. */
    StoffelFunction zero;
    memset(&zero, 0, sizeof zero);
    CHECK_ERR(vm, stoffel_call_function(vm, zero, two, 2, &r), STOFFEL_ERROR_INVALID_HANDLE,
              "not a function handle of this VM");
    StoffelFunction past = f;
    past.slot = 1u << 30;
    CHECK_ERR(vm, stoffel_call_function(vm, past, two, 2, &r), STOFFEL_ERROR_INVALID_HANDLE,
              "not a function handle of this VM");
    past.slot = UINT64_MAX;
    CHECK_ERR(vm, stoffel_call_function(vm, past, two, 2, &r), STOFFEL_ERROR_INVALID_HANDLE,
              "not a function handle of this VM");
    StoffelFunction other_number = f;
    other_number.vm ^= 0x5555;
    CHECK_ERR(vm, stoffel_call_function(vm, other_number, two, 2, &r),
              STOFFEL_ERROR_INVALID_HANDLE, "not a function handle of this VM");
    CHECK_VM_WORKS(vm);

    /* Another VM's handle, even for a function of the same name in the same place. */
    VMHandle vm2 = stoffel_create_vm();
    CHECK(vm2 != NULL);
    CHECK_OK(vm2, stoffel_load_assembly(vm2, PROGRAM));
    StoffelFunction f2;
    CHECK_OK(vm2, stoffel_lookup_function(vm2, "f", &f2));
    CHECK(f2.slot == f.slot);
    CHECK_ERR(vm2, stoffel_call_function(vm2, f, two, 2, &r), STOFFEL_ERROR_INVALID_HANDLE,
              "another VM");
    CHECK_ERR(vm, stoffel_call_function(vm, f2, two, 2, &r), STOFFEL_ERROR_INVALID_HANDLE,
              "another VM");
    CHECK(call2(vm2, f2, 2, 3) == 5);
    CHECK(call2(vm, f, 2, 3) == 5);

    /* After a reload the handle calls the name's new definition (never the old one, never
     * another function); a new arity is checked against the new definition. */
    CHECK_OK(vm, stoffel_load_assembly(vm, ".function f(a, b) registers 3\n"
                                           "    MUL r2, r0, r1\n"
                                           "    RET r2\n"));
    CHECK(call2(vm, f, 6, 7) == 42);
    CHECK_OK(vm, stoffel_load_assembly(vm, ".function f(a) registers 2\n"
                                           "    ADD r1, r0, r0\n"
                                           "    RET r1\n"));
    CHECK_ERR(vm, stoffel_call_function(vm, f, two, 2, &r), STOFFEL_ERROR_EXECUTE_WITH_ARGS, "f");
    arg = v_int(21);
    CHECK_OK(vm, stoffel_call_function(vm, f, &arg, 1, &r));
    CHECK(r.value_type == STOFFEL_VALUE_INT && r.data.int_val == 42);
    /* Reloads that compact the loaded code (many replaced functions) keep it right. */
    for (int i = 0; i < 200; i++) {
        CHECK_OK(vm, stoffel_load_assembly(vm, ".function add(a, b) registers 3\n"
                                               "    SUB r2, r0, r1\n"
                                               "    RET r2\n"));
    }
    StoffelFunction add;
    CHECK_OK(vm, stoffel_lookup_function(vm, "add", &add));
    CHECK(call2(vm, add, 50, 8) == 42);
    CHECK_OK(vm, stoffel_call_function(vm, f, &arg, 1, &r));
    CHECK(r.data.int_val == 42);
    /* Bytecode reloads too. The name rebound to a C function: the handle calls it. */
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "f", times_ten));
    arg = v_int(5);
    CHECK_OK(vm, stoffel_call_function(vm, f, &arg, 1, &r));
    CHECK(r.value_type == STOFFEL_VALUE_INT && r.data.int_val == 50);

    /* A destroyed VM. */
    stoffel_destroy_vm(vm2);
    CHECK(stoffel_call_function(vm2, f2, two, 2, &r) == STOFFEL_ERROR_INVALID_VM);
    CHECK(stoffel_lookup_function(vm2, "f", &again) == STOFFEL_ERROR_INVALID_VM);
    /* A new VM never accepts an old VM's handle. */
    VMHandle vm3 = stoffel_create_vm();
    CHECK(vm3 != NULL);
    CHECK_OK(vm3, stoffel_load_assembly(vm3, PROGRAM));
    CHECK_ERR(vm3, stoffel_call_function(vm3, f2, two, 2, &r), STOFFEL_ERROR_INVALID_HANDLE,
              "another VM");
    stoffel_destroy_vm(vm3);

    StoffelGcStats stats;
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    CHECK(stats.live_handles == 0);
    stoffel_destroy_vm(vm);
    printf("functions: all %ld checks passed\n", checks_passed);
    return 0;
}
