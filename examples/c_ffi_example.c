/*
 * c_ffi_example.c: a tour of the StoffelVM C API (include/stoffel_vm.h).
 *
 * Build (from the crate root, after `cargo build`):
 *
 *     gcc -std=c99 -Wall -Wextra -Werror -I include examples/c_ffi_example.c \
 *         -L target/debug -lstoffel_vm -Wl,-rpath,target/debug -o c_ffi_example
 *     ./c_ffi_example [path/to/program.stflb]
 *
 * The program walks through, in order:
 *   1. the seed example: a C function registered as "double" and executed by name;
 *   2. loading STFL bytecode from a file (argv[1], by default
 *      tests/conformance/fibonacci_recursive.stflb) and running its `main`;
 *   3. loading text assembly and calling its functions with arguments;
 *   4. strings: creating, receiving and freeing them;
 *   5. objects and arrays built and read from C;
 *   6. a C function called from VM code (`CALL host_log`), with arguments;
 *   7. an `_ex` callback that calls back into the VM that called it;
 *   8. closures made by VM code and called from C;
 *   9. foreign objects: host pointers with finalizers, run by the collector or at destroy;
 *  10. errors: codes and `stoffel_last_error`;
 *  11. clean-up.
 *
 * Ownership rules used throughout (see the header for the full contract):
 *   - A STRING in a result is a fresh copy: free it with stoffel_free_string().
 *   - An OBJECT / ARRAY / FOREIGN / CLOSURE in a result is an id owned by the caller:
 *     give it back with stoffel_release_value() when done (or let stoffel_destroy_vm()
 *     reclaim everything). Ids are plain numbers; they are never pointers.
 *   - Values passed *into* the VM (arguments, fields, callback results) are copied;
 *     the C side keeps ownership of its strings.
 *   - Values a C callback receives in `args` are valid only during the callback, unless
 *     it calls stoffel_retain_value() on an id.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stoffel_vm.h"

/* Stop with a message when a call that should succeed fails. */
static void check(VMHandle vm, int status, const char *what)
{
    if (status != STOFFEL_OK) {
        const char *message = stoffel_last_error(vm);
        fprintf(stderr, "%s failed with code %d: %s\n", what, status,
                message ? message : "(no message)");
        exit(1);
    }
}

/* Small constructors for StoffelValue. */
static StoffelValue int_value(int64_t i)
{
    StoffelValue v;
    v.value_type = STOFFEL_VALUE_INT;
    v.data.int_val = i;
    return v;
}

static StoffelValue string_value(const char *s)
{
    StoffelValue v;
    v.value_type = STOFFEL_VALUE_STRING;
    v.data.string_val = s; /* borrowed: the VM copies it */
    return v;
}

/* ------------------------------------------------------------------------------------------
 * 1. The seed example: a plain C callback (CForeignFunction).
 * It gets the arguments and writes its result to *result (preset to UNIT);
 * returning non-zero fails the execution.
 * ---------------------------------------------------------------------------------------- */
int double_value(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    if (arg_count != 1 || args[0].value_type != STOFFEL_VALUE_INT) {
        return -1; /* Error */
    }

    result->value_type = STOFFEL_VALUE_INT;
    result->data.int_val = args[0].data.int_val * 2;
    return 0; /* Success */
}

/* ------------------------------------------------------------------------------------------
 * 6. A C function VM code calls with `CALL host_log`: host_log(label, n) prints both and
 * returns n * 10. String arguments point into memory the VM owns and frees after the call,
 * so a callback that wants to keep one must copy it.
 * ---------------------------------------------------------------------------------------- */
