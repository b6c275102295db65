// Command stoffelvm-example embeds stoffel-vm in a Go program through its C API, with cgo.
//
// It loads a StoffelLang program compiled to STFL bytecode and runs it, registers a Go
// function (goDouble) that VM code calls, reads a STRING result and frees it, shows an error
// message, and destroys the VM. Every answer is checked; a mismatch exits with status 1.
//
// Build the library, then run the example from this directory:
//
//	cargo build --release                  # in the repository root
//	cd examples/go
//	go run .                               # runs ../../tests/conformance/fibonacci_recursive.stflb
//	go run . path/to/program.stflb         # any STFL file whose main returns fib(10) = 55
//
// Where the header and library come from: the #cgo lines below use ../../include and
// ../../target/release (also recorded as the run-time search path, rpath). For a library in
// another directory, say a debug build, pass that directory in the environment; cgo puts
// these flags before the ones written here, so they take precedence:
//
//	D=$PWD/../../target/debug
//	CGO_LDFLAGS="-L$D -Wl,-rpath,$D" go run .
//
// (CGO_CFLAGS="-I/some/include" likewise for the header; LD_LIBRARY_PATH=$D also works at run
// time.) tests/bindings.rs runs the example this way under `cargo test`.
//
// Threads: a VMHandle may be used from any goroutine, one call at a time. Go may move a
// goroutine to another OS thread between two cgo calls, which the VM allows (a VM can be
// handed between threads between calls); a Go callback runs on the thread of the C call
// that invoked it, so runtime.LockOSThread is not needed.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lstoffel_vm -Wl,-rpath,${SRCDIR}/../../target/release
#include <stdlib.h>
#include "stoffel_vm.h"

// goDouble is the Go function exported below. cgo declares exports without const, so this
// prototype says `StoffelValue*` where CForeignFunction says `const StoffelValue*`; the
// conversion C.CForeignFunction(C.goDouble) in Go bridges the two (same ABI).
extern int goDouble(StoffelValue* args, int arg_count, StoffelValue* result);
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"
)

// VM code: functions that call goDouble.
const assembly = `
; double_it(n) = goDouble(n)
.function double_it(n)
    PUSHARG r0
    CALL goDouble           ; r0 = goDouble(n)
    RET r0

; check_double(n, want): a STRING saying whether goDouble(n) == want.
.function check_double(n, want)
    MOV r2, r1              ; keep want: every CALL overwrites r0
    PUSHARG r0
    CALL goDouble
    CMP r0, r2
    JMPNEQ wrong
    LDI r3, "goDouble agrees"
    RET r3
wrong:
    LDI r3, "goDouble disagrees"
    RET r3
`

// goDoubleCalls counts the calls the VM made to goDouble.
var goDoubleCalls int

// goDouble(n) = 2 * n for one INT argument; anything else fails the call (non-zero return).
// args points to argCount values owned by the VM, valid during this call only.
//
//export goDouble
func goDouble(args *C.StoffelValue, argCount C.int, result *C.StoffelValue) C.int {
	goDoubleCalls++
	if argCount != 1 {
		return -1
	}
	arg := &unsafe.Slice(args, int(argCount))[0]
	if arg.value_type != C.STOFFEL_VALUE_INT {
		return -1
	}
	*result = intValue(2 * intOf(arg))
	return 0
}

// The union StoffelValueData is an [8]byte to Go: read and write its members through
// pointers to its first byte.

func intOf(v *C.StoffelValue) int64 {
	return int64(*(*C.int64_t)(unsafe.Pointer(&v.data[0])))
}

func stringOf(v *C.StoffelValue) *C.char {
	return *(**C.char)(unsafe.Pointer(&v.data[0]))
}

func intValue(n int64) C.StoffelValue {
	var v C.StoffelValue
	v.value_type = C.STOFFEL_VALUE_INT
	*(*C.int64_t)(unsafe.Pointer(&v.data[0])) = C.int64_t(n)
	return v
}

// stringValue makes a STRING argument pointing at s (a C string the caller frees; the VM
// copies it when it reads the argument).
func stringValue(s *C.char) C.StoffelValue {
	var v C.StoffelValue
	v.value_type = C.STOFFEL_VALUE_STRING
	*(**C.char)(unsafe.Pointer(&v.data[0])) = s
	return v
}

func lastError(vm C.VMHandle) string {
	if msg := C.stoffel_last_error(vm); msg != nil {
		return C.GoString(msg) // owned by the VM: copy it, never free it
	}
	return ""
}

