#!/usr/bin/env python3
"""Embedding stoffel-vm from Python through its C API, with nothing but ctypes.

Usage:
    cargo build --release
    python3 examples/python_ctypes.py [path/to/libstoffel_vm.so [path/to/program.stflb]]

The library path is the first argument, else the environment variable STOFFEL_VM_LIB, else
target/release/libstoffel_vm.so (relative to the current directory, or else to this
repository). The bytecode run is tests/conformance/fibonacci_recursive.stflb of this
repository unless a second argument names another file whose main returns 55.

The example walks through the C API and checks every answer: a Python function called from
VM code, string results and how to free them, loading STFL bytecode, errors and
stoffel_last_error, objects, foreign objects with a finalizer, print redirection, the GC
figures, and destroying the VM. It prints one line per step and exits with status 1 on the
first mismatch, so it doubles as a test (tests/bindings.rs runs it under `cargo test`).
"""

import ctypes
import os
import sys
from pathlib import Path
from ctypes import c_void_p, c_char_p, c_int, c_int64, Structure, Union, POINTER

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def library_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    if os.environ.get("STOFFEL_VM_LIB"):
        return os.environ["STOFFEL_VM_LIB"]
    default = Path("target/release/libstoffel_vm.so")
    if default.exists():
        return str(default)
    return str(REPO / default)


LIB_PATH = library_path()

# Load the library
try:
    lib = ctypes.cdll.LoadLibrary(LIB_PATH)
except OSError as e:
    sys.exit(f"cannot load {LIB_PATH}: {e}\n"
             "build it with `cargo build --release`, or pass the library's path as the first "
             "argument (or in STOFFEL_VM_LIB)")

# ----- The type definitions of the C API document, as written there -----


# Define the types
class StoffelValueType(ctypes.c_int):
    UNIT = 0
    INT = 1
    FLOAT = 2
    BOOL = 3
    STRING = 4
    OBJECT = 5
    ARRAY = 6
    FOREIGN = 7
    CLOSURE = 8

class StoffelValueData(Union):
    _fields_ = [
        ("int_val", c_int64),
        ("float_val", ctypes.c_double),
        ("bool_val", ctypes.c_int),
        ("string_val", c_char_p),
        ("object_id", ctypes.c_size_t),
        ("array_id", ctypes.c_size_t),
        ("foreign_id", ctypes.c_size_t),
        ("closure_id", ctypes.c_size_t),
    ]

class StoffelValue(Structure):
    _fields_ = [
        ("value_type", StoffelValueType),
        ("data", StoffelValueData),
    ]

# Set up function signatures
lib.stoffel_create_vm.restype = c_void_p
lib.stoffel_destroy_vm.argtypes = [c_void_p]
lib.stoffel_execute.argtypes = [c_void_p, c_char_p, POINTER(StoffelValue)]
lib.stoffel_execute.restype = c_int

# ----- The rest of the API this example uses -----
#
# Every function that takes a VMHandle needs argtypes: without them ctypes would pass the
# 64-bit handle as a C int and cut it in half.

# int (*CForeignFunction)(const StoffelValue* args, int arg_count, StoffelValue* result)
CForeignFunction = ctypes.CFUNCTYPE(c_int, POINTER(StoffelValue), c_int, POINTER(StoffelValue))
# void (*StoffelFinalizer)(void* object)
StoffelFinalizer = ctypes.CFUNCTYPE(None, c_void_p)
# void (*StoffelPrintCallback)(const char* text, void* user_data)
StoffelPrintCallback = ctypes.CFUNCTYPE(None, c_char_p, c_void_p)


class StoffelGcStats(Structure):
    _fields_ = [
        ("heap_bytes", ctypes.c_size_t),
        ("stack_bytes", ctypes.c_size_t),
        ("gc_objects", ctypes.c_size_t),
        ("live_handles", ctypes.c_size_t),
        ("foreign_objects", ctypes.c_size_t),
        ("collections", ctypes.c_uint64),
    ]


VALUE_P = POINTER(StoffelValue)

