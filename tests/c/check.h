/*
 * check.h: tiny assertion helpers shared by the C tests of the C API (tests/c_api.rs).
 * A failed check prints the file, line and what failed to stderr and exits with status 1.
 */
#ifndef STOFFEL_TEST_CHECK_H
#define STOFFEL_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stoffel_vm.h"

static long checks_passed = 0;

#define FAIL(...)                                                                           \
    do {                                                                                    \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                     \
        fprintf(stderr, __VA_ARGS__);                                                       \
        fprintf(stderr, "\n");                                                              \
        exit(1);                                                                            \
    } while (0)

/* A condition that must hold. */
#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            FAIL("CHECK failed: %s", #cond);                                                \
        }                                                                                   \
        checks_passed++;                                                                    \
    } while (0)

/* A call on `vm` that must return STOFFEL_OK. */
#define CHECK_OK(vm, call)                                                                  \
    do {                                                                                    \
        int rc_ = (call);                                                                   \
        if (rc_ != STOFFEL_OK) {                                                            \
            const char *m_ = stoffel_last_error(vm);                                        \
            FAIL("%s returned %d: %s", #call, rc_, m_ ? m_ : "(no message)");               \
        }                                                                                   \
        checks_passed++;                                                                    \
    } while (0)

/* A call that must fail with `code`, leaving a message on `errvm` (stoffel_last_error)
 * that contains `needle`. */
#define CHECK_ERR(errvm, call, code, needle)                                                \
    do {                                                                                    \
        int rc_ = (call);                                                                   \
        const char *m_ = stoffel_last_error(errvm);                                         \
        if (rc_ != (code)) {                                                                \
            FAIL("%s returned %d, expected %d (%s); last error: %s", #call, rc_, (code),    \
                 #code, m_ ? m_ : "(none)");                                                \
        }                                                                                   \
        if (m_ == NULL || m_[0] == '\0') {                                                  \
            FAIL("%s: no error message", #call);                                            \
        }                                                                                   \
        if (strstr(m_, (needle)) == NULL) {                                                 \
            FAIL("%s: message \"%s\" does not mention \"%s\"", #call, m_, (needle));        \
        }                                                                                   \
        checks_passed++;                                                                    \
    } while (0)

/* The thread's last error (stoffel_last_error(NULL)) must mention `needle`. */
#define CHECK_THREAD_ERROR(needle)                                                          \
    do {                                                                                    \
        const char *m_ = stoffel_last_error(NULL);                                          \
        if (m_ == NULL || strstr(m_, (needle)) == NULL) {                                   \
            FAIL("thread error \"%s\" does not mention \"%s\"", m_ ? m_ : "(none)",         \
                 (needle));                                                                 \
        }                                                                                   \
        checks_passed++;                                                                    \
    } while (0)

static inline StoffelValue v_unit(void)
{
    StoffelValue v;
    memset(&v, 0, sizeof v);
    v.value_type = STOFFEL_VALUE_UNIT;
    return v;
}

static inline StoffelValue v_int(int64_t i)
{
    StoffelValue v;
    v.value_type = STOFFEL_VALUE_INT;
    v.data.int_val = i;
    return v;
}

static inline StoffelValue v_float(double f)
{
    StoffelValue v;
    v.value_type = STOFFEL_VALUE_FLOAT;
    v.data.float_val = f;
    return v;
}

static inline StoffelValue v_bool(int b)
{
    StoffelValue v;
    memset(&v, 0, sizeof v);
    v.value_type = STOFFEL_VALUE_BOOL;
    v.data.bool_val = b;
    return v;
}

static inline StoffelValue v_str(const char *s)
{
    StoffelValue v;
    v.value_type = STOFFEL_VALUE_STRING;
    v.data.string_val = s;
    return v;
}

/* A value of kind `type` naming `id` (OBJECT, ARRAY, FOREIGN or CLOSURE). */
static inline StoffelValue v_id(StoffelValueType type, size_t id)
{
    StoffelValue v;
    v.value_type = type;
    v.data.object_id = id;
    return v;
}

/* A value whose type tag is `tag` (any int, written with memcpy: it may be outside the
 * enum) and whose payload is `payload`. */
static inline StoffelValue v_tag(int tag, int64_t payload)
{
    StoffelValue v;
    memset(&v, 0, sizeof v);
    memcpy(&v.value_type, &tag, sizeof tag);
    v.data.int_val = payload;
    return v;
}

/* Runs add(a, b) on `vm` and checks the sum: the VM still works. */
static inline void check_vm_works(VMHandle vm, int line)
{
    StoffelValue args[2] = {v_int(40), v_int(2)};
    StoffelValue r;
    int rc = stoffel_execute_with_args(vm, "add", args, 2, &r);
    if (rc != STOFFEL_OK || r.value_type != STOFFEL_VALUE_INT || r.data.int_val != 42) {
        const char *m = stoffel_last_error(vm);
        fprintf(stderr, "line %d: the VM no longer works: add returned %d (%s)\n", line, rc,
                m ? m : "(no message)");
        exit(1);
    }
    checks_passed++;
}
#define CHECK_VM_WORKS(vm) check_vm_works((vm), __LINE__)

#endif /* STOFFEL_TEST_CHECK_H */
