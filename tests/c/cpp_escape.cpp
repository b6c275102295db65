// cpp_escape.cpp: a C++ exception that escapes a callback (issue 18, item 8). Callbacks must
// not let exceptions out (examples/cpp_callbacks.cpp shows the try/catch); this checks what
// the guide says happens if one does: the process is terminated (SIGABRT), even though the
// host has a try/catch around the call, instead of the exception crossing the library.
// Prints a line before the call; the line after it must never appear. Run by tests/c_api.rs.
#include "stoffel_vm.h"

#include <cstdio>
#include <stdexcept>

static int throwing(const StoffelValue *, int, StoffelValue *) {
    throw std::runtime_error("escaped");
}

int main() {
    VMHandle vm = stoffel_create_vm();
    if (vm == nullptr) return 1;
    if (stoffel_register_foreign_function(vm, "throwing", throwing) != STOFFEL_OK) return 2;
    if (stoffel_load_assembly(vm, ".function f\n    CALL throwing\n    RET r0\n") != STOFFEL_OK)
        return 3;
    std::printf("cpp_escape: calling\n");
    std::fflush(stdout);
    try {
        StoffelValue result;
        stoffel_execute(vm, "f", &result);
    } catch (const std::exception &e) {
        std::printf("cpp_escape: caught \"%s\" across the library\n", e.what());
    }
    std::printf("cpp_escape: returned\n");
    stoffel_destroy_vm(vm);
    return 0;
}
