/*
 * no_memory.c: allocation failure in the library (issue 18, item 9), run under `ulimit -v`.
 *   no_memory probe   prints the process's virtual size after the warm-up, for the test to
 *                     set the limit from;
 *   no_memory run     under a limit of that size + 160 MiB (tests/c_api.rs sets it with
 *                     `sh -c 'ulimit -v N; exec no_memory run'`):
 *  1. with a 100 MiB string of the program's own (which leaves about 60 MiB): a STRING
 *     argument, stoffel_create_string, a function name and a registration name of that size
 *     fail with STOFFEL_ERROR_LIMIT ("out of memory") instead of aborting;
 *  2. with a 1 MiB memory limit on the VM, a 40 MiB STRING argument (which the allocator
 *     could copy once, but not twice) is refused before any copy;
 *  3. the VM works after each of those;
 *  4. VMs created until stoffel_create_vm returns NULL (with "out of memory" in the thread's
 *     last error) rather than aborting; once they are destroyed, a new VM works.
 * Run by tests/c_api.rs.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

static const char *const PROGRAM =
    ".function add(a, b)\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    ".function first(a)\n"
    "    RET r0\n";

static long vm_size_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmSize:", 7) == 0) {
            kib = atol(line + 7);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kib;
}

static int dummy(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    (void)args;
    (void)arg_count;
    (void)result;
    return 0;
}

/* The same start for both modes, so that the probe's figure holds for the run. */
static VMHandle *warm_up(size_t slots)
{
    VMHandle *vms = calloc(slots, sizeof *vms);
    CHECK(vms != NULL);
    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
    CHECK_VM_WORKS(vm);
    stoffel_destroy_vm(vm);
    return vms;
}

#define MIB ((size_t)1 << 20)
#define MAX_VMS 2000000

int main(int argc, char **argv)
{
    int probe = argc > 1 && strcmp(argv[1], "probe") == 0;
    VMHandle *vms = warm_up(MAX_VMS);
    if (probe) {
        printf("no_memory: vmsize_kib=%ld\n", vm_size_kib());
        return 0;
    }
    printf("no_memory: running at vmsize_kib=%ld\n", vm_size_kib());

    /* ---- 1. ---- */
    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
    size_t big_len = 100 * MIB;
    char *big = malloc(big_len + 1);
    if (big == NULL) {
        FAIL("the test's own 100 MiB could not be allocated: the limit is too tight");
    }
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    StoffelValue r;
    StoffelValue arg = v_str(big);
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "first", &arg, 1, &r), STOFFEL_ERROR_LIMIT,
              "out of memory");
    CHECK_VM_WORKS(vm);
    CHECK_ERR(vm, stoffel_create_string(vm, big, &r), STOFFEL_ERROR_LIMIT, "out of memory");
    CHECK_VM_WORKS(vm);
    CHECK_ERR(vm, stoffel_execute(vm, big, &r), STOFFEL_ERROR_LIMIT, "out of memory");
    CHECK_ERR(vm, stoffel_register_foreign_function(vm, big, dummy), STOFFEL_ERROR_LIMIT,
              "out of memory");
    CHECK_VM_WORKS(vm);
    printf("no_memory: 100 MiB strings and names refused with STOFFEL_ERROR_LIMIT\n");

    /* ---- 2. ---- */
    CHECK_OK(vm, stoffel_set_memory_limit(vm, MIB));
    big[40 * MIB] = '\0';
    CHECK_ERR(vm, stoffel_execute_with_args(vm, "first", &arg, 1, &r), STOFFEL_ERROR_LIMIT,
              "memory limit");
    StoffelValue object;
    CHECK_OK(vm, stoffel_create_object(vm, &object));
    StoffelValue key = v_str("k");
    CHECK_ERR(vm, stoffel_set_field(vm, &object, &key, &arg), STOFFEL_ERROR_LIMIT,
              "memory limit");
    CHECK_OK(vm, stoffel_release_value(vm, &object));
    CHECK_VM_WORKS(vm);
    free(big);
    stoffel_destroy_vm(vm);
    printf("no_memory: a 40 MiB string refused by a 1 MiB VM memory limit before any copy\n");

    /* ---- 4. ---- */
    size_t count = 0;
    while (count < MAX_VMS) {
        VMHandle v = stoffel_create_vm();
        if (v == NULL) {
            break;
        }
        vms[count++] = v;
    }
    CHECK(count < MAX_VMS);
    CHECK(count > 0);
    CHECK_THREAD_ERROR("out of memory");
    for (size_t i = 0; i < count; i++) {
        stoffel_destroy_vm(vms[i]);
    }
    vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_load_assembly(vm, PROGRAM));
    CHECK_VM_WORKS(vm);
    stoffel_destroy_vm(vm);
    printf("no_memory: stoffel_create_vm returned NULL after %zu VMs; after destroying them a "
           "new VM works\n",
           count);
    free(vms);
    printf("no_memory: all checks=%ld passed\n", checks_passed);
    return 0;
}
