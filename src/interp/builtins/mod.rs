//! The builtin functions: `print`, `to_string`, `type`, objects, arrays and closures, with
//! the current StoffelVM's argument rules and text formats (the text itself is made by
//! [`super::format`]).
//!
//! Builtins run inside the arena (they allocate), on the arguments the caller pushed. Their
//! result goes to the caller's r0, except `call_closure`, which starts a frame whose `RET`
//! delivers the result later.

use gc_arena::{Gc, Mutation};

use super::code::{Binding, Code};
use super::format;
use super::stack::Calls;
use super::{Runtime, RuntimeErrorKind, kind_name};
use crate::heap::{Array, Closure, Env, Object, Str};
use crate::value::Value;
pub use names::Builtin;

mod fused;
mod names;

pub(crate) use fused::{Common, Fused, common_case, may_fuse, run_fused};

/// What a builtin did.
pub enum Outcome<'gc> {
    /// It finished with this value.
    Value(Value<'gc>),
    /// It asks for a frame (`call_closure`): bytecode function `func` with the arguments
    /// from `args_base` on, whose caller's pending stack goes back to `restore` when it
    /// returns. Arity and depth are checked.
    Enter {
        /// Index into [`Code::functions`].
        func: u32,
        /// Where the callee's arguments start on the pending stack.
        args_base: usize,
        /// Pending-stack length to restore on return.
        restore: usize,
        /// The closure, whose cells the callee reaches.
        env: Env<'gc>,
    },
}

/// Preallocation honoured for `create_array(n)`; larger hints are only hints.
const MAX_CAPACITY_HINT: usize = 1 << 16;

fn error(builtin: Builtin, message: impl Into<String>) -> RuntimeErrorKind {
    RuntimeErrorKind::Builtin {
        builtin: builtin.name(),
        message: message.into(),
    }
}

fn string_value<'gc>(
    b: Builtin,
    v: Value<'gc>,
    what: &str,
) -> Result<Gc<'gc, Str>, RuntimeErrorKind> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(error(
            b,
            format!("{what} must be a string (got {})", kind_name(other)),
        )),
    }
}