// execute runs fn with args and returns its result and the return code.
func execute(vm C.VMHandle, fn string, args ...C.StoffelValue) (C.StoffelValue, C.int) {
	name := C.CString(fn)
	defer C.free(unsafe.Pointer(name))
	var result C.StoffelValue
	var argp *C.StoffelValue
	if len(args) > 0 {
		argp = &args[0]
	}
	code := C.stoffel_execute_with_args(vm, name, argp, C.int(len(args)), &result)
	return result, code
}

type checker struct{ failed bool }

func (c *checker) check(ok bool, format string, a ...any) bool {
	status := "ok   "
	if !ok {
		status = "FAIL "
		c.failed = true
	}
	fmt.Printf("%s %s\n", status, fmt.Sprintf(format, a...))
	return ok
}

func run(vm C.VMHandle, bytecodePath string, c *checker) {
	// Load and run a program compiled by the StoffelLang compiler.
	bytecode, err := os.ReadFile(bytecodePath)
	if err != nil || len(bytecode) == 0 {
		c.check(false, "read %s: %v", bytecodePath, err)
		return
	}
	code := C.stoffel_load_bytecode(vm, (*C.uint8_t)(unsafe.Pointer(&bytecode[0])), C.size_t(len(bytecode)))
	if !c.check(code == C.STOFFEL_OK, "load %s (%d bytes) -> %d %s", bytecodePath, len(bytecode), code, lastError(vm)) {
		return
	}
	mainName := C.CString("main")
	defer C.free(unsafe.Pointer(mainName))
	var fib C.StoffelValue
	code = C.stoffel_execute(vm, mainName, &fib)
	if !c.check(code == C.STOFFEL_OK && fib.value_type == C.STOFFEL_VALUE_INT && intOf(&fib) == 55,
		"main() = %d (code %d)", intOf(&fib), code) {
		return
	}

	// A Go function that VM code calls.
	fnName := C.CString("goDouble")
	defer C.free(unsafe.Pointer(fnName))
	code = C.stoffel_register_foreign_function(vm, fnName, C.CForeignFunction(C.goDouble))
	if !c.check(code == C.STOFFEL_OK, "register goDouble -> %d", code) {
		return
	}
	source := C.CString(assembly)
	defer C.free(unsafe.Pointer(source))
	code = C.stoffel_load_assembly(vm, source)
	if !c.check(code == C.STOFFEL_OK, "load assembly -> %d %s", code, lastError(vm)) {
		return
	}

	doubled, code := execute(vm, "double_it", intValue(21))
	c.check(code == C.STOFFEL_OK && doubled.value_type == C.STOFFEL_VALUE_INT && intOf(&doubled) == 42,
		"double_it(21) = %d (VM code -> CALL goDouble -> Go)", intOf(&doubled))

	// A STRING result: copy the text into Go, then free the VM's copy.
	verdict, code := execute(vm, "check_double", fib, intValue(110))
	if c.check(code == C.STOFFEL_OK && verdict.value_type == C.STOFFEL_VALUE_STRING,
		"check_double(55, 110) -> code %d, type %d", code, verdict.value_type) {
		text := C.GoString(stringOf(&verdict))
		C.stoffel_free_string(stringOf(&verdict))
		c.check(text == "goDouble agrees", "check_double(55, 110) = %q (freed with stoffel_free_string)", text)
	}

	// An error: goDouble refuses a STRING, which fails the execution with a message.
	word := C.CString("not a number")
	defer C.free(unsafe.Pointer(word))
	_, code = execute(vm, "double_it", stringValue(word))
	c.check(code == C.STOFFEL_ERROR_EXECUTE_WITH_ARGS, "double_it(\"not a number\") -> %d: %s", code, lastError(vm))

	c.check(goDoubleCalls == 3, "goDouble was called %d times by VM code", goDoubleCalls)
}

func main() {
	bytecodePath := "../../tests/conformance/fibonacci_recursive.stflb"
	if len(os.Args) > 1 {
		bytecodePath = os.Args[1]
	}
	ok := example(bytecodePath)
	fmt.Println("ok    stoffel_destroy_vm")
	if !ok {
		os.Exit(1)
	}
	fmt.Println("all Go checks passed")
}

// example runs every step on a fresh VM and reports whether all checks passed.
func example(bytecodePath string) bool {
	fmt.Printf("stoffel-vm %s\n", C.GoString(C.stoffel_version()))

	// Create a VM instance
	vm := C.stoffel_create_vm()
	if vm == nil {
		fmt.Println("FAIL  stoffel_create_vm returned NULL")
		return false
	}
	defer C.stoffel_destroy_vm(vm)

	c := &checker{}
	run(vm, bytecodePath, c)
	return !c.failed
}
