/*
 * object_fields.c: a host reads a settings object a script built, without knowing its field
 * names in advance. stoffel_object_next walks the fields in insertion order, in the style of
 * Lua's lua_next: start with a UNIT key, pass each key back to get the next field, and stop
 * at STOFFEL_END. Keys and string values come back as strings the host frees; object and
 * array values as handles the host releases.
 *
 * Build (from the crate root, after `cargo build --release`):
 *   cc -std=c99 -Iinclude examples/object_fields.c -Ltarget/release -lstoffel_vm \
 *      -Wl,-rpath,target/release -o object_fields && ./object_fields
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stoffel_vm.h"

/* settings() returns { name: "render", width: 1280, height: 720, vsync: true, ratio: 1.5,
 * layers: [...] }, built field by field. */
static const char *program =
    ".function settings registers 4\n"
    "    CALL create_object\n"
    "    MOV r1, r0\n"
    "    LDI r2, \"name\"\n"
    "    LDI r3, \"render\"\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    CALL set_field\n"
    "    LDI r2, \"width\"\n"
    "    LDI r3, 1280\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    CALL set_field\n"
    "    LDI r2, \"height\"\n"
    "    LDI r3, 720\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    CALL set_field\n"
    "    LDI r2, \"vsync\"\n"
    "    LDI r3, true\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    CALL set_field\n"
    "    LDI r2, \"ratio\"\n"
    "    LDI r3, 1.5\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    CALL set_field\n"
    "    LDI r3, 3\n"
    "    PUSHARG r3\n"
    "    CALL create_array\n"
    "    MOV r3, r0\n"
    "    LDI r2, \"layers\"\n"
    "    PUSHARG r1\n"
    "    PUSHARG r2\n"
    "    PUSHARG r3\n"
    "    CALL set_field\n"
    "    RET r1\n";

static void fail(VMHandle vm, const char *what, int rc)
{
    fprintf(stderr, "%s failed (%s): %s\n", what, stoffel_error_name(rc),
            stoffel_last_error(vm));
    stoffel_destroy_vm(vm);
    exit(1);
}

/* Prints one value; frees or releases what the VM handed over with it. */
static void print_value(VMHandle vm, StoffelValue *value)
{
    switch (value->value_type) {
    case STOFFEL_VALUE_INT:
        printf("%lld", (long long)value->data.int_val);
        break;
    case STOFFEL_VALUE_FLOAT:
        printf("%g", value->data.float_val);
        break;
    case STOFFEL_VALUE_BOOL:
        printf("%s", value->data.bool_val ? "true" : "false");
        break;
    case STOFFEL_VALUE_STRING:
        printf("\"%s\"", value->data.string_val);
        stoffel_free_string((char *)value->data.string_val);
        break;
    case STOFFEL_VALUE_ARRAY:
        printf("an array");
        stoffel_release_value(vm, value);
        break;
    case STOFFEL_VALUE_OBJECT:
        printf("an object");
        stoffel_release_value(vm, value);
        break;
    default:
        printf("a value of type %d", (int)value->value_type);
        stoffel_release_value(vm, value);
        break;
    }
}

int main(void)
{
    VMHandle vm = stoffel_create_vm();
    if (vm == NULL) {
        fprintf(stderr, "stoffel_create_vm failed: %s\n", stoffel_last_error(NULL));
        return 1;
    }
    int rc = stoffel_load_assembly(vm, program);
    if (rc != STOFFEL_OK) {
        fail(vm, "load", rc);
    }
    StoffelValue settings;
    rc = stoffel_execute(vm, "settings", &settings);
    if (rc != STOFFEL_OK) {
        fail(vm, "settings()", rc);
    }

    /* The walk: each key is copied before it is freed, to be passed back for the next one. */
    StoffelValue key = { .value_type = STOFFEL_VALUE_UNIT };
    StoffelValue next_key, value;
    char previous[64];
    int fields = 0;
    while ((rc = stoffel_object_next(vm, &settings, &key, &next_key, &value)) == STOFFEL_OK) {
        snprintf(previous, sizeof previous, "%s", next_key.data.string_val);
        stoffel_free_string((char *)next_key.data.string_val);
        printf("settings.%s = ", previous);
        print_value(vm, &value);
        printf("\n");
        key.value_type = STOFFEL_VALUE_STRING;
        key.data.string_val = previous;
        fields++;
    }
    if (rc != STOFFEL_END) {
        fail(vm, "stoffel_object_next", rc);
    }
    printf("object_fields: %d fields\n", fields);

    /* A key that is not a field of the object is an error, not the end. */
    key.value_type = STOFFEL_VALUE_STRING;
    key.data.string_val = "depth";
    rc = stoffel_object_next(vm, &settings, &key, &next_key, &value);
    printf("object_fields: next after \"depth\": code %d: %s\n", rc, stoffel_last_error(vm));

    stoffel_release_value(vm, &settings);
    stoffel_destroy_vm(vm);
    return 0;
}