/// Calls builtin `b` with the arguments on the pending stack from `args_base` on. The caller
/// clears the arguments afterwards (unless it enters the frame asked for, which owns them).
/// Builtins never touch registers, which is why the interpreter can keep its register window
/// borrowed across this call.
pub fn call<'gc>(
    b: Builtin,
    mc: &Mutation<'gc>,
    calls: &Calls<'gc>,
    code: &Code,
    rt: &mut Runtime,
    args_base: usize,
) -> Result<Outcome<'gc>, RuntimeErrorKind> {
    let args = calls.args_from(args_base);
    let value = match b {
        Builtin::Print => {
            // The line is built whole (a callback gets one call per line): its size, which
            // the program controls, is measured and admitted first.
            let mut text = args.len() + 1;
            for &v in args {
                let (len, visited) = format::measure(v);
                text = text.saturating_add(len);
                rt.work = rt.work.saturating_add(2 * visited);
            }
            rt.check_alloc(text)?;
            let mut line = String::new();
            line.try_reserve(text)
                .map_err(|_| RuntimeErrorKind::OutOfMemory(text))?;
            for (i, &v) in args.iter().enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                // Writing to a String cannot fail.
                let _ = format::write_value(&mut line, v);
            }
            line.push('\n');
            rt.output
                .write_text(&line)
                .map_err(|e| RuntimeErrorKind::Output(e.to_string()))?;
            Value::Unit
        }
        Builtin::ToString => {
            if args.len() != 1 {
                return Err(error(b, "expects 1 argument"));
            }
            to_string(mc, rt, args[0])?
        }
        Builtin::Type => {
            if args.len() != 1 {
                return Err(error(b, "expects 1 argument"));
            }
            let name = args[0].kind().type_name();
            Value::String(Str::alloc_copy(mc, &rt.meter, name))
        }
        Builtin::CreateObject => create_object(mc, rt)?,
        Builtin::CreateArray => create_array(mc, rt, args.first().copied())?,
        Builtin::GetField => {
            if args.len() < 2 {
                return Err(error(b, "expects at least 2 arguments: object and key"));
            }
            get_field(mc, rt, args[0], args[1])?
        }
        Builtin::SetField => {
            if args.len() < 3 {
                return Err(error(b, "expects 3 arguments: object, key, and value"));
            }
            set_field(mc, rt, args[0], args[1], args[2])?
        }
        Builtin::ArrayLength => {
            if args.len() != 1 {
                return Err(error(b, "expects 1 argument: array"));
            }
            array_length(rt, args[0])?
        }
        Builtin::ArrayPush => {
            if args.len() < 2 {
                return Err(error(b, "expects at least 2 arguments: array and value"));
            }
            array_push(mc, rt, args[0], &args[1..])?
        }
        Builtin::CreateClosure => {
            let Some(&first) = args.first() else {
                return Err(error(b, "expects at least 1 argument: function_name"));
            };
            let fname = string_value(b, first, "First argument")?;
            for &v in &args[1..] {
                if !matches!(v, Value::String(_)) {
                    return Err(error(b, "Upvalue names must be strings"));
                }
            }
            let names = &args[1..];
            rt.check_alloc(64 + names.len() * 96)?;
            let mut cells = crate::heap::Cells::try_with_capacity(names.len())
                .map_err(|e| rt.alloc_error(e))?;
            for &v in names {
                let name = string_value(b, v, "Upvalue name")?;
                let found = calls.find_upvalue(mc, code, name, &mut rt.work);
                let cell = found.ok_or_else(|| {
                    error(
                        b,
                        format!(
                            "Could not find upvalue {} when creating closure",
                            name.as_str()
                        ),
                    )
                })?;
                // The name string is shared with the caller's value, not copied.
                cells.push(crate::heap::Upvalue { name, cell });
            }
            let slot = code.find_slot(fname.as_str()).unwrap_or(u32::MAX);
            Value::Closure(Closure::alloc(mc, &rt.meter, fname, slot, cells))
        }
        Builtin::CallClosure => {
            let closure = match args.first() {
                Some(Value::Closure(c)) => *c,
                Some(other) => {
                    return Err(error(
                        b,
                        format!(
                            "First argument must be a closure, but got {}",
                            kind_name(*other)
                        ),
                    ));
                }
                None => return Err(error(b, "expects at least 1 argument: closure")),
            };
            let slot = match closure.slot {
                u32::MAX => code.find_slot(closure.function_name.as_str()),
                s => Some(s),
            };
            match slot.map(|s| code.bindings[s as usize]) {
                Some(Binding::Function(f)) => {
                    calls.check_call(code, rt, f, args_base + 1)?;
                    return Ok(Outcome::Enter {
                        func: f,
                        args_base: args_base + 1,
                        restore: args_base,
                        env: Env::Closure(closure),
                    });
                }
                None | Some(Binding::Unbound) => {
                    return Err(super::stdlib::unbound_call(closure.function_name.as_str()));
                }
                Some(_) => {
                    return Err(error(
                        b,
                        format!(
                            "closure target '{}' is not a bytecode function",
                            closure.function_name.as_str()
                        ),
                    ));
                }
            }
        }
        Builtin::GetUpvalue => {
            if args.len() != 1 {
                return Err(error(b, "expects 1 argument: name"));
            }
            get_upvalue(calls, rt, args[0])?
        }
        Builtin::SetUpvalue => {
            if args.len() < 2 {
                return Err(error(b, "expects 2 arguments: name and value"));
            }
            set_upvalue(mc, calls, rt, args[0], args[1])?
        }
        _ => super::stdlib::call(b, mc, rt, args)?,
    };
    Ok(Outcome::Value(value))
}

// The builtins the interpreter also runs as fused ops (`PUSHARG …; CALL name` with the name
// still bound to the builtin): one implementation for both ways in.

/// `create_object()`.
pub(crate) fn create_object<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    rt.check_alloc(Object::CHARGE)?;
    let id = rt.heap_id();
    Ok(Value::Object(Object::alloc(mc, &rt.meter, id)))
}

/// `create_array([capacity])`: the capacity, if given, must be a non-negative integer of any
/// kind. It is only a hint: at most [`MAX_CAPACITY_HINT`] elements are reserved.
pub(crate) fn create_array<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    capacity: Option<Value<'gc>>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let capacity = match capacity {
        None => 0,
        Some(v) => match index_value(v) {
            Some(n) if n >= 0 => n.min(MAX_CAPACITY_HINT as i128) as usize,
            _ => {
                return Err(error(
                    Builtin::CreateArray,
                    "array capacity must be a non-negative integer",
                ));
            }
        },
    };
    rt.check_alloc(Array::charge(capacity))?;
    let array = Array::try_alloc(mc, &rt.meter, rt.next_heap_id, capacity)
        .map_err(|e| rt.alloc_error(e))?;
    rt.heap_id();
    Ok(Value::Array(array))
}