lib.stoffel_version.argtypes = []
lib.stoffel_version.restype = c_char_p
lib.stoffel_load_assembly.argtypes = [c_void_p, c_char_p]
lib.stoffel_load_assembly.restype = c_int
# The bytecode is binary: pass it as a bytes object plus its length (NULs inside are fine).
lib.stoffel_load_bytecode.argtypes = [c_void_p, c_char_p, ctypes.c_size_t]
lib.stoffel_load_bytecode.restype = c_int
lib.stoffel_execute_with_args.argtypes = [c_void_p, c_char_p, VALUE_P, c_int, VALUE_P]
lib.stoffel_execute_with_args.restype = c_int
lib.stoffel_register_foreign_function.argtypes = [c_void_p, c_char_p, CForeignFunction]
lib.stoffel_register_foreign_function.restype = c_int
lib.stoffel_register_foreign_object.argtypes = [c_void_p, c_void_p, VALUE_P]
lib.stoffel_register_foreign_object.restype = c_int
lib.stoffel_register_foreign_object_ex.argtypes = [c_void_p, c_void_p, StoffelFinalizer, VALUE_P]
lib.stoffel_register_foreign_object_ex.restype = c_int
lib.stoffel_get_foreign_object.argtypes = [c_void_p, VALUE_P, POINTER(c_void_p)]
lib.stoffel_get_foreign_object.restype = c_int
lib.stoffel_create_string.argtypes = [c_void_p, c_char_p, VALUE_P]
lib.stoffel_create_string.restype = c_int
# stoffel_free_string takes the raw pointer. A c_char_p argument would be built from a bytes
# object (a *copy* of the text), so declare it c_void_p and hand it the address the VM gave.
lib.stoffel_free_string.argtypes = [c_void_p]
lib.stoffel_free_string.restype = None
lib.stoffel_last_error.argtypes = [c_void_p]
lib.stoffel_last_error.restype = c_char_p
lib.stoffel_release_value.argtypes = [c_void_p, VALUE_P]
lib.stoffel_release_value.restype = c_int
lib.stoffel_create_object.argtypes = [c_void_p, VALUE_P]
lib.stoffel_create_object.restype = c_int
lib.stoffel_set_field.argtypes = [c_void_p, VALUE_P, VALUE_P, VALUE_P]
lib.stoffel_set_field.restype = c_int
lib.stoffel_get_field.argtypes = [c_void_p, VALUE_P, VALUE_P, VALUE_P]
lib.stoffel_get_field.restype = c_int
lib.stoffel_gc_collect.argtypes = [c_void_p]
lib.stoffel_gc_collect.restype = c_int
lib.stoffel_gc_stats.argtypes = [c_void_p, POINTER(StoffelGcStats)]
lib.stoffel_gc_stats.restype = c_int
lib.stoffel_set_print_callback.argtypes = [c_void_p, StoffelPrintCallback, c_void_p]
lib.stoffel_set_print_callback.restype = c_int
lib.stoffel_execute_start.argtypes = [c_void_p, c_char_p, VALUE_P, c_int, ctypes.c_uint64, VALUE_P]
lib.stoffel_execute_start.restype = c_int
lib.stoffel_resume.argtypes = [c_void_p, ctypes.c_uint64, VALUE_P]
lib.stoffel_resume.restype = c_int
lib.stoffel_cancel.argtypes = [c_void_p]
lib.stoffel_cancel.restype = c_int

# Return codes (the #defines of include/stoffel_vm.h).
STOFFEL_OK = 0
STOFFEL_ERROR_NULL = -1
STOFFEL_ERROR_EXECUTE = -3
STOFFEL_ERROR_EXECUTE_WITH_ARGS = -4
STOFFEL_ERROR_INVALID_HANDLE = -6
STOFFEL_ERROR_INVALID_VM = -10
STOFFEL_ERROR_STATE = -13
STOFFEL_SUSPENDED = 2

