//! Pins the C ABI: struct sizes and layouts, enum and return-code values, and the exact list
//! of function prototypes in `include/stoffel_vm.h`. A change here is an ABI change: if it is
//! intended, update the pin and record it in CHANGELOG.md (see its version policy).

use std::mem::{align_of, offset_of, size_of};

use stoffel_vm::ffi::*;

#[test]
fn value_layout_is_the_seed_layout() {
    assert_eq!(size_of::<StoffelValue>(), 16);
    assert_eq!(align_of::<StoffelValue>(), 8);
    assert_eq!(offset_of!(StoffelValue, value_type), 0);
    assert_eq!(offset_of!(StoffelValue, data), 8);
    assert_eq!(size_of::<StoffelValueType>(), 4, "a C int enum");
    assert_eq!(size_of::<StoffelValueData>(), 8);
    assert_eq!(size_of::<StoffelGcStats>(), 48);
    assert_eq!(size_of::<VMHandle>(), size_of::<*mut u8>());
    // A function handle: two uint64_t, passed by value.
    assert_eq!(size_of::<StoffelFunction>(), 16);
    assert_eq!(align_of::<StoffelFunction>(), 8);
    assert_eq!(offset_of!(StoffelFunction, vm), 0);
    assert_eq!(offset_of!(StoffelFunction, slot), 8);
}

#[test]
fn value_type_numbers_are_the_seed_numbers() {
    use StoffelValueType::*;
    let pinned = [
        (STOFFEL_VALUE_UNIT, 0),
        (STOFFEL_VALUE_INT, 1),
        (STOFFEL_VALUE_FLOAT, 2),
        (STOFFEL_VALUE_BOOL, 3),
        (STOFFEL_VALUE_STRING, 4),
        (STOFFEL_VALUE_OBJECT, 5),
        (STOFFEL_VALUE_ARRAY, 6),
        (STOFFEL_VALUE_FOREIGN, 7),
        (STOFFEL_VALUE_CLOSURE, 8),
    ];
    for (tag, number) in pinned {
        assert_eq!(tag as i32, number, "{tag:?}");
    }
}

#[test]
fn return_codes_keep_their_numbers() {
    let pinned = [
        (STOFFEL_OK, 0),
        (STOFFEL_ERROR_NULL, -1),
        (STOFFEL_ERROR_UTF8, -2),
        (STOFFEL_ERROR_PARSE, -2),
        (STOFFEL_ERROR_REGISTER_OBJECT, -2),
        (STOFFEL_ERROR_INVALID_FUNCTION, -3),
        (STOFFEL_ERROR_EXECUTE, -3),
        (STOFFEL_ERROR_RESULT, -4),
        (STOFFEL_ERROR_ARGUMENT, -3),
        (STOFFEL_ERROR_EXECUTE_WITH_ARGS, -4),
        (STOFFEL_ERROR_RESULT_WITH_ARGS, -5),
        (STOFFEL_ERROR_INVALID_HANDLE, -6),
        (STOFFEL_ERROR_TYPE, -7),
        (STOFFEL_ERROR_LIMIT, -8),
        (STOFFEL_ERROR_REENTRANCY, -9),
        (STOFFEL_ERROR_INVALID_VM, -10),
        (STOFFEL_ERROR_PANIC, -11),
        (STOFFEL_ERROR_INTERRUPTED, -12),
        (STOFFEL_END, 1),
        (STOFFEL_SUSPENDED, 2),
        (STOFFEL_ERROR_STATE, -13),
        (vm::STOFFEL_MAX_ARGS, 1024),
    ];
    for (code, number) in pinned {
        assert_eq!(code, number);
    }
}

