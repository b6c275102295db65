//! The builtin functions: `print`, `type`, objects, arrays and closures, with StoffelVM's
//! argument rules and text formats.
//!
//! Builtins run inside the arena (they allocate), on the arguments the caller pushed. Their
//! result goes to the caller's r0, except `call_closure`, which starts a frame whose `RET`
//! delivers the result later.

use gc_arena::{Gc, Mutation};

use super::code::{Binding, Code};
use super::lower::Op;
use super::stack::{Calls, Window};
use super::{Runtime, RuntimeErrorKind, WINDOW, kind_name};
use crate::heap::{Array, Closure, Env, Object, Str};
use crate::value::Value;

/// The builtins every VM starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// `print(args…)`.
    Print,
    /// `type(v)`.
    Type,
    /// `create_object()`.
    CreateObject,
    /// `create_array([capacity])`.
    CreateArray,
    /// `get_field(container, key)`.
    GetField,
    /// `set_field(container, key, value)`.
    SetField,
    /// `array_length(array)`.
    ArrayLength,
    /// `array_push(array, values…)`.
    ArrayPush,
    /// `create_closure(function_name, upvalue_names…)`.
    CreateClosure,
    /// `call_closure(closure, args…)`.
    CallClosure,
    /// `get_upvalue(name)`.
    GetUpvalue,
    /// `set_upvalue(name, value)`.
    SetUpvalue,
    // The current StoffelVM's further builtins (bodies in `stdlib`).
    /// `len(array_or_string)`.
    Len,
    /// `append(array, values…)`.
    Append,
    /// `assert(condition[, message])`.
    Assert,
    /// `slice(value, start, stop[, step])`.
    Slice,
    /// `get_or_create_array_field(container, key)`.
    GetOrCreateArrayField,
    /// `contains(container, value)`.
    Contains,
    /// `range(start, stop[, step])`.
    Range,
    /// `array_concat(left, right)`.
    ArrayConcat,
    /// `array_repeat(array, count)`.
    ArrayRepeat,
    /// `array_equals(left, right)`.
    ArrayEquals,
    /// `extend(array, values)`.
    Extend,
    /// `copy(array)`.
    Copy,
    /// `count(array, value)`.
    Count,
    /// `index(array, value[, start[, stop]])`.
    Index,
    /// `pop(array[, index])`.
    Pop,
    /// `remove(array, value)`.
    Remove,
    /// `insert(array, index, value)`.
    Insert,
    /// `clear(array)`.
    Clear,
    /// `reverse(array)`.
    Reverse,
    /// `sort(array)`.
    Sort,
    /// `delete(array, index)`.
    Delete,
    /// `Bytes.from_string(text)`.
    BytesFromString,
    /// `Bytes.concat(a, b)`.
    BytesConcat,
    /// `Crypto.sha256(bytes)`.
    CryptoSha256,
    /// `Crypto.sha512(bytes)`.
    CryptoSha512,
    /// `LocalStorage.store(key, value)`.
    StorageStore,
    /// `LocalStorage.load(key)`.
    StorageLoad,
    /// `LocalStorage.retrieve(key)`.
    StorageRetrieve,
    /// `LocalStorage.delete(key)`.
    StorageDelete,
    /// `LocalStorage.exists(key)`.
    StorageExists,
}

impl Builtin {
    /// Every builtin, in registration order.
    pub const ALL: [Builtin; 42] = [
        Builtin::Print,
        Builtin::Type,
        Builtin::CreateObject,
        Builtin::CreateArray,
        Builtin::GetField,
        Builtin::SetField,
        Builtin::ArrayLength,
        Builtin::ArrayPush,
        Builtin::CreateClosure,
        Builtin::CallClosure,
        Builtin::GetUpvalue,
        Builtin::SetUpvalue,
        Builtin::Len,
        Builtin::Append,
        Builtin::Assert,
        Builtin::Slice,
        Builtin::GetOrCreateArrayField,
        Builtin::Contains,
        Builtin::Range,
        Builtin::ArrayConcat,
        Builtin::ArrayRepeat,
        Builtin::ArrayEquals,
        Builtin::Extend,
        Builtin::Copy,
        Builtin::Count,
        Builtin::Index,
        Builtin::Pop,
        Builtin::Remove,
        Builtin::Insert,
        Builtin::Clear,
        Builtin::Reverse,
        Builtin::Sort,
        Builtin::Delete,
        Builtin::BytesFromString,
        Builtin::BytesConcat,
        Builtin::CryptoSha256,
        Builtin::CryptoSha512,
        Builtin::StorageStore,
        Builtin::StorageLoad,
        Builtin::StorageRetrieve,
        Builtin::StorageDelete,
        Builtin::StorageExists,
    ];

