/*
 * ergonomics.c: issue 17's C additions through the real library. stoffel_error_name names
 * every code (all the names a shared value has); stoffel_same_value compares identity (two
 * ids of one object are the same); an id a failing callback wrote to *result is released by
 * the VM, so 10,000 failing calls leave no live id. Prints "ergonomics: all N checks passed".
 */
#include <stddef.h>

#include "check.h"

/* Makes a fresh object, writes its id to *result, then reports failure. */
static int make_then_fail(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                          StoffelValue *result)
{
    (void)user_data;
    (void)args;
    (void)arg_count;
    if (stoffel_create_object(vm, result) != STOFFEL_OK) {
        return 1;
    }
    return 7;
}

/* Fails after writing its own argument (an id the caller owns) to *result. */
static int echo_then_fail(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
                          StoffelValue *result)
{
    (void)vm;
    (void)user_data;
    if (arg_count == 1) {
        *result = args[0];
    }
    return 3;
}

int main(void)
{
    CHECK(strcmp(stoffel_error_name(STOFFEL_OK), "STOFFEL_OK") == 0);
    CHECK(strcmp(stoffel_error_name(STOFFEL_END), "STOFFEL_END") == 0);
    CHECK(strcmp(stoffel_error_name(STOFFEL_SUSPENDED), "STOFFEL_SUSPENDED") == 0);
    CHECK(strcmp(stoffel_error_name(STOFFEL_ERROR_STATE), "STOFFEL_ERROR_STATE") == 0);
    CHECK(strcmp(stoffel_error_name(STOFFEL_ERROR_LIMIT), "STOFFEL_ERROR_LIMIT") == 0);
    CHECK(strcmp(stoffel_error_name(STOFFEL_ERROR_INVALID_VM), "STOFFEL_ERROR_INVALID_VM") == 0);
    CHECK(strstr(stoffel_error_name(STOFFEL_ERROR_PARSE), "STOFFEL_ERROR_PARSE") != NULL);
    CHECK(strstr(stoffel_error_name(STOFFEL_ERROR_UTF8), "STOFFEL_ERROR_UTF8") != NULL);
    CHECK(strstr(stoffel_error_name(STOFFEL_ERROR_ARGUMENT), "STOFFEL_ERROR_ARGUMENT") != NULL);
    CHECK(strstr(stoffel_error_name(STOFFEL_ERROR_EXECUTE_WITH_ARGS),
                 "STOFFEL_ERROR_EXECUTE_WITH_ARGS") != NULL);
    CHECK(strcmp(stoffel_error_name(12345), "unknown return code") == 0);
    for (int code = -20; code <= 5; code++) {
        CHECK(stoffel_error_name(code) != NULL);
    }

    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, ".function self_ref registers 3\n"
                                           "    CALL create_object\n"
                                           "    MOV r1, r0\n"
                                           "    LDI r2, \"me\"\n"
                                           "    PUSHARG r1\n"
                                           "    PUSHARG r2\n"
                                           "    PUSHARG r1\n"
                                           "    CALL set_field\n"
                                           "    RET r1\n"));
    StoffelValue obj, again, other, key;
    int same = -1;
    CHECK_OK(vm, stoffel_execute(vm, "self_ref", &obj));
    key.value_type = STOFFEL_VALUE_STRING;
    key.data.string_val = "me";
    CHECK_OK(vm, stoffel_get_field(vm, &obj, &key, &again));
    CHECK(again.data.object_id != obj.data.object_id);
    CHECK_OK(vm, stoffel_same_value(vm, &obj, &again, &same));
    CHECK(same == 1);
    CHECK_OK(vm, stoffel_create_object(vm, &other));
    CHECK_OK(vm, stoffel_same_value(vm, &obj, &other, &same));
    CHECK(same == 0);
    CHECK_OK(vm, stoffel_same_value(vm, &key, &key, &same));
    CHECK(same == 1);
    CHECK(stoffel_same_value(vm, &obj, &other, NULL) == STOFFEL_ERROR_NULL);
    CHECK_OK(vm, stoffel_release_value(vm, &other));
    CHECK(stoffel_same_value(vm, &obj, &other, &same) == STOFFEL_ERROR_INVALID_HANDLE);
    CHECK_OK(vm, stoffel_release_value(vm, &again));
    CHECK_OK(vm, stoffel_release_value(vm, &obj));

    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "make_then_fail", make_then_fail, NULL));
    CHECK_OK(vm, stoffel_register_foreign_function_ex(vm, "echo_then_fail", echo_then_fail, NULL));
    StoffelValue r;
    for (int i = 0; i < 10000; i++) {
        CHECK(stoffel_execute(vm, "make_then_fail", &r) == STOFFEL_ERROR_EXECUTE);
    }
    /* The caller's own id given back by a failing callback stays the caller's. */
    CHECK_OK(vm, stoffel_create_object(vm, &obj));
    CHECK(stoffel_execute_with_args(vm, "echo_then_fail", &obj, 1, &r) ==
          STOFFEL_ERROR_EXECUTE_WITH_ARGS);
    CHECK_OK(vm, stoffel_retain_value(vm, &obj));
    CHECK_OK(vm, stoffel_release_value(vm, &obj));
    CHECK_OK(vm, stoffel_release_value(vm, &obj));
    CHECK_OK(vm, stoffel_gc_collect(vm));
    StoffelGcStats stats;
    CHECK_OK(vm, stoffel_gc_stats(vm, &stats));
    CHECK(stats.live_handles == 0);

    /* Walking an object's fields (stoffel_object_next), small and large (a hash map inside). */
    for (int size = 3; size <= 40; size += 37) {
        StoffelValue o, k, v, next_key, value;
        CHECK_OK(vm, stoffel_create_object(vm, &o));
        for (int i = 0; i < size; i++) {
            char name[16];
            snprintf(name, sizeof name, "f%d", i);
            k.value_type = STOFFEL_VALUE_STRING;
            k.data.string_val = name;
            v.value_type = STOFFEL_VALUE_INT;
            v.data.int_val = i * 10;
            CHECK_OK(vm, stoffel_set_field(vm, &o, &k, &v));
        }
        StoffelValue key = { .value_type = STOFFEL_VALUE_UNIT };
        char previous[16] = "";
        int seen = 0;
        int rc;
        while ((rc = stoffel_object_next(vm, &o, &key, &next_key, &value)) == STOFFEL_OK) {
            char expected[16];
            snprintf(expected, sizeof expected, "f%d", seen);
            CHECK(next_key.value_type == STOFFEL_VALUE_STRING);
            CHECK(strcmp(next_key.data.string_val, expected) == 0);
            CHECK(value.value_type == STOFFEL_VALUE_INT && value.data.int_val == seen * 10);
            snprintf(previous, sizeof previous, "%s", next_key.data.string_val);
            stoffel_free_string((char *)next_key.data.string_val);
            key.value_type = STOFFEL_VALUE_STRING;
            key.data.string_val = previous;
            seen++;
        }
        CHECK(rc == STOFFEL_END);
        CHECK(seen == size);
        CHECK(next_key.value_type == STOFFEL_VALUE_UNIT && value.value_type == STOFFEL_VALUE_UNIT);
        key.data.string_val = "no such field";
        CHECK(stoffel_object_next(vm, &o, &key, &next_key, &value) == STOFFEL_ERROR_ARGUMENT);
        StoffelValue number = { .value_type = STOFFEL_VALUE_INT, .data.int_val = 1 };
        key.value_type = STOFFEL_VALUE_UNIT;
        CHECK(stoffel_object_next(vm, &number, &key, &next_key, &value) == STOFFEL_ERROR_TYPE);
        CHECK(stoffel_object_next(vm, &o, &key, NULL, &value) == STOFFEL_ERROR_NULL);
        CHECK_OK(vm, stoffel_release_value(vm, &o));
    }

    /* A failure inside calls: the message ends with the call chain, innermost first. */
    CHECK_OK(vm, stoffel_load_assembly(vm, ".function outer registers 1\n"
                                           "    CALL inner\n"
                                           "    RET r0\n"
                                           ".function inner registers 3\n"
                                           "    LDI r1, 1\n"
                                           "    LDI r2, 0\n"
                                           "    DIV r0, r1, r2\n"
                                           "    RET r0\n"));
    CHECK(stoffel_execute(vm, "outer", &r) == STOFFEL_ERROR_EXECUTE);
    CHECK(strstr(stoffel_last_error(vm),
                 "Division by zero\nbacktrace (innermost first):\n"
                 "  at inner, instruction 2\n  at outer, instruction 0\n") != NULL);

    /* The last error, copied: whole, truncated at a character boundary, or just its length. */
    CHECK(stoffel_execute(vm, "no_such_function", &r) == STOFFEL_ERROR_EXECUTE);
    const char *message = stoffel_last_error(vm);
    CHECK(message != NULL);
    size_t length = strlen(message);
    char copy[256];
    CHECK(stoffel_last_error_copy(vm, NULL, 0) == (ptrdiff_t)length);
    CHECK(stoffel_last_error_copy(vm, copy, sizeof copy) == (ptrdiff_t)length);
    CHECK(strcmp(copy, message) == 0);
    char small[8];
    CHECK(stoffel_last_error_copy(vm, small, sizeof small) == (ptrdiff_t)length);
    CHECK(strlen(small) == 7 && strncmp(small, message, 7) == 0);
    CHECK(stoffel_last_error_copy(vm, NULL, 4) == STOFFEL_ERROR_NULL);
    /* No VM: the thread's message (here: of that NULL call). */
    CHECK(stoffel_last_error_copy(NULL, copy, sizeof copy) >= 0);

    stoffel_destroy_vm(vm);
    printf("ergonomics: all %ld checks passed\n", checks_passed);
    return 0;
}