/// An integer of any kind as an index (every kind fits in an i128); `None` for the rest.
fn index_value(v: Value<'_>) -> Option<i128> {
    Some(match v {
        Value::I64(x) => x.into(),
        Value::I32(x) => x.into(),
        Value::I16(x) => x.into(),
        Value::I8(x) => x.into(),
        Value::U8(x) => x.into(),
        Value::U16(x) => x.into(),
        Value::U32(x) => x.into(),
        Value::U64(x) => x.into(),
        _ => return None,
    })
}

/// `get_field(container, key)`. Objects: the field or Unit. Arrays: a negative integer
/// index counts from the end; an integer index that is neither written nor below the
/// length is an error, any other missing key Unit. Strings: the character at a
/// (Python-style) index. Anything else: Unit.
/// (The common cases inline, the rest out of line: the fused op stays as cheap as before
/// the current VM's rules.)
#[inline(always)]
pub(crate) fn get_field<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    container: Value<'gc>,
    key: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    match container {
        Value::Object(o) => return Ok(o.borrow().get(key)),
        Value::Array(a) => {
            if let Some(v) = a.borrow().find(key) {
                return Ok(v);
            }
        }
        _ => {}
    }
    get_field_rare(mc, rt, container, key)
}

/// `get_field`'s rare cases: an array key not found as written, a string, a non-container.
#[cold]
#[inline(never)]
fn get_field_rare<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    container: Value<'gc>,
    key: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    match container {
        Value::Array(a) => array_miss(a, key),
        Value::String(s) => string_char(mc, rt, s, key),
        _ => Ok(Value::Unit),
    }
}

fn out_of_range(what: &str, index: impl std::fmt::Display, len: u64) -> RuntimeErrorKind {
    error(
        Builtin::GetField,
        format!("{what} {index} out of range (length {len})"),
    )
}

/// `get_field` on an array whose key was not found as written.
#[cold]
fn array_miss<'gc>(
    a: crate::heap::ArrayRef<'gc>,
    key: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let array = a.borrow();
    let len = array.length();
    match index_value(key) {
        None => Ok(Value::Unit),
        Some(i) if i < 0 => {
            let resolved = i + i128::from(len);
            if resolved < 0 {
                return Err(out_of_range("array index", i, len));
            }
            // Below the length: written, or a hole (Unit).
            Ok(array.get(Value::I64(resolved as i64)))
        }
        // A hole below the length of an I64-indexed array.
        Some(i) if matches!(key, Value::I64(_)) && i < i128::from(len) => Ok(Value::Unit),
        // Other integer kinds are keys of their own (`a[0i32]` is not `a[0]`), as in
        // StoffelVM, which reports them missing the same way.
        Some(i) => Err(out_of_range("array index", i, len)),
    }
}

/// `get_field` on a string: the character at `key` (negative counts from the end).
#[cold]
fn string_char<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    s: Gc<'gc, Str>,
    key: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let Some(index) = index_value(key) else {
        return Err(error(
            Builtin::GetField,
            format!("string index must be an integer, found {}", kind_name(key)),
        ));
    };
    let text = s.as_str();
    // Counting characters reads the whole string: charged like lookups.
    rt.work = rt.work.saturating_add(text.len() as u64 / 64);
    let len = text.chars().count() as u64;
    let resolved = if index < 0 {
        index + i128::from(len)
    } else {
        index
    };
    if resolved < 0 {
        return Err(out_of_range("string index", index, len));
    }
    let Some(ch) = usize::try_from(resolved)
        .ok()
        .and_then(|i| text.chars().nth(i))
    else {
        return Err(out_of_range("string index", resolved, len));
    };
    let mut buf = [0u8; 4];
    let ch = ch.encode_utf8(&mut buf);
    rt.check_alloc(Str::charge(ch.len()))?;
    let s = Str::try_alloc_copy(mc, &rt.meter, ch).map_err(|e| rt.alloc_error(e))?;
    Ok(Value::String(s))
}

