/*
 * fork.c: fork() while other threads use the library (issue 18, item 10). Three threads
 * create, use (execute, print to stdout, strings) and destroy VMs without pause, so the
 * library's locks are often held at the moment of a fork; the main thread forks 300 times.
 * Each child creates a VM, uses it (execute, print, a string) and destroys it, and exits 0;
 * a child that hangs is killed by its own alarm (5 s) and fails the test, as does the
 * parent's alarm (120 s) if anything else hangs.
 * stdout is /dev/null while the threads run (they print); the report goes to the original
 * stdout. Run by tests/c_api.rs.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define THREADS 3
#define FORKS 300

static const char *const PROGRAM =
    ".function add(a, b)\n"
    "    ADD r2, r0, r1\n"
    "    RET r2\n"
    ".function say(x)\n"
    "    PUSHARG r0\n"
    "    CALL print\n"
    "    RET r0\n";

static int stop; /* atomic */

/* Creates, uses and destroys one VM; returns 0 if everything worked. */
static int one_vm(int print)
{
    VMHandle vm = stoffel_create_vm();
    if (vm == NULL) {
        return 1;
    }
    int bad = 0;
    StoffelValue args[2] = {v_int(40), v_int(2)};
    StoffelValue r;
    bad |= stoffel_load_assembly(vm, PROGRAM) != STOFFEL_OK;
    bad |= stoffel_execute_with_args(vm, "add", args, 2, &r) != STOFFEL_OK || r.data.int_val != 42;
    if (print) {
        StoffelValue x = v_int(7);
        bad |= stoffel_execute_with_args(vm, "say", &x, 1, &r) != STOFFEL_OK;
    }
    StoffelValue s;
    bad |= stoffel_create_string(vm, "text", &s) != STOFFEL_OK;
    if (!bad) {
        stoffel_free_string((char *)s.data.string_val);
    }
    stoffel_destroy_vm(vm);
    return bad;
}

static void *churn_main(void *arg)
{
    long *failures = arg;
    long i = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        *failures += one_vm(i++ % 16 == 0);
    }
    return NULL;
}

int main(void)
{
    int report = dup(1);
    CHECK(report >= 0);
    int devnull = open("/dev/null", O_WRONLY);
    CHECK(devnull >= 0 && dup2(devnull, 1) == 1);
    alarm(120);

    pthread_t threads[THREADS];
    long failures[THREADS] = {0};
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_create(&threads[i], NULL, churn_main, &failures[i]) == 0);
    }
    int ok = 0;
    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            alarm(5);
            _exit(one_vm(1) == 0 ? 0 : 3);
        }
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            ok++;
        } else if (WIFSIGNALED(status)) {
            dprintf(report, "fork: child %d was killed by signal %d (%s)\n", i, WTERMSIG(status),
                    WTERMSIG(status) == SIGALRM ? "hung" : "crashed");
            return 1;
        } else {
            dprintf(report, "fork: child %d exited with %d\n", i, WEXITSTATUS(status));
            return 1;
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0);
        CHECK(failures[i] == 0);
    }
    CHECK(ok == FORKS);
    dprintf(report, "fork: %d children created, used and destroyed a VM and exited 0\n", ok);
    dprintf(report, "fork: all checks=%ld passed\n", checks_passed);
    return 0;
}
