//! The text `print` and `to_string` make of a value, as the current StoffelVM formats it:
//! strings raw (also inside arrays and objects), arrays as `[1, 2]` and objects as `{k: v}`
//! with at most 16 entries shown (then `...(N more)`), three levels of nesting (then
//! `[...N elements]` / `{...N fields}`), a value already being printed as
//! `Array(id) <cycle>`, and every other value in its debug text (`42u8`, `1.5f64`, `()`).
//! Objects list their fields in insertion order (the current VM's order is its hash map's).
//!
//! The text's size is bounded by the limits (about 16^3 leaves per value) but the leaves
//! may be long strings, so callers [`measure`] first, admit that many bytes under the
//! memory limit, then [`write_value`].

use std::fmt::{self, Write};

use gc_arena::Gc;

use crate::heap::{ArrayRef, ObjectRef};
use crate::value::Value;

/// Entries of an array or object shown before `...(N more)`.
const MAX_ENTRIES: usize = 16;

/// Levels of arrays and objects shown; deeper ones print as a count.
const MAX_DEPTH: usize = 3;

/// Writes the text of `v` to `out`; returns the values visited (the work done).
pub(crate) fn write_value<W: Write>(out: &mut W, v: Value<'_>) -> Result<u64, fmt::Error> {
    let mut walker = Walker {
        out,
        active: Vec::new(),
        visited: 0,
    };
    walker.value(v, MAX_DEPTH)?;
    Ok(walker.visited)
}

/// The length in bytes of the text of `v`, and the values visited to find it.
pub(crate) fn measure(v: Value<'_>) -> (usize, u64) {
    let mut counter = Counter(0);
    // The counter never fails.
    let visited = write_value(&mut counter, v).unwrap_or(0);
    (counter.0, visited)
}

/// The text of `v` as a new string (for hosts; the interpreter admits the size first).
pub(crate) fn to_text(v: Value<'_>) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = write_value(&mut text, v);
    text
}

/// A writer that only counts bytes.
struct Counter(usize);

impl Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.saturating_add(s.len());
        Ok(())
    }
}

struct Walker<'w, W> {
    out: &'w mut W,
    /// The arrays and objects being printed, by address: meeting one again is a cycle.
    active: Vec<*const ()>,
    visited: u64,
}

impl<W: Write> Walker<'_, W> {
    fn value(&mut self, v: Value<'_>, depth: usize) -> fmt::Result {
        self.visited += 1;
        match v {
            Value::String(s) => self.out.write_str(s.as_str()),
            Value::Array(a) => {
                let at = Gc::as_ptr(a) as *const ();
                if self.active.contains(&at) {
                    return write!(self.out, "Array({}) <cycle>", a.borrow().id);
                }
                self.active.push(at);
                let done = self.array(a, depth);
                self.active.pop();
                done
            }
            Value::Object(o) => {
                let at = Gc::as_ptr(o) as *const ();
                if self.active.contains(&at) {
                    return write!(self.out, "Object({}) <cycle>", o.borrow().id);
                }
                self.active.push(at);
                let done = self.object(o, depth);
                self.active.pop();
                done
            }
            other => {
                other.write_debug(self.out);
                Ok(())
            }
        }
    }

    fn array(&mut self, a: ArrayRef<'_>, depth: usize) -> fmt::Result {
        let array = a.borrow();
        let len = array.length();
        if depth == 0 {
            return write!(self.out, "[...{len} elements]");
        }
        self.out.write_char('[')?;
        let shown = len.min(MAX_ENTRIES as u64);
        for i in 0..shown {
            if i > 0 {
                self.out.write_str(", ")?;
            }
            // Holes read as Unit.
            self.value(array.get(Value::I64(i as i64)), depth - 1)?;
        }
        if len > shown {
            write!(self.out, ", ...({} more)", len - shown)?;
        }
        self.out.write_char(']')
    }

    fn object(&mut self, o: ObjectRef<'_>, depth: usize) -> fmt::Result {
        let object = o.borrow();
        let len = object.fields.len();
        if depth == 0 {
            return write!(self.out, "{{...{len} fields}}");
        }
        self.out.write_char('{')?;
        for (i, (key, value)) in object.fields.entries().take(MAX_ENTRIES).enumerate() {
            if i > 0 {
                self.out.write_str(", ")?;
            }
            // A key prints like a value nested past the depth limit.
            self.value(key, 0)?;
            self.out.write_str(": ")?;
            self.value(value, depth - 1)?;
        }
        if len > MAX_ENTRIES {
            write!(self.out, ", ...({} more)", len - MAX_ENTRIES)?;
        }
        self.out.write_char('}')
    }
}
