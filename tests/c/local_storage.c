/*
 * local_storage.c: stoffel_set_local_storage through the real library. Without a store the
 * LocalStorage builtins fail ("Local storage is not configured"); with a directory a value
 * stored by one VM is in a file there and is loaded by another; NULL removes the store
 * again; a path that is not UTF-8 is refused. Prints "local_storage: all N checks passed".
 */
#define _POSIX_C_SOURCE 200809L

#include <unistd.h>

#include "check.h"

static const char *program =
    ".function put(v) registers 2\n"
    "    LDI r1, \"../Job cursor\"\n"
    "    PUSHARG r1\n"
    "    PUSHARG r0\n"
    "    CALL LocalStorage.store\n"
    "    RET r0\n"
    ".function get registers 2\n"
    "    LDI r1, \"../Job cursor\"\n"
    "    PUSHARG r1\n"
    "    CALL LocalStorage.load\n"
    "    RET r0\n"
    ".function drop registers 2\n"
    "    LDI r1, \"../Job cursor\"\n"
    "    PUSHARG r1\n"
    "    CALL LocalStorage.delete\n"
    "    RET r0\n";

static VMHandle new_vm(void)
{
    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, program));
    return vm;
}

int main(void)
{
    char dir[256];
    char file[512];
    snprintf(dir, sizeof dir, "/tmp/stoffel_local_storage_c_%ld", (long)getpid());
    /* The key "../Job cursor" as a file name inside the directory. */
    snprintf(file, sizeof file, "%s/%%2E.%%2F%%4Aob%%20cursor.stflval", dir);

    VMHandle a = new_vm();
    StoffelValue r;
    StoffelValue v = { .value_type = STOFFEL_VALUE_INT, .data.int_val = 1121 };

    CHECK_ERR(a, stoffel_execute_with_args(a, "put", &v, 1, &r), STOFFEL_ERROR_EXECUTE_WITH_ARGS,
              "Local storage is not configured");
    CHECK_OK(a, stoffel_set_local_storage(a, dir));
    CHECK_OK(a, stoffel_execute_with_args(a, "put", &v, 1, &r));
    CHECK(r.value_type == STOFFEL_VALUE_BOOL && r.data.bool_val);
    FILE *f = fopen(file, "rb");
    CHECK(f != NULL);
    char magic[8];
    CHECK(fread(magic, 1, 8, f) == 8 && memcmp(magic, "STFLVAL1", 8) == 0);
    fclose(f);

    VMHandle b = new_vm();
    CHECK_OK(b, stoffel_set_local_storage(b, dir));
    CHECK_OK(b, stoffel_execute(b, "get", &r));
    CHECK(r.value_type == STOFFEL_VALUE_INT && r.data.int_val == 1121);
    CHECK_OK(b, stoffel_execute(b, "drop", &r));
    CHECK(r.value_type == STOFFEL_VALUE_BOOL && r.data.bool_val);
    CHECK_OK(a, stoffel_execute(a, "get", &r));
    CHECK(r.value_type == STOFFEL_VALUE_UNIT);

    CHECK_OK(a, stoffel_set_local_storage(a, NULL));
    CHECK_ERR(a, stoffel_execute(a, "get", &r), STOFFEL_ERROR_EXECUTE,
              "Local storage is not configured");
    CHECK_ERR(a, stoffel_set_local_storage(a, "/tmp/\xff"), STOFFEL_ERROR_UTF8, "not UTF-8");

    stoffel_destroy_vm(a);
    stoffel_destroy_vm(b);
    CHECK(rmdir(dir) == 0);
    printf("local_storage: all %ld checks passed\n", checks_passed);
    return 0;
}