    /// The name bytecode calls it by.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Print => "print",
            Builtin::Type => "type",
            Builtin::CreateObject => "create_object",
            Builtin::CreateArray => "create_array",
            Builtin::GetField => "get_field",
            Builtin::SetField => "set_field",
            Builtin::ArrayLength => "array_length",
            Builtin::ArrayPush => "array_push",
            Builtin::CreateClosure => "create_closure",
            Builtin::CallClosure => "call_closure",
            Builtin::GetUpvalue => "get_upvalue",
            Builtin::SetUpvalue => "set_upvalue",
            Builtin::Len => "len",
            Builtin::Append => "append",
            Builtin::Assert => "assert",
            Builtin::Slice => "slice",
            Builtin::GetOrCreateArrayField => "get_or_create_array_field",
            Builtin::Contains => "contains",
            Builtin::Range => "range",
            Builtin::ArrayConcat => "array_concat",
            Builtin::ArrayRepeat => "array_repeat",
            Builtin::ArrayEquals => "array_equals",
            Builtin::Extend => "extend",
            Builtin::Copy => "copy",
            Builtin::Count => "count",
            Builtin::Index => "index",
            Builtin::Pop => "pop",
            Builtin::Remove => "remove",
            Builtin::Insert => "insert",
            Builtin::Clear => "clear",
            Builtin::Reverse => "reverse",
            Builtin::Sort => "sort",
            Builtin::Delete => "delete",
            Builtin::BytesFromString => "Bytes.from_string",
            Builtin::BytesConcat => "Bytes.concat",
            Builtin::CryptoSha256 => "Crypto.sha256",
            Builtin::CryptoSha512 => "Crypto.sha512",
            Builtin::StorageStore => "LocalStorage.store",
            Builtin::StorageLoad => "LocalStorage.load",
            Builtin::StorageRetrieve => "LocalStorage.retrieve",
            Builtin::StorageDelete => "LocalStorage.delete",
            Builtin::StorageExists => "LocalStorage.exists",
        }
    }
}