static int host_log(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    if (arg_count != 2 || args[0].value_type != STOFFEL_VALUE_STRING ||
        args[1].value_type != STOFFEL_VALUE_INT) {
        return 1;
    }
    printf("host_log called from VM code: %s %lld\n", args[0].data.string_val,
           (long long)args[1].data.int_val);
    result->value_type = STOFFEL_VALUE_INT;
    result->data.int_val = args[1].data.int_val * 10;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * 7. An `_ex` callback (CForeignFunctionEx): it also receives the calling VM and the
 * user_data given at registration. It may call back into that VM (execute code, use the
 * heap, collect garbage) while VM code waits for it.
 *
 * scale_then_add(x) computes add(x * factor, 100) by running the VM function `add`,
 * where factor is the int64_t that user_data points to.
 * ---------------------------------------------------------------------------------------- */
static int scale_then_add(VMHandle vm, void *user_data, const StoffelValue *args,
                          int arg_count, StoffelValue *result)
{
    const int64_t factor = *(const int64_t *)user_data;
    if (arg_count != 1 || args[0].value_type != STOFFEL_VALUE_INT) {
        return 1;
    }
    StoffelValue add_args[2] = {int_value(args[0].data.int_val * factor), int_value(100)};
    StoffelValue sum;
    int status = stoffel_execute_with_args(vm, "add", add_args, 2, &sum); /* re-entry */
    if (status != STOFFEL_OK) {
        return status; /* the outer execution fails, naming this function and code */
    }
    *result = sum; /* an INT: nothing to release */
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * 9. Foreign objects: the VM stores an opaque host pointer; the finalizer runs exactly once,
 * when the collector finds the value unreachable or when the VM is destroyed.
 * ---------------------------------------------------------------------------------------- */
typedef struct {
    char name[32];
    int uses;
} Resource;

static Resource *resource_new(const char *name)
{
    Resource *r = malloc(sizeof *r);
    if (r == NULL) {
        exit(1);
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    r->uses = 0;
    return r;
}

static void resource_finalize(void *object)
{
    Resource *r = object;
    printf("finalizer: releasing resource '%s'\n", r->name);
    free(r);
}

/* print output of VM code, routed through C so it interleaves with printf. */
static void print_to_stdout(const char *text, void *user_data)
{
    printf("%s%s", (const char *)user_data, text); /* text ends in a newline */
}

/* The assembly program of sections 3 to 8 (syntax: README, "Assembly syntax"). */
static const char *const PROGRAM =
    "; add(a, b) = a + b\n"
    ".function add(a, b)\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    "\n"
    "; greeting(name) prints a line and returns a string\n"
    ".function greeting(name) registers 3\n"
    "    MOV r1, r0\n"
    "    LDI r2, \"hello,\"\n"
    "    PUSHARG r2\n"
    "    PUSHARG r1\n"
    "    CALL print\n"
    "    LDI r0, \"Greetings from StoffelVM\"\n"
    "    RET r0\n"
    "\n"
    "; make_point(x, y) returns a new object { x: x, y: y }\n"
    ".function make_point(x, y) registers 6\n"
    "    MOV r2, r0\n"
    "    MOV r3, r1\n"
    "    CALL create_object\n"
    "    MOV r4, r0\n"
    "    LDI r5, \"x\"\n"
    "    PUSHARG r4\n"
    "    PUSHARG r5\n"
    "    PUSHARG r2\n"
    "    CALL set_field\n"
    "    LDI r5, \"y\"\n"
    "    PUSHARG r4\n"
    "    PUSHARG r5\n"
    "    PUSHARG r3\n"
    "    CALL set_field\n"
    "    RET r4\n"
    "\n"
    "; report(n) calls the C function host_log(\"n is\", n) and returns its result + 1\n"
    ".function report(n) registers 3\n"
    "    MOV r1, r0\n"
    "    LDI r2, \"n is\"\n"
    "    PUSHARG r2\n"
    "    PUSHARG r1\n"
    "    CALL host_log\n"
    "    LDI r2, 1\n"
    "    ADD r0, r0, r2\n"
    "    RET r0\n"
    "\n"
    "; use_ex(x) calls the _ex callback scale_then_add(x)\n"
    ".function use_ex(x)\n"
    "    PUSHARG r0\n"
    "    CALL scale_then_add\n"
    "    RET r0\n"
    "\n"
    "; make_counter(count) returns a closure over `increment` capturing count\n"
    ".function make_counter(count) registers 3\n"
    "    LDI r1, \"increment\"\n"
    "    LDI r2, \"count\"\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    CALL create_closure\n"
    "    RET r0\n"
    "\n"
    "; increment(step): count += step; returns count\n"
    ".function increment(step) registers 4\n"
    "    MOV r1, r0\n"
    "    LDI r2, \"count\"\n"
    "    PUSHARG r2\n"
    "    CALL get_upvalue\n"
    "    ADD r3, r0, r1\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    CALL set_upvalue\n"
    "    RET r3\n";

/* Reads a whole file into a malloc'd buffer. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    uint8_t *data = NULL;
    size_t size = 0;
    size_t cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *bigger = realloc(data, cap);
            if (bigger == NULL) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = bigger;
        }
        size_t n = fread(data + size, 1, cap - size, f);
        if (n == 0) {
            break;
        }
        size += n;
    }
    fclose(f);
    *len = size;
    return data;
}

int main(int argc, char **argv)
{
    const char *bytecode_path =
        argc > 1 ? argv[1] : "tests/conformance/fibonacci_recursive.stflb";

    printf("StoffelVM %s\n", stoffel_version());

    /* ---------------------------------------------------------------------------------------
     * 1. Create a VM, register a C function and execute it by name (the seed example).
     * ------------------------------------------------------------------------------------- */
    VMHandle vm = stoffel_create_vm();
    if (vm == NULL) {
        fprintf(stderr, "could not create a VM\n");
        return 1;
    }
    check(vm, stoffel_register_foreign_function(vm, "double", double_value), "register double");

    StoffelValue arg;
    arg.value_type = STOFFEL_VALUE_INT;
    arg.data.int_val = 21;

    StoffelValue result;
    int status = stoffel_execute_with_args(vm, "double", &arg, 1, &result);
    if (status == 0 && result.value_type == STOFFEL_VALUE_INT) {
        printf("Result: %lld\n", (long long)result.data.int_val);
    }

    /* VM output (the `print` builtin) goes to stdout by default; route it through C so it
     * is ordered with this program's printf output. */
    check(vm, stoffel_set_print_callback(vm, print_to_stdout, (void *)"[vm print] "),
          "set print callback");

    /* ---------------------------------------------------------------------------------------
     * 2. Load STFL bytecode (the StoffelLang compiler's output) from a file and run main.
     * ------------------------------------------------------------------------------------- */
    size_t bytecode_len = 0;
    uint8_t *bytecode = read_file(bytecode_path, &bytecode_len);
    if (bytecode == NULL) {
        fprintf(stderr, "cannot read %s\n", bytecode_path);
        return 1;
    }
    check(vm, stoffel_load_bytecode(vm, bytecode, bytecode_len), "load bytecode");
    free(bytecode); /* the VM keeps its own copy of what it needs */
    check(vm, stoffel_execute(vm, "main", &result), "execute main");
    if (result.value_type == STOFFEL_VALUE_INT) {
        printf("bytecode main() = %lld\n", (long long)result.data.int_val);
    }

    /* ---------------------------------------------------------------------------------------
     * 3. Load text assembly (it adds to what is loaded) and call a function with arguments.
     * Register the C functions it calls first (they could also be registered later: calls
     * are resolved by name when they run).
     * ------------------------------------------------------------------------------------- */
    int64_t factor = 3;
    check(vm, stoffel_register_foreign_function(vm, "host_log", host_log), "register host_log");
    check(vm, stoffel_register_foreign_function_ex(vm, "scale_then_add", scale_then_add, &factor),
          "register scale_then_add");
    check(vm, stoffel_load_assembly(vm, PROGRAM), "load assembly");

    StoffelValue two_ints[2] = {int_value(2), int_value(40)};
    check(vm, stoffel_execute_with_args(vm, "add", two_ints, 2, &result), "add");
    printf("add(2, 40) = %lld\n", (long long)result.data.int_val);

    /* ---------------------------------------------------------------------------------------
     * 4. Strings. A STRING result is a fresh copy the caller frees; string arguments are
     * copied into the VM, so C keeps ownership of its own.
     * ------------------------------------------------------------------------------------- */
    StoffelValue name = string_value("C caller");
    check(vm, stoffel_execute_with_args(vm, "greeting", &name, 1, &result), "greeting");
    printf("greeting() returned \"%s\"\n", result.data.string_val);
    stoffel_free_string((char *)result.data.string_val);

    StoffelValue made;
    check(vm, stoffel_create_string(vm, "made by stoffel_create_string", &made), "create string");
    printf("created string \"%s\"\n", made.data.string_val);
    stoffel_free_string((char *)made.data.string_val);

    /* ---------------------------------------------------------------------------------------
     * 5. Objects and arrays. Ids in results belong to the caller until released.
     * ------------------------------------------------------------------------------------- */
    StoffelValue person;
    check(vm, stoffel_create_object(vm, &person), "create object");
    StoffelValue key = string_value("name");
    StoffelValue value = string_value("Alice");
    check(vm, stoffel_set_field(vm, &person, &key, &value), "set name");
    key = string_value("age");
    value = int_value(30);
    check(vm, stoffel_set_field(vm, &person, &key, &value), "set age");

    key = string_value("name");
    check(vm, stoffel_get_field(vm, &person, &key, &result), "get name");
    printf("person.name = %s\n", result.data.string_val);
    stoffel_free_string((char *)result.data.string_val); /* a STRING result: free it */

    StoffelValue numbers;
    check(vm, stoffel_create_array(vm, &numbers), "create array");
    for (int64_t i = 1; i <= 3; i++) {
        value = int_value(i * 10);
        check(vm, stoffel_array_push(vm, &numbers, &value), "array push");
    }
    size_t length = 0;
    check(vm, stoffel_array_length(vm, &numbers, &length), "array length");
    key = int_value(1);
    check(vm, stoffel_get_field(vm, &numbers, &key, &result), "get numbers[1]");
    printf("numbers has %zu elements, numbers[1] = %lld\n", length, (long long)result.data.int_val);

    /* An object made by VM code comes back as an id too. */
    StoffelValue point_args[2] = {int_value(3), int_value(4)};
    StoffelValue point;
    check(vm, stoffel_execute_with_args(vm, "make_point", point_args, 2, &point), "make_point");
    key = string_value("y");
    check(vm, stoffel_get_field(vm, &point, &key, &result), "get point.y");
    printf("make_point(3, 4).y = %lld\n", (long long)result.data.int_val);

    /* Every id received goes back. */
    check(vm, stoffel_release_value(vm, &person), "release person");
    check(vm, stoffel_release_value(vm, &numbers), "release numbers");
    check(vm, stoffel_release_value(vm, &point), "release point");

    /* ---------------------------------------------------------------------------------------
     * 6. VM code calling a C function with arguments.
     * ------------------------------------------------------------------------------------- */
    value = int_value(7);
    check(vm, stoffel_execute_with_args(vm, "report", &value, 1, &result), "report");
    printf("report(7) = %lld\n", (long long)result.data.int_val);

    /* ---------------------------------------------------------------------------------------
     * 7. VM code calling an _ex callback that calls back into the VM.
     * ------------------------------------------------------------------------------------- */
    value = int_value(5);
    check(vm, stoffel_execute_with_args(vm, "use_ex", &value, 1, &result), "use_ex");
    printf("use_ex(5) = %lld (the callback ran add(5 * 3, 100) inside the VM)\n",
           (long long)result.data.int_val);

    /* ---------------------------------------------------------------------------------------
     * 8. Closures: VM code makes one, C calls it (twice: it keeps state) and releases it.
     * ------------------------------------------------------------------------------------- */
    StoffelValue counter;
    value = int_value(10);
    check(vm, stoffel_execute_with_args(vm, "make_counter", &value, 1, &counter), "make_counter");
    value = int_value(5);
    check(vm, stoffel_call_closure(vm, &counter, &value, 1, &result), "call closure");
    printf("counter(5) = %lld\n", (long long)result.data.int_val);
    value = int_value(7);
    check(vm, stoffel_call_closure(vm, &counter, &value, 1, &result), "call closure");
    printf("counter(7) = %lld\n", (long long)result.data.int_val);
    check(vm, stoffel_release_value(vm, &counter), "release counter");

    /* ---------------------------------------------------------------------------------------
     * 9. Foreign objects with finalizers.
     * ------------------------------------------------------------------------------------- */
    StoffelValue temp_file;
    check(vm, stoffel_register_foreign_object_ex(vm, resource_new("temp-file"),
                                                 resource_finalize, &temp_file),
          "register temp-file");
    StoffelValue config;
    check(vm, stoffel_register_foreign_object_ex(vm, resource_new("config"), resource_finalize,
                                                 &config),
          "register config");

    /* The pointer comes back unchanged. */
    void *raw = NULL;
    check(vm, stoffel_get_foreign_object(vm, &config, &raw), "get foreign object");
    ((Resource *)raw)->uses++;
    printf("foreign object '%s' used %d time(s)\n", ((Resource *)raw)->name,
           ((Resource *)raw)->uses);

    /* Foreign values can be stored in VM objects like any other value. */
    StoffelValue holder;
    check(vm, stoffel_create_object(vm, &holder), "create holder");
    key = string_value("file");
    check(vm, stoffel_set_field(vm, &holder, &key, &temp_file), "store temp-file");
    check(vm, stoffel_release_value(vm, &temp_file), "release temp-file id");

    printf("collecting while the holder object still references temp-file...\n");
    check(vm, stoffel_gc_collect(vm), "gc");
    printf("releasing the holder and collecting...\n");
    check(vm, stoffel_release_value(vm, &holder), "release holder");
    check(vm, stoffel_gc_collect(vm), "gc"); /* temp-file's finalizer runs here */

    StoffelGcStats stats;
    check(vm, stoffel_gc_stats(vm, &stats), "gc stats");
    printf("after gc: %zu foreign object(s) alive, %zu live handle(s)\n", stats.foreign_objects,
           stats.live_handles);

    /* ---------------------------------------------------------------------------------------
     * 10. Errors: a non-zero code, and a message from stoffel_last_error (owned by the VM).
     * ------------------------------------------------------------------------------------- */
    status = stoffel_execute(vm, "no_such_function", &result);
    printf("executing no_such_function: code %d, message: %s\n", status, stoffel_last_error(vm));

    StoffelValue not_an_int = string_value("twenty-one");
    status = stoffel_execute_with_args(vm, "double", &not_an_int, 1, &result);
    printf("double(\"twenty-one\"): code %d, message: %s\n", status, stoffel_last_error(vm));

    status = stoffel_load_assembly(vm, ".function broken\n    FROB r1\n");
    printf("loading bad assembly: code %d, message: %s\n", status, stoffel_last_error(vm));

    /* Released ids are dead for good: using one is an error code, never a crash. */
    status = stoffel_release_value(vm, &point);
    printf("releasing an id twice: code %d, message: %s\n", status, stoffel_last_error(vm));

    /* The VM is still fine after errors. */
    check(vm, stoffel_execute_with_args(vm, "add", two_ints, 2, &result), "add after errors");
    printf("add(2, 40) after the errors = %lld\n", (long long)result.data.int_val);

    /* ---------------------------------------------------------------------------------------
     * 11. Clean-up. `config` is released last, with no collection after it, so its
     * finalizer runs inside stoffel_destroy_vm (which runs the finalizers of all foreign
     * objects still alive and frees everything the VM owns).
     * ------------------------------------------------------------------------------------- */
    check(vm, stoffel_release_value(vm, &config), "release config");
    printf("destroying the VM...\n");
    stoffel_destroy_vm(vm);
    printf("done\n");
    return 0;
}