/// `to_string(v)`: the text `print` writes for `v`, as a string.
pub(crate) fn to_string<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    v: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    if let Value::String(_) = v {
        return Ok(v);
    }
    let (len, visited) = format::measure(v);
    rt.work = rt.work.saturating_add(2 * visited);
    // The text is built, then copied into the string.
    rt.check_alloc(len.saturating_add(Str::charge(len)))?;
    let mut text = String::new();
    text.try_reserve(len)
        .map_err(|_| RuntimeErrorKind::OutOfMemory(len))?;
    // Writing to a String cannot fail.
    let _ = format::write_value(&mut text, v);
    let s = Str::try_alloc_copy(mc, &rt.meter, &text).map_err(|e| rt.alloc_error(e))?;
    Ok(Value::String(s))
}

/// `set_field(container, key, value)`: objects and arrays only; a negative integer index
/// on an array counts from the end.
pub(crate) fn set_field<'gc>(
    mc: &Mutation<'gc>,
    rt: &Runtime,
    container: Value<'gc>,
    key: Value<'gc>,
    value: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    match container {
        Value::Object(o) => {
            let mut object = o.borrow_mut(mc);
            // Most writes need no memory: the limit's room is worked out only for the rest.
            if !object.set_in_place(key, value) {
                object
                    .try_set(key, value, rt.room())
                    .map_err(|e| rt.alloc_error(e))?;
            }
        }
        Value::Array(a) => {
            let key = match index_value(key) {
                Some(i) if i < 0 => {
                    let len = a.borrow().length();
                    let resolved = i + i128::from(len);
                    if resolved < 0 {
                        return Err(error(
                            Builtin::SetField,
                            format!("array index {i} out of range (length {len})"),
                        ));
                    }
                    Value::I64(resolved as i64)
                }
                _ => key,
            };
            a.borrow_mut(mc)
                .try_set(key, value, rt.room())
                .map_err(|e| rt.alloc_error(e))?;
        }
        _ => return Err(error(Builtin::SetField, "Expected object or array")),
    }
    Ok(Value::Unit)
}

/// `array_length(v)`: an array's length or a string's character count.
pub(crate) fn array_length<'gc>(
    rt: &mut Runtime,
    v: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    match v {
        Value::Array(a) => Ok(Value::I64(a.borrow().length() as i64)),
        Value::String(s) => {
            let text = s.as_str();
            rt.work = rt.work.saturating_add(text.len() as u64 / 64);
            Ok(Value::I64(text.chars().count() as i64))
        }
        _ => Err(error(
            Builtin::ArrayLength,
            "First argument must be an array or string",
        )),
    }
}

/// `array_push(array, values…)`: the new length.
pub(crate) fn array_push<'gc>(
    mc: &Mutation<'gc>,
    rt: &Runtime,
    array: Value<'gc>,
    values: &[Value<'gc>],
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let b = Builtin::ArrayPush;
    let Value::Array(a) = array else {
        return Err(error(
            b,
            format!("First argument must be an array (got {})", kind_name(array)),
        ));
    };
    let mut array = a.borrow_mut(mc);
    for &v in values {
        let index = array.length();
        if index >= i64::MAX as u64 {
            return Err(error(b, "array length limit reached"));
        }
        array
            .try_set(Value::I64(index as i64), v, rt.room())
            .map_err(|e| rt.alloc_error(e))?;
    }
    Ok(Value::I64(array.length() as i64))
}

/// `get_upvalue(name)`: the current frame's cell called `name`.
pub(crate) fn get_upvalue<'gc>(
    calls: &Calls<'gc>,
    rt: &mut Runtime,
    name: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let b = Builtin::GetUpvalue;
    let name = string_value(b, name, "Upvalue name")?;
    match calls.current_upvalue(name, &mut rt.work) {
        Some(cell) => Ok(*cell.borrow()),
        None => Err(error(b, format!("Upvalue '{}' not found", name.as_str()))),
    }
}

/// `set_upvalue(name, value)`.
pub(crate) fn set_upvalue<'gc>(
    mc: &Mutation<'gc>,
    calls: &Calls<'gc>,
    rt: &mut Runtime,
    name: Value<'gc>,
    value: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let b = Builtin::SetUpvalue;
    let name = string_value(b, name, "Upvalue name")?;
    match calls.current_upvalue(name, &mut rt.work) {
        Some(cell) => *cell.borrow_mut(mc) = value,
        None => {
            return Err(error(
                b,
                format!("Upvalue '{}' not found for writing", name.as_str()),
            ));
        }
    }
    Ok(Value::Unit)
}