// `Builtin as usize` indexes tables in `Builtin::ALL` order.
const _: () = {
    let mut i = 0;
    while i < Builtin::ALL.len() {
        assert!(Builtin::ALL[i] as usize == i);
        i += 1;
    }
};

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
            format!("{what} must be a string, got {}", kind_name(other)),
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
            // the program controls, is admitted first.
            let text: usize = args
                .iter()
                .map(Value::display_len)
                .fold(args.len() + 1, usize::saturating_add);
            rt.check_alloc(text)?;
            let mut line = String::new();
            line.try_reserve(text)
                .map_err(|_| RuntimeErrorKind::OutOfMemory(text))?;
            for (i, v) in args.iter().enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                v.write_display(&mut line);
            }
            line.push('\n');
            rt.output
                .write_text(&line)
                .map_err(|e| RuntimeErrorKind::Output(e.to_string()))?;
            Value::Unit
        }
        Builtin::Type => {
            if args.len() != 1 {
                return Err(error(b, format!("expects 1 argument, got {}", args.len())));
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
            get_field(args[0], args[1])
        }
        Builtin::SetField => {
            if args.len() < 3 {
                return Err(error(
                    b,
                    "expects at least 3 arguments: object, key and value",
                ));
            }
            set_field(mc, rt, args[0], args[1], args[2])?
        }
        Builtin::ArrayLength => match args.first() {
            Some(&array) => array_length(array)?,
            None => return Err(error(b, "expects 1 argument: the array")),
        },
        Builtin::ArrayPush => {
            if args.len() < 2 {
                return Err(error(b, "expects at least 2 arguments: array and value"));
            }
            array_push(mc, rt, args[0], &args[1..])?
        }
        Builtin::CreateClosure => {
            let Some(&first) = args.first() else {
                return Err(error(b, "expects at least 1 argument: the function name"));
            };
            let fname = string_value(b, first, "the function name")?;
            for &v in &args[1..] {
                string_value(b, v, "an upvalue name")?;
            }
            let names = &args[1..];
            rt.check_alloc(64 + names.len() * 96)?;
            let mut cells = crate::heap::Cells::try_with_capacity(names.len())
                .map_err(|e| rt.alloc_error(e))?;
            for &v in names {
                let name = string_value(b, v, "an upvalue name")?;
                let found = calls.find_upvalue(mc, code, name, &mut rt.work);
                let cell = found.ok_or_else(|| {
                    error(
                        b,
                        format!(
                            "could not find upvalue '{}' when creating closure",
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
                            "first argument must be a closure, but got {}",
                            kind_name(*other)
                        ),
                    ));
                }
                None => return Err(error(b, "expects at least 1 argument: the closure")),
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
            let Some(&first) = args.first() else {
                return Err(error(b, "expects 1 argument: the upvalue name"));
            };
            get_upvalue(calls, rt, first)?
        }
        Builtin::SetUpvalue => {
            if args.len() < 2 {
                return Err(error(
                    b,
                    "expects 2 arguments: the upvalue name and the value",
                ));
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
    rt.check_alloc(64)?;
    let id = rt.heap_id();
    Ok(Value::Object(Object::alloc(mc, &rt.meter, id)))
}

/// `create_array([capacity])`: a non-I64 capacity is ignored, a negative one an error.
pub(crate) fn create_array<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    capacity: Option<Value<'gc>>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    let capacity = match capacity {
        Some(Value::I64(n)) if n < 0 => {
            return Err(error(
                Builtin::CreateArray,
                format!("capacity must not be negative, got {n}"),
            ));
        }
        Some(Value::I64(n)) => (n as u64).min(MAX_CAPACITY_HINT as u64) as usize,
        _ => 0,
    };
    rt.check_alloc(64 + capacity * std::mem::size_of::<Value<'_>>())?;
    let array = Array::try_alloc(mc, &rt.meter, rt.next_heap_id, capacity)
        .map_err(|e| rt.alloc_error(e))?;
    rt.heap_id();
    Ok(Value::Array(array))
}

/// `get_field(container, key)`: Unit for a missing key or a non-container.
#[inline]
pub(crate) fn get_field<'gc>(container: Value<'gc>, key: Value<'gc>) -> Value<'gc> {
    match container {
        Value::Object(o) => o.borrow().get(key),
        Value::Array(a) => a.borrow().get(key),
        _ => Value::Unit,
    }
}

/// `set_field(container, key, value)`.
pub(crate) fn set_field<'gc>(
    mc: &Mutation<'gc>,
    rt: &Runtime,
    container: Value<'gc>,
    key: Value<'gc>,
    value: Value<'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    match container {
        Value::Object(o) => {
            o.borrow_mut(mc)
                .try_set(key, value, rt.room())
                .map_err(|e| rt.alloc_error(e))?;
        }
        Value::Array(a) => {
            a.borrow_mut(mc)
                .try_set(key, value, rt.room())
                .map_err(|e| rt.alloc_error(e))?;
        }
        other => {
            return Err(error(
                Builtin::SetField,
                format!("expected object or array, got {}", kind_name(other)),
            ));
        }
    }
    Ok(Value::Unit)
}

