/*
 * host_calls.c: the fast paths of calls from C, checked against what they must keep.
 * stoffel_execute_with_args remembers the last name it resolved on a VM (compared in place
 * with the next name) and stoffel_call_function / stoffel_execute_with_args read up to 8
 * UNIT/INT/FLOAT/BOOL arguments of a bytecode function straight into the VM. Checked here:
 * names that share a prefix, redefinitions by a reload or a C function, a destroyed VM's
 * name on the next VM, every scalar kind, more than 8 arguments, strings and bad tags
 * (which take the general path), and the same codes and messages for a failing call
 * whether the name was cached or not. Prints "host_calls: all N checks passed".
 */
#include <stddef.h>

#include "check.h"

static const char *PROGRAM =
    ".function f(a, b) registers 3\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    ".function fa(a, b) registers 3\n"
    "    SUB r2, r0, r1\n"
    "    RET r2\n"
    ".function id(x) registers 1\n"
    "    RET r0\n"
    ".function nine(a, b, c, d, e, f, g, h, i) registers 10\n"
    "    ADD r9, r0, r8\n"
    "    RET r9\n"
    ".function spin(n) registers 1\n"
    "top:\n"
    "    JMP top\n"
    ".function stop(n) registers 1\n"
    "    PUSHARG r0\n"
    "    CALL interrupt_me\n"
    "again:\n"
    "    JMP again\n"
    ".function boom registers 2\n"
    "    LDI r0, 1\n"
    "    LDI r1, 0\n"
    "    DIV r0, r0, r1\n"
    "    RET r0\n";

static const char *RELOAD =
    ".function f(a, b) registers 3\n"
    "    MUL r2, r0, r1\n"
    "    RET r2\n";

static int c_f(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    if (arg_count != 2 || args[0].value_type != STOFFEL_VALUE_INT) {
        return 1;
    }
    result->value_type = STOFFEL_VALUE_INT;
    result->data.int_val = 1000 + args[0].data.int_val;
    return 0;
}

static VMHandle current_vm;

/* Interrupts the VM that calls it: the execution fails at its next check. */
static int interrupt_me(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    (void)args;
    (void)arg_count;
    result->value_type = STOFFEL_VALUE_UNIT;
    return stoffel_interrupt(current_vm) == STOFFEL_OK ? 0 : 1;
}

static int64_t by_name(VMHandle vm, const char *name, int64_t a, int64_t b)
{
    StoffelValue args[2] = {v_int(a), v_int(b)};
    StoffelValue r;
    CHECK_OK(vm, stoffel_execute_with_args(vm, name, args, 2, &r));
    CHECK(r.value_type == STOFFEL_VALUE_INT);
    return r.data.int_val;
}

/* Calls `name` on `vm` with `args`, expecting failure `code`; returns a copy of the message. */
static char *failing(VMHandle vm, const char *name, const StoffelValue *args, int count, int code)
{
    StoffelValue r;
    int rc = stoffel_execute_with_args(vm, name, args, count, &r);
    if (rc != code) {
        FAIL("%s: returned %d, expected %d", name, rc, code);
    }
    const char *m = stoffel_last_error(vm);
    CHECK(m != NULL);
    char *copy = malloc(strlen(m) + 1);
    CHECK(copy != NULL);
    strcpy(copy, m);
    return copy;
}

/* The same failing call twice: the first resolves the name (not cached yet, or another
 * name is), the second finds it cached; both give the same code and message. */
static void same_failure(VMHandle vm, const char *name, const StoffelValue *args, int count,
                         int code, const char *needle)
{
    CHECK(by_name(vm, "fa", 1, 1) == 0); /* another name in the cache */
    char *first = failing(vm, name, args, count, code);
    char *second = failing(vm, name, args, count, code);
    if (strcmp(first, second) != 0) {
        FAIL("%s: \"%s\" then \"%s\"", name, first, second);
    }
    if (strstr(first, needle) == NULL) {
        FAIL("%s: \"%s\" does not mention \"%s\"", name, first, needle);
    }
    free(first);
    free(second);
}

