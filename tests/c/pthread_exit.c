/*
 * pthread_exit.c: pthread_exit inside a callback (issue 18, item 8). Callbacks must return
 * normally; this checks what the guide says happens if one ends its thread instead: the
 * process aborts (SIGABRT). The line after the join must never appear. Run by tests/c_api.rs.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "check.h"

static int exiting(const StoffelValue *args, int arg_count, StoffelValue *result)
{
    (void)args;
    (void)arg_count;
    (void)result;
    pthread_exit(NULL);
}

static void *thread_main(void *arg)
{
    (void)arg;
    VMHandle vm = stoffel_create_vm();
    CHECK(vm != NULL);
    CHECK_OK(vm, stoffel_register_foreign_function(vm, "exiting", exiting));
    CHECK_OK(vm, stoffel_load_assembly(vm, ".function f\n    CALL exiting\n    RET r0\n"));
    printf("pthread_exit: calling\n");
    fflush(stdout);
    StoffelValue r;
    stoffel_execute(vm, "f", &r);
    return NULL;
}

int main(void)
{
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, thread_main, NULL) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    printf("pthread_exit: the thread ended and the process lives on\n");
    return 0;
}