/// `array_length(array)`.
pub(crate) fn array_length(array: Value<'_>) -> Result<Value<'_>, RuntimeErrorKind> {
    match array {
        Value::Array(a) => Ok(Value::I64(a.borrow().length() as i64)),
        other => Err(error(
            Builtin::ArrayLength,
            format!("first argument must be an array, got {}", kind_name(other)),
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
            format!("first argument must be an array, got {}", kind_name(array)),
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
    let name = string_value(b, name, "the upvalue name")?;
    match calls.current_upvalue(name, &mut rt.work) {
        Some(cell) => Ok(*cell.borrow()),
        None => Err(error(b, format!("upvalue '{}' not found", name.as_str()))),
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
    let name = string_value(b, name, "the upvalue name")?;
    match calls.current_upvalue(name, &mut rt.work) {
        Some(cell) => *cell.borrow_mut(mc) = value,
        None => {
            return Err(error(
                b,
                format!("upvalue '{}' not found for writing", name.as_str()),
            ));
        }
    }
    Ok(Value::Unit)
}

/// How a fused builtin op went (see [`run_fused`]). Small (errors boxed), so it comes back
/// in machine registers rather than through memory.
pub(crate) enum Fused {
    /// It could not run whole (the name was rebound, another argument is pending, or the
    /// budget has no room): its first instruction, a PUSHARG, ran alone.
    Unfused,
    /// The builtin ran and its value is in r0. The op stood for this many instructions.
    Ran(u32),
    /// The memory limit (or the system) refused it. With the op's length, its arguments are
    /// now pending, as the PUSHARGs would have left them, so its CALL can wait for the
    /// collector like any call; with 1, nothing ran (the pending stack could not grow) and
    /// the whole op waits.
    Refused(Box<RuntimeErrorKind>, u32),
    /// The builtin failed.
    Failed(Box<RuntimeErrorKind>, u32),
}

/// Runs a fused builtin op (`PUSHARG …; CALL builtin` as one op). It runs whole only when
/// the name still means the builtin, no other argument is pending and the budget has room
/// for all its instructions; otherwise only its first PUSHARG runs. Kept out of the dispatch
/// loop so that the loop's hot values keep machine registers.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_fused<'gc>(
    op: Op,
    mc: &Mutation<'gc>,
    calls: &mut Calls<'gc>,
    code: &Code,
    rt: &mut Runtime,
    regs: &mut Window<'gc>,
    pending_base: usize,
    left: u32,
) -> Fused {
    let reg = |r: u16| regs[(r as usize) & (WINDOW - 1)];
    // Runs builtin `$b` (its sequence is `$len` instructions, the first a PUSHARG of
    // `$first`) if it may run whole; `$args` are the values its PUSHARGs would push, which a
    // memory refusal leaves pending.
    macro_rules! fused {
        ($b:expr, $len:expr, $first:expr, [$($arg:expr),*], |$($v:ident),*| $call:expr) => {{
            if left < $len - 1 || calls.pending.len() != pending_base || !code.still_builtin($b)
            {
                // The PUSHARG alone; refused stack growth waits at it.
                return match calls.push_arg(rt, reg($first)) {
                    Ok(()) => Fused::Unfused,
                    Err(e) => Fused::Refused(e, 1),
                };
            }
            let ($($v,)*) = ($(reg($arg),)*);
            match $call {
                Ok(v) => {
                    regs[0] = v;
                    Fused::Ran($len)
                }
                Err(e) if e.is_memory() => {
                    let args = [$($v),*];
                    if let Err(e) = calls.reserve_args(rt, args.len()) {
                        // No room for the arguments: the whole sequence waits.
                        return Fused::Refused(e, 1);
                    }
                    calls.pending.extend_from_slice(&args);
                    Fused::Refused(Box::new(e), $len)
                }
                Err(e) => Fused::Failed(Box::new(e), $len),
            }
        }};
    }
    match op {
        Op::GetField { obj, key } => fused!(Builtin::GetField, 3, obj, [obj, key], |o, k| {
            Ok::<_, RuntimeErrorKind>(get_field(o, k))
        }),
        Op::SetField { obj, key, value } => {
            fused!(Builtin::SetField, 4, obj, [obj, key, value], |o, k, v| {
                set_field(mc, rt, o, k, v)
            })
        }
        Op::ArrayPush { array, value } => {
            fused!(Builtin::ArrayPush, 3, array, [array, value], |a, v| {
                array_push(mc, rt, a, &[v])
            })
        }
        Op::ArrayLength { array } => fused!(Builtin::ArrayLength, 2, array, [array], |a| {
            array_length(a)
        }),
        Op::CreateArray { capacity } => {
            fused!(Builtin::CreateArray, 2, capacity, [capacity], |c| {
                create_array(mc, rt, Some(c))
            })
        }
        Op::GetUpvalue { name } => fused!(Builtin::GetUpvalue, 2, name, [name], |n| {
            get_upvalue(calls, rt, n)
        }),
        Op::SetUpvalue { name, value } => {
            fused!(Builtin::SetUpvalue, 3, name, [name, value], |n, v| {
                set_upvalue(mc, calls, rt, n, v)
            })
        }
        _ => Fused::Failed(
            Box::new(RuntimeErrorKind::Internal("not a fused builtin op")),
            1,
        ),
    }
}