int main(void)
{
    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));

    /* Names sharing a prefix, alternating and repeated. */
    for (int i = 0; i < 3; i++) {
        CHECK(by_name(vm, "f", 7, 2) == 9);
        CHECK(by_name(vm, "f", 7, 3) == 10);
        CHECK(by_name(vm, "fa", 7, 2) == 5);
        CHECK(by_name(vm, "f", 7, 2) == 9);
    }
    StoffelValue two[2] = {v_int(1), v_int(2)};
    same_failure(vm, "f2", two, 2, STOFFEL_ERROR_EXECUTE_WITH_ARGS, "'f2' not found");
    same_failure(vm, "", two, 2, STOFFEL_ERROR_EXECUTE_WITH_ARGS, "not found");
    CHECK(by_name(vm, "f", 7, 2) == 9);

    /* Every scalar kind arrives as itself, through the name and through a handle. */
    StoffelFunction id;
    CHECK_OK(vm, stoffel_lookup_function(vm, "id", &id));
    StoffelValue kinds[4] = {v_unit(), v_int(-5), v_float(2.5), v_bool(1)};
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 4; k++) {
            StoffelValue r;
            if (round == 0) {
                CHECK_OK(vm, stoffel_execute_with_args(vm, "id", &kinds[k], 1, &r));
            } else {
                CHECK_OK(vm, stoffel_call_function(vm, id, &kinds[k], 1, &r));
            }
            CHECK(r.value_type == kinds[k].value_type);
            switch (k) {
            case 1:
                CHECK(r.data.int_val == -5);
                break;
            case 2:
                CHECK(r.data.float_val == 2.5);
                break;
            case 3:
                CHECK(r.data.bool_val == 1);
                break;
            default:
                break;
            }
        }
    }
    /* A string (the general path) and a bad tag, after the scalars. */
    StoffelValue text = v_str("hi"), r;
    CHECK_OK(vm, stoffel_execute_with_args(vm, "id", &text, 1, &r));
    CHECK(r.value_type == STOFFEL_VALUE_STRING && strcmp(r.data.string_val, "hi") == 0);
    stoffel_free_string((char *)r.data.string_val);
    StoffelValue bad = v_tag(42, 0);
    same_failure(vm, "id", &bad, 1, STOFFEL_ERROR_ARGUMENT, "argument 0: value type tag 42");

    /* More than 8 arguments, then a wrong count, a runtime error and NULLs, cached or not. */
    StoffelValue many[9];
    for (int i = 0; i < 9; i++) {
        many[i] = v_int(i + 1);
    }
    CHECK_OK(vm, stoffel_execute_with_args(vm, "nine", many, 9, &r));
    CHECK(r.value_type == STOFFEL_VALUE_INT && r.data.int_val == 10);
    same_failure(vm, "f", many, 1, STOFFEL_ERROR_EXECUTE_WITH_ARGS, "argument");
    same_failure(vm, "boom", NULL, 0, STOFFEL_ERROR_EXECUTE_WITH_ARGS, "zero");
    same_failure(vm, "f", NULL, 2, STOFFEL_ERROR_NULL, "args is NULL");
    same_failure(vm, "f", many, 2000, STOFFEL_ERROR_NULL, "arg_count");
    CHECK(by_name(vm, "f", 7, 2) == 9);
    /* Limits and interrupts end a fast call as they end any other. */
    current_vm = vm;
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "interrupt_me", interrupt_me));
    same_failure(vm, "stop", two, 1, STOFFEL_ERROR_INTERRUPTED, "interrupt");
    CHECK_OK(vm, stoffel_set_instruction_limit(vm, 5000));
    same_failure(vm, "spin", two, 1, STOFFEL_ERROR_LIMIT, "5000");
    CHECK_OK(vm, stoffel_set_instruction_limit(vm, 0));
    CHECK(by_name(vm, "f", 7, 2) == 9);
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "f", two, 2, NULL), STOFFEL_ERROR_NULL,
              "result is NULL");
    CHECK_ERR(vm, stoffel_execute_with_args(vm, NULL, two, 2, &r), STOFFEL_ERROR_NULL,
              "function name is NULL");

    /* A reload redefines the cached name; then a C function does. */
    CHECK_OK(vm, stoffel_load_assembly(vm, RELOAD));
    CHECK(by_name(vm, "f", 7, 2) == 14);
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "f", c_f));
    CHECK(by_name(vm, "f", 7, 2) == 1007);
    CHECK(by_name(vm, "fa", 7, 2) == 5);
    stoffel_destroy_vm(vm);

    /* A new VM (perhaps in the same shell) does not see the old VM's names. */
    for (int round = 0; round < 3; round++) {
        VMHandle next = stoffel_create_vm();
        CHECK(next != NULL);
        CHECK_OK(next, stoffel_load_assembly(next, RELOAD + 0));
        CHECK(by_name(next, "f", 7, 2) == 14);
        CHECK_ERR(next, stoffel_execute_with_args(next, "fa", two, 2, &r),
                  STOFFEL_ERROR_EXECUTE_WITH_ARGS, "'fa' not found");
        stoffel_destroy_vm(next);
        VMHandle other = stoffel_create_vm();
        CHECK(other != NULL);
        CHECK_OK(other, stoffel_load_assembly(other, PROGRAM));
        CHECK_ERR(other, stoffel_execute_with_args(other, "nothing", two, 2, &r),
                  STOFFEL_ERROR_EXECUTE_WITH_ARGS, "not found");
        CHECK(by_name(other, "fa", 7, 2) == 5);
        CHECK(by_name(other, "f", 7, 2) == 9);
        stoffel_destroy_vm(other);
    }

    printf("host_calls: all %ld checks passed\n", checks_passed);
    return 0;
}