TYPE_NAMES = {
    StoffelValueType.UNIT: "UNIT",
    StoffelValueType.INT: "INT",
    StoffelValueType.FLOAT: "FLOAT",
    StoffelValueType.BOOL: "BOOL",
    StoffelValueType.STRING: "STRING",
    StoffelValueType.OBJECT: "OBJECT",
    StoffelValueType.ARRAY: "ARRAY",
    StoffelValueType.FOREIGN: "FOREIGN",
    StoffelValueType.CLOSURE: "CLOSURE",
}


# ----- Small helpers -----


class Mismatch(Exception):
    pass


def check(condition, what):
    """Prints one result line; a failed check stops the example."""
    if not condition:
        print(f"FAIL  {what}")
        raise Mismatch(what)
    print(f"ok    {what}")


def type_of(value):
    """The type tag of a StoffelValue as a plain int.

    StoffelValueType subclasses c_int, and ctypes does not turn subclasses of its simple types
    into Python ints, so the field reads back as a StoffelValueType: take its .value.
    """
    tag = value.value_type
    return tag.value if isinstance(tag, ctypes.c_int) else tag


def int_value(n):
    return StoffelValue(StoffelValueType.INT, StoffelValueData(int_val=n))


def string_value(text):
    # The StoffelValue keeps the bytes object alive; the VM copies the text when it reads it.
    return StoffelValue(StoffelValueType.STRING, StoffelValueData(string_val=text.encode()))


def args_array(*values):
    return (StoffelValue * len(values))(*values)


def raw_string_pointer(value):
    """The char* the VM stored in a STRING value, as an int.

    value.data.string_val cannot give it: for a c_char_p field ctypes returns a bytes *copy*
    of the text. Reading the same 8 bytes as a void* gives the pointer itself, which is what
    stoffel_free_string needs.
    """
    return ctypes.cast(ctypes.addressof(value.data), POINTER(c_void_p))[0]


def take_string(value):
    """Reads a STRING result and frees the VM's copy; returns the text."""
    text = value.data.string_val.decode()
    lib.stoffel_free_string(raw_string_pointer(value))
    return text


def last_error(vm):
    message = lib.stoffel_last_error(vm)
    return message.decode() if message is not None else None


# ----- Python functions the VM calls -----


def py_add(args, arg_count, result):
    """py_add(a, b) -> a + b, for two INT arguments; any other input fails the call."""
    try:
        if arg_count != 2:
            return -1
        a, b = args[0], args[1]
        if type_of(a) != StoffelValueType.INT or type_of(b) != StoffelValueType.INT:
            return -1
        result[0].value_type = StoffelValueType.INT
        result[0].data.int_val = a.data.int_val + b.data.int_val
        return 0
    except Exception as e:  # an exception must not escape into C
        print(f"py_add raised {e!r}", file=sys.stderr)
        return -2


# A string a callback returns must stay valid until the VM has copied it, which happens right
# after the callback returns: keep the buffer alive here, outside the callback.
_greeting_buffer = None


def py_greet(args, arg_count, result):
    """py_greet(name) -> "Hello, <name>!". The name's char* belongs to the VM (valid during
    this call only); the result's text is copied by the VM when the callback returns."""
    global _greeting_buffer
    try:
        if arg_count != 1 or type_of(args[0]) != StoffelValueType.STRING:
            return -1
        name = args[0].data.string_val.decode()
        _greeting_buffer = ctypes.create_string_buffer(f"Hello, {name}!".encode())
        result[0].value_type = StoffelValueType.STRING
        result[0].data.string_val = ctypes.addressof(_greeting_buffer)
        return 0
    except Exception as e:
        print(f"py_greet raised {e!r}", file=sys.stderr)
        return -2


# The CFUNCTYPE objects must outlive every call the VM may make to them: keep them global.
PY_ADD = CForeignFunction(py_add)
PY_GREET = CForeignFunction(py_greet)
# Callbacks and payloads made inside run(): a finalizer may run as late as
# stoffel_destroy_vm, so they are kept here rather than in run()'s locals.
KEEP_ALIVE = []