/// Every prototype of the header, exactly (whitespace normalised).
const PROTOTYPES: &[&str] = &[
    "int stoffel_register_foreign_function(VMHandle handle, const char *name, CForeignFunction func);",
    "int stoffel_register_foreign_function_ex(VMHandle handle, const char *name, CForeignFunctionEx func, void *user_data);",
    "int stoffel_register_foreign_object(VMHandle handle, void *object, StoffelValue *result);",
    "int stoffel_register_foreign_object_ex(VMHandle handle, void *object, StoffelFinalizer finalizer, StoffelValue *result);",
    "int stoffel_get_foreign_object(VMHandle handle, const StoffelValue *value, void **object);",
    "int stoffel_create_string(VMHandle handle, const char *str, StoffelValue *result);",
    "void stoffel_free_string(char *str);",
    "int stoffel_release_value(VMHandle handle, const StoffelValue *value);",
    "int stoffel_retain_value(VMHandle handle, const StoffelValue *value);",
    "int stoffel_create_object(VMHandle handle, StoffelValue *result);",
    "int stoffel_create_array(VMHandle handle, StoffelValue *result);",
    "int stoffel_get_field(VMHandle handle, const StoffelValue *container, const StoffelValue *key, StoffelValue *result);",
    "int stoffel_set_field(VMHandle handle, const StoffelValue *container, const StoffelValue *key, const StoffelValue *value);",
    "int stoffel_array_length(VMHandle handle, const StoffelValue *array, size_t *length);",
    "int stoffel_array_push(VMHandle handle, const StoffelValue *array, const StoffelValue *value);",
    "int stoffel_call_closure(VMHandle handle, const StoffelValue *closure, const StoffelValue *args, int arg_count, StoffelValue *result);",
    "VMHandle stoffel_create_vm(void);",
    "void stoffel_destroy_vm(VMHandle handle);",
    "int stoffel_load_bytecode(VMHandle handle, const uint8_t *bytecode, size_t len);",
    "int stoffel_load_assembly(VMHandle handle, const char *source);",
    "int stoffel_execute(VMHandle handle, const char *function_name, StoffelValue *result);",
    "int stoffel_execute_with_args(VMHandle handle, const char *function_name, const StoffelValue *args, int arg_count, StoffelValue *result);",
    "const char *stoffel_last_error(VMHandle handle);",
    "int stoffel_set_instruction_limit(VMHandle handle, uint64_t limit);",
    "int stoffel_set_max_call_depth(VMHandle handle, uint32_t depth);",
    "int stoffel_set_memory_limit(VMHandle handle, size_t bytes);",
    "int stoffel_set_local_storage(VMHandle handle, const char *dir);",
    "int stoffel_gc_collect(VMHandle handle);",
    "int stoffel_gc_stats(VMHandle handle, StoffelGcStats *stats);",
    "int stoffel_set_print_callback(VMHandle handle, StoffelPrintCallback callback, void *user_data);",
    "const char *stoffel_version(void);",
    "const char *stoffel_error_name(int code);",
    "ptrdiff_t stoffel_last_error_copy(VMHandle handle, char *buffer, size_t size);",
    "int stoffel_interrupt(VMHandle handle);",
    "int stoffel_object_next(VMHandle handle, const StoffelValue *object, const StoffelValue *key, StoffelValue *next_key, StoffelValue *value);",
    "int stoffel_lookup_function(VMHandle handle, const char *function_name, StoffelFunction *out);",
    "int stoffel_call_function(VMHandle handle, StoffelFunction function, const StoffelValue *args, int arg_count, StoffelValue *result);",
    "int stoffel_same_value(VMHandle handle, const StoffelValue *a, const StoffelValue *b, int *same);",
    "int stoffel_execute_start(VMHandle handle, const char *function_name, const StoffelValue *args, int arg_count, uint64_t fuel, StoffelValue *result);",
    "int stoffel_resume(VMHandle handle, uint64_t fuel, StoffelValue *result);",
    "int stoffel_cancel(VMHandle handle);",
];

/// The header's text without comments, whitespace collapsed.
fn header_code() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/stoffel_vm.h");
    let text = std::fs::read_to_string(path).unwrap();
    let mut code = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("/*") {
        code.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("unterminated comment") + start + 2;
        rest = &rest[end..];
    }
    code.push_str(rest);
    code.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        // Conditionals and includes are not declarations; #define lines are kept.
        .filter(|l| !l.trim_start().starts_with('#') || l.trim_start().starts_with("#define"))
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_header_declares_exactly_the_pinned_functions() {
    let code = header_code();
    let declared: Vec<String> = code
        .split(';')
        .map(str::trim)
        .filter(|s| s.contains("stoffel_") && s.ends_with(')') && !s.starts_with('#'))
        .map(|s| {
            let s = s.rsplit(['{', '}']).next().unwrap_or(s).trim();
            let s = s.trim_start_matches("extern \"C\"").trim();
            format!("{s};")
        })
        .filter(|s| !s.starts_with("typedef"))
        .collect();
    let mut expected: Vec<&str> = PROTOTYPES.to_vec();
    let mut got: Vec<&str> = declared.iter().map(String::as_str).collect();
    expected.sort_unstable();
    got.sort_unstable();
    assert_eq!(
        got, expected,
        "the C API's function list or signatures changed"
    );
}

#[test]
fn the_header_defines_every_pinned_constant() {
    let code = header_code();
    for (name, value) in [
        ("STOFFEL_VALUE_UNIT", "0"),
        ("STOFFEL_VALUE_CLOSURE", "8"),
        ("STOFFEL_OK", "0"),
        ("STOFFEL_ERROR_PANIC", "-11"),
        ("STOFFEL_ERROR_INTERRUPTED", "-12"),
        ("STOFFEL_ERROR_STATE", "-13"),
        ("STOFFEL_SUSPENDED", "2"),
        ("STOFFEL_MAX_ARGS", "1024"),
    ] {
        let pattern = if name.starts_with("STOFFEL_VALUE") {
            format!("{name} = {value}")
        } else {
            format!("#define {name} {value}")
        };
        assert!(code.contains(&pattern), "{pattern} missing from the header");
    }
}

#[test]
fn version_is_the_crate_version() {
    let v = unsafe_free_version();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

fn unsafe_free_version() -> String {
    let p = vm::stoffel_version();
    assert!(!p.is_null());
    // SAFETY: stoffel_version returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_str()
        .unwrap()
        .to_owned()
}
