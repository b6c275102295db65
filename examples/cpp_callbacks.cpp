// cpp_callbacks.cpp: stoffel-vm from C++, with callbacks that may throw.
//
// Callbacks (C functions called by VM code, print callbacks, finalizers) must return
// normally: a C++ exception must never propagate out of one into the library (that
// terminates the process), and neither may a longjmp. So every callback body runs inside
// try/catch, and an exception becomes what the C API understands: a non-zero return code,
// which fails the execution with a message naming the function. `guarded` below does that
// once for any C++ callable; the exception's text is kept for the host to read.
//
// Build (from the crate root, after `cargo build --release`), as one command:
//   g++ -std=c++11 -I include examples/cpp_callbacks.cpp -L target/release -lstoffel_vm
//       -Wl,-rpath,"$PWD/target/release" -o cpp_callbacks && ./cpp_callbacks
#include "stoffel_vm.h"

#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

// A VM owned by a C++ object: destroyed when it goes out of scope.
class Vm {
  public:
    Vm() : handle_(stoffel_create_vm()) {
        if (handle_ == nullptr) throw std::runtime_error("stoffel_create_vm failed");
    }
    ~Vm() { stoffel_destroy_vm(handle_); }
    Vm(const Vm &) = delete;
    Vm &operator=(const Vm &) = delete;

    VMHandle get() const { return handle_; }

    // Throws (on the host's side of the boundary, never inside a callback) on failure.
    void check(int rc, const char *what) const {
        if (rc != STOFFEL_OK) {
            const char *message = stoffel_last_error(handle_);
            throw std::runtime_error(std::string(what) + " failed (" + std::to_string(rc) +
                                     "): " + (message ? message : "no message"));
        }
    }

  private:
    VMHandle handle_;
};

// The C++ side of a C function callback: gets the arguments, returns the result.
using Callback = std::function<StoffelValue(VMHandle, const StoffelValue *, int)>;

// What `guarded` registers: the callable, and the text of the last exception it threw.
struct Guarded {
    Callback body;
    std::string last_exception;
};

// The one C-callable trampoline: runs the C++ callable inside try/catch. Nothing escapes.
int trampoline(VMHandle vm, void *user_data, const StoffelValue *args, int arg_count,
               StoffelValue *result) {
    auto *g = static_cast<Guarded *>(user_data);
    try {
        *result = g->body(vm, args, arg_count);
        return 0;
    } catch (const std::exception &e) {
        try {
            g->last_exception = e.what();
        } catch (...) {
            // Even recording the message must not throw out of here (std::bad_alloc).
        }
        return 1;
    } catch (...) {
        g->last_exception = "unknown exception";
        return 2;
    }
}

// Registers `body` as the C function `name` of `vm`, guarded. The returned object must live
// as long as the VM may call the function.
std::unique_ptr<Guarded> guarded(Vm &vm, const char *name, Callback body) {
    auto g = std::unique_ptr<Guarded>(new Guarded{std::move(body), {}});
    vm.check(stoffel_register_foreign_function_ex(vm.get(), name, trampoline, g.get()),
             "stoffel_register_foreign_function_ex");
    return g;
}

StoffelValue int_value(int64_t i) {
    StoffelValue v;
    v.value_type = STOFFEL_VALUE_INT;
    v.data.int_val = i;
    return v;
}

int64_t int_arg(const StoffelValue *args, int arg_count, int i) {
    if (i >= arg_count || args[i].value_type != STOFFEL_VALUE_INT)
        throw std::invalid_argument("argument " + std::to_string(i) + " is not an INT");
    return args[i].data.int_val;
}

// A print callback and a finalizer must not throw either: they get try/catch too.
void print_line(const char *text, void *user_data) {
    try {
        static_cast<std::vector<std::string> *>(user_data)->push_back(text);
    } catch (...) {
        // Dropped: a print callback has no way to report a failure.
    }
}

void release_buffer(void *object) {
    try {
        delete static_cast<std::vector<int> *>(object);
        std::printf("finalizer: buffer released\n");
    } catch (...) {
    }
}

const char *const PROGRAM =
    ".function checked_div(a, b)\n"
    "    PUSHARG r0\n"
    "    PUSHARG r1\n"
    "    CALL cpp_div\n"
    "    RET r0\n"
    ".function shout(x)\n"
    "    PUSHARG r0\n"
    "    CALL print\n"
    "    RET r0\n";

}  // namespace

int main() {
    try {
        Vm vm;
        vm.check(stoffel_load_assembly(vm.get(), PROGRAM), "stoffel_load_assembly");

        // A callback that throws for bad input.
        auto div = guarded(vm, "cpp_div", [](VMHandle, const StoffelValue *args, int n) {
            int64_t a = int_arg(args, n, 0), b = int_arg(args, n, 1);
            if (b == 0) throw std::domain_error("division by zero");
            return int_value(a / b);
        });

        StoffelValue args[2] = {int_value(84), int_value(2)};
        StoffelValue result;
        vm.check(stoffel_execute_with_args(vm.get(), "checked_div", args, 2, &result),
                 "checked_div(84, 2)");
        std::printf("checked_div(84, 2) = %lld\n", (long long)result.data.int_val);

        // The exception becomes a failed execution; the VM stays usable.
        args[1] = int_value(0);
        int rc = stoffel_execute_with_args(vm.get(), "checked_div", args, 2, &result);
        std::printf("checked_div(84, 0): code %d, exception \"%s\"\n", rc,
                    div->last_exception.c_str());
        const char *message = stoffel_last_error(vm.get());
        std::printf("last error mentions cpp_div: %s\n",
                    message && std::string(message).find("cpp_div") != std::string::npos
                        ? "yes"
                        : "no");

        args[1] = int_value(4);
        vm.check(stoffel_execute_with_args(vm.get(), "checked_div", args, 2, &result),
                 "checked_div(84, 4)");
        std::printf("checked_div(84, 4) = %lld (the VM works after the exception)\n",
                    (long long)result.data.int_val);

        // Print callback and finalizer, both guarded.
        std::vector<std::string> lines;
        vm.check(stoffel_set_print_callback(vm.get(), print_line, &lines),
                 "stoffel_set_print_callback");
        StoffelValue hello = int_value(7);
        vm.check(stoffel_execute_with_args(vm.get(), "shout", &hello, 1, &result), "shout(7)");
        std::printf("printed %zu line(s): %s", lines.size(),
                    lines.empty() ? "\n" : lines[0].c_str());

        StoffelValue buffer;
        vm.check(stoffel_register_foreign_object_ex(vm.get(), new std::vector<int>(1024),
                                                    release_buffer, &buffer),
                 "stoffel_register_foreign_object_ex");
        std::printf("destroying the VM...\n");
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    std::printf("done\n");
    return 0;
}