ASSEMBLY = b"""
; add_via_python(a, b): VM code that calls the Python function py_add.
.function add_via_python(a, b)
    PUSHARG r0
    PUSHARG r1
    CALL py_add             ; r0 = py_add(a, b)
    RET r0

; sum3(a, b, c) = py_add(py_add(a, b), c)
.function sum3(a, b, c)
    MOV r3, r2              ; keep c: every CALL overwrites r0
    PUSHARG r0
    PUSHARG r1
    CALL py_add
    PUSHARG r0
    PUSHARG r3
    CALL py_add
    RET r0

; greet(name): a STRING goes to Python and a STRING comes back.
.function greet(name)
    PUSHARG r0
    CALL py_greet
    RET r0

.function banner
    LDI r0, "StoffelVM says hi"
    RET r0

.function shout
    LDI r1, "printed by VM code"
    PUSHARG r1
    CALL print
    RET r0
"""


def run(vm):
    result = StoffelValue()

    # --- A Python function called from VM code ---
    code = lib.stoffel_register_foreign_function(vm, b"py_add", PY_ADD)
    check(code == STOFFEL_OK, f"register py_add -> {code}")
    code = lib.stoffel_register_foreign_function(vm, b"py_greet", PY_GREET)
    check(code == STOFFEL_OK, f"register py_greet -> {code}")
    code = lib.stoffel_load_assembly(vm, ASSEMBLY)
    check(code == STOFFEL_OK, f"load assembly -> {code}" + (f": {last_error(vm)}" if code else ""))

    args = args_array(int_value(40), int_value(2))
    code = lib.stoffel_execute_with_args(vm, b"add_via_python", args, 2, ctypes.byref(result))
    check(code == STOFFEL_OK, f"execute add_via_python(40, 2) -> {code}")
    check(type_of(result) == StoffelValueType.INT and result.data.int_val == 42,
          f"add_via_python(40, 2) = {result.data.int_val} (VM code -> CALL py_add -> Python)")

    args = args_array(int_value(1), int_value(20), int_value(300))
    code = lib.stoffel_execute_with_args(vm, b"sum3", args, 3, ctypes.byref(result))
    check(code == STOFFEL_OK and result.data.int_val == 321,
          f"sum3(1, 20, 300) = {result.data.int_val} (two Python calls)")

    # The host may also execute the registered function directly by name.
    args = args_array(int_value(-5), int_value(8))
    code = lib.stoffel_execute_with_args(vm, b"py_add", args, 2, ctypes.byref(result))
    check(code == STOFFEL_OK and result.data.int_val == 3,
          f"py_add(-5, 8) executed by name = {result.data.int_val}")

    # --- STRING results: read the text, then free the VM's copy ---
    code = lib.stoffel_execute(vm, b"banner", ctypes.byref(result))
    check(code == STOFFEL_OK and type_of(result) == StoffelValueType.STRING,
          f"execute banner -> {code}, type {TYPE_NAMES.get(type_of(result))}")
    pointer = raw_string_pointer(result)
    text = take_string(result)
    check(text == "StoffelVM says hi", f"banner() = {text!r} (freed with stoffel_free_string)")

    # Freeing it again is a caller bug, but a harmless one: the VM only frees pointers it
    # handed out and has not taken back, so it ignores this one and notes it in the calling
    # thread's last error (stoffel_last_error with a NULL handle).
    lib.stoffel_free_string(pointer)
    note = last_error(None)
    check(note is not None and "stoffel_free_string" in note,
          f"a second stoffel_free_string is ignored: {note}")

    # STRING arguments are copied (Python keeps its bytes); the callback's STRING argument is
    # the VM's and valid during the callback only; its STRING result is copied by the VM.
    args = args_array(string_value("ctypes"))
    code = lib.stoffel_execute_with_args(vm, b"greet", args, 1, ctypes.byref(result))
    check(code == STOFFEL_OK and type_of(result) == StoffelValueType.STRING,
          f"execute greet('ctypes') -> {code}")
    text = take_string(result)
    check(text == "Hello, ctypes!", f"greet('ctypes') = {text!r} (string in, string out)")

    code = lib.stoffel_create_string(vm, "grüße".encode(), ctypes.byref(result))
    check(code == STOFFEL_OK and take_string(result) == "grüße",
          "stoffel_create_string round-trips UTF-8 and is freed")

    # --- STFL bytecode from the StoffelLang compiler ---
    stflb = Path(sys.argv[2]) if len(sys.argv) > 2 else (
        REPO / "tests" / "conformance" / "fibonacci_recursive.stflb")
    data = stflb.read_bytes()
    code = lib.stoffel_load_bytecode(vm, data, len(data))
    check(code == STOFFEL_OK, f"load {stflb.name} ({len(data)} bytes) -> {code}")
    code = lib.stoffel_execute(vm, b"main", ctypes.byref(result))
    check(code == STOFFEL_OK and type_of(result) == StoffelValueType.INT
          and result.data.int_val == 55,
          f"main() of {stflb.name} = {result.data.int_val}")

    # --- Errors: a return code plus a message from stoffel_last_error ---
    code = lib.stoffel_execute(vm, b"no_such_function", ctypes.byref(result))
    message = last_error(vm)
    check(code == STOFFEL_ERROR_EXECUTE and message is not None,
          f"unknown function -> {code}: {message}")

    args = args_array(int_value(1), string_value("two"))
    code = lib.stoffel_execute_with_args(vm, b"add_via_python", args, 2, ctypes.byref(result))
    message = last_error(vm)
    check(code == STOFFEL_ERROR_EXECUTE_WITH_ARGS and message is not None
          and "py_add" in message,
          f"py_add refusing a STRING -> {code}: {message}")

    # The VM is still usable after an error.
    args = args_array(int_value(2), int_value(2))
    code = lib.stoffel_execute_with_args(vm, b"add_via_python", args, 2, ctypes.byref(result))
    check(code == STOFFEL_OK and result.data.int_val == 4, "the VM works on after errors")

    # --- Objects: the id belongs to us until stoffel_release_value ---
    obj = StoffelValue()
    code = lib.stoffel_create_object(vm, ctypes.byref(obj))
    check(code == STOFFEL_OK and type_of(obj) == StoffelValueType.OBJECT,
          f"create object -> id {obj.data.object_id}")
    key, answer = string_value("answer"), int_value(42)
    code = lib.stoffel_set_field(vm, ctypes.byref(obj), ctypes.byref(key), ctypes.byref(answer))
    check(code == STOFFEL_OK, f"set_field(obj, 'answer', 42) -> {code}")
    code = lib.stoffel_get_field(vm, ctypes.byref(obj), ctypes.byref(key), ctypes.byref(result))
    check(code == STOFFEL_OK and result.data.int_val == 42,
          f"get_field(obj, 'answer') = {result.data.int_val}")
    code = lib.stoffel_release_value(vm, ctypes.byref(obj))
    check(code == STOFFEL_OK, f"release object -> {code}")
    code = lib.stoffel_release_value(vm, ctypes.byref(obj))
    check(code == STOFFEL_ERROR_INVALID_HANDLE,
          f"releasing it twice -> {code}: {last_error(vm)}")

    # --- Foreign objects: a host pointer the VM carries around (never dereferences) ---
    payload = ctypes.c_int64(1234)
    address = ctypes.addressof(payload)
    KEEP_ALIVE.append(payload)
    plain = StoffelValue()
    code = lib.stoffel_register_foreign_object(vm, address, ctypes.byref(plain))
    check(code == STOFFEL_OK and type_of(plain) == StoffelValueType.FOREIGN,
          f"register foreign object -> id {plain.data.foreign_id}")
    check(lib.stoffel_release_value(vm, ctypes.byref(plain)) == STOFFEL_OK, "and release it")

    # ... and one with a finalizer, which runs once the VM has collected the object.
    finalized = []
    on_finalize = StoffelFinalizer(lambda pointer: finalized.append(pointer))
    KEEP_ALIVE.append(on_finalize)
    foreign = StoffelValue()
    code = lib.stoffel_register_foreign_object_ex(vm, address, on_finalize, ctypes.byref(foreign))
    check(code == STOFFEL_OK and type_of(foreign) == StoffelValueType.FOREIGN,
          f"register foreign object with a finalizer -> id {foreign.data.foreign_id}")
    back = c_void_p()
    code = lib.stoffel_get_foreign_object(vm, ctypes.byref(foreign), ctypes.byref(back))
    check(code == STOFFEL_OK and back.value == address, "stoffel_get_foreign_object gives the pointer back")
    check(lib.stoffel_release_value(vm, ctypes.byref(foreign)) == STOFFEL_OK, "release foreign object")
    check(lib.stoffel_gc_collect(vm) == STOFFEL_OK, "stoffel_gc_collect")
    check(finalized == [address], f"finalizer ran once with the pointer ({len(finalized)} call)")


    # --- print output sent to Python instead of stdout ---
    printed = []
    on_print = StoffelPrintCallback(lambda text, _user: printed.append(text.decode()))
    KEEP_ALIVE.append(on_print)
    check(lib.stoffel_set_print_callback(vm, on_print, None) == STOFFEL_OK, "set print callback")
    code = lib.stoffel_execute(vm, b"shout", ctypes.byref(result))
    check(code == STOFFEL_OK and printed == ["printed by VM code\n"], f"captured print: {printed!r}")
    check(lib.stoffel_set_print_callback(vm, StoffelPrintCallback(), None) == STOFFEL_OK,
          "print goes back to stdout")

    # --- Time slices: sum3 (which calls Python twice) 2 instructions at a time ---
    args = args_array(int_value(1), int_value(20), int_value(300))
    slices = 1
    code = lib.stoffel_execute_start(vm, b"sum3", args, 3, 2, ctypes.byref(result))
    while code == STOFFEL_SUSPENDED:
        slices += 1
        code = lib.stoffel_resume(vm, 2, ctypes.byref(result))
    check(code == STOFFEL_OK and result.data.int_val == 321 and slices > 3,
          f"sliced sum3(1, 20, 300) = {result.data.int_val} in {slices} slices")
    code = lib.stoffel_resume(vm, 2, ctypes.byref(result))
    check(code == STOFFEL_ERROR_STATE, f"resume with nothing suspended -> {code}: {last_error(vm)}")

    # --- Nothing is left held by the host ---
    stats = StoffelGcStats()
    check(lib.stoffel_gc_stats(vm, ctypes.byref(stats)) == STOFFEL_OK, "stoffel_gc_stats")
    check(stats.live_handles == 0 and stats.foreign_objects == 0,
          f"live handles {stats.live_handles}, foreign objects {stats.foreign_objects}, "
          f"collections {stats.collections}, heap {stats.heap_bytes} bytes")


def main():
    print(f"stoffel-vm {lib.stoffel_version().decode()} from {LIB_PATH}")
    vm = lib.stoffel_create_vm()
    if not vm:
        print("FAIL  stoffel_create_vm returned NULL")
        return 1
    try:
        run(vm)
    except Mismatch:
        return 1
    finally:
        lib.stoffel_destroy_vm(vm)
    print("ok    stoffel_destroy_vm")
    # A destroyed handle is refused with an error code, never dereferenced.
    result = StoffelValue()
    code = lib.stoffel_execute(vm, b"banner", ctypes.byref(result))
    if code != STOFFEL_ERROR_INVALID_VM:
        print(f"FAIL  a destroyed VM handle gave {code}")
        return 1
    print(f"ok    a destroyed VM handle -> {code}: {last_error(None)}")
    # A NULL handle gets StoffelVM's code for it.
    code = lib.stoffel_execute(None, b"banner", ctypes.byref(result))
    if code != STOFFEL_ERROR_NULL:
        print(f"FAIL  a NULL VM handle gave {code}")
        return 1
    print(f"ok    a NULL VM handle -> {code}: {last_error(None)}")
    print("all Python ctypes checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
