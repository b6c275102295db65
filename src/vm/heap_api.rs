//! The heap API: handles (release, retain, check) and objects, arrays and closures used from
//! the host. Each operation runs the builtin of the same name, so the host gets exactly the
//! behaviour bytecode gets.

use super::Vm;
use super::val::{val_to_value, value_to_val};
use crate::Val;
use crate::error::{ApiError, VmError};
use crate::interp::builtins::Builtin;
use crate::value::{Key, Value};

impl Vm {
    /// Drops the caller's reference to a heap value (no-op for non-heap values). Releasing a
    /// handle that is already dead is an error.
    ///
    /// ```
    /// # use stoffel_vm::{Val, Vm};
    /// let mut vm = Vm::new();
    /// let obj = vm.create_object().unwrap();
    /// vm.set_field(&obj, &Val::from("x"), &Val::I64(1)).unwrap();
    /// assert_eq!(vm.gc_stats().live_handles, 1);
    /// vm.release(&obj).unwrap();
    /// assert!(vm.get_field(&obj, &Val::from("x")).is_err(), "a released id is stale");
    /// assert!(vm.release(&obj).is_err(), "and releasing twice is an error, not a crash");
    /// ```
    pub fn release(&mut self, value: &Val) -> Result<(), VmError> {
        match value.handle() {
            Some(h) => Ok(self.arena.mutate_root(|_, root| root.handles.release(h))?),
            None => Ok(()),
        }
    }

    /// Adds a reference to a heap value's handle: it then needs one more [`Vm::release`].
    pub fn retain(&mut self, value: &Val) -> Result<(), VmError> {
        match value.handle() {
            Some(h) => Ok(self.arena.mutate_root(|_, root| root.handles.retain(h))?),
            None => Ok(()),
        }
    }

    pub(super) fn release_all(&mut self, vals: &[Val]) {
        if vals.iter().all(|v| v.handle().is_none()) {
            return;
        }
        self.arena.mutate_root(|_, root| {
            for v in vals {
                if let Some(h) = v.handle() {
                    // The host may have released it itself: not an error here.
                    let _ = root.handles.release(h);
                }
            }
        });
    }

    /// Checks that a handle is live in this VM and of the kind `value` says.
    pub fn check(&self, value: &Val) -> Result<(), VmError> {
        if value.handle().is_none() {
            // Nothing to check; converting a string would allocate in a `&self` call, which
            // cannot pay the collector.
            return Ok(());
        }
        let meter = &self.rt.meter;
        self.arena
            .mutate(|mc, root| val_to_value(mc, meter, &root.handles, value).map(|_| ()))
    }

    /// A new empty object (a handle the caller owns).
    pub fn create_object(&mut self) -> Result<Val, VmError> {
        self.builtin(Builtin::CreateObject, &[])
    }

    /// A new empty array.
    pub fn create_array(&mut self) -> Result<Val, VmError> {
        self.builtin(Builtin::CreateArray, &[])
    }

    /// `get_field(container, key)`, as the builtin: Unit for a missing object key or a
    /// non-container, an error for an array index not below the length, a one-character
    /// string for a string (negative indices count from the end).
    pub fn get_field(&mut self, container: &Val, key: &Val) -> Result<Val, VmError> {
        self.builtin(Builtin::GetField, &[container.clone(), key.clone()])
    }

    /// `set_field(container, key, value)`.
    pub fn set_field(&mut self, container: &Val, key: &Val, value: &Val) -> Result<(), VmError> {
        self.builtin(
            Builtin::SetField,
            &[container.clone(), key.clone(), value.clone()],
        )
        .map(|_| ())
    }

    /// `array_length(array)`.
    pub fn array_length(&mut self, array: &Val) -> Result<i64, VmError> {
        match self.builtin(Builtin::ArrayLength, std::slice::from_ref(array))? {
            Val::I64(n) => Ok(n),
            other => Err(ApiError::WrongKind {
                expected: "int64",
                got: other.kind().type_name(),
            }
            .into()),
        }
    }

    /// `array_push(array, value)`; returns the new length.
    pub fn array_push(&mut self, array: &Val, value: &Val) -> Result<i64, VmError> {
        match self.builtin(Builtin::ArrayPush, &[array.clone(), value.clone()])? {
            Val::I64(n) => Ok(n),
            other => Err(ApiError::WrongKind {
                expected: "int64",
                got: other.kind().type_name(),
            }
            .into()),
        }
    }

    /// An object's fields as (key, value) pairs, in insertion order; heap keys and values
    /// are new references the caller owns.
    ///
    /// ```
    /// # use stoffel_vm::{Val, Vm};
    /// let mut vm = Vm::new();
    /// let obj = vm.create_object().unwrap();
    /// vm.set_field(&obj, &Val::from("b"), &Val::I64(2)).unwrap();
    /// vm.set_field(&obj, &Val::from("a"), &Val::I64(1)).unwrap();
    /// let fields = vm.fields(&obj).unwrap();
    /// assert_eq!(fields, [(Val::from("b"), Val::I64(2)), (Val::from("a"), Val::I64(1))]);
    /// ```
    pub fn fields(&mut self, object: &Val) -> Result<Vec<(Val, Val)>, VmError> {
        if !matches!(object, Val::Object(_)) {
            return Err(ApiError::WrongKind {
                expected: "object",
                got: object.kind().type_name(),
            }
            .into());
        }
        let _guard = self.enter()?;
        let meter = &self.rt.meter;
        let fields = self.arena.mutate_root(|mc, root| {
            let Value::Object(obj) = val_to_value(mc, meter, &root.handles, object)? else {
                return Err(VmError::from(ApiError::WrongKind {
                    expected: "object",
                    got: object.kind().type_name(),
                }));
            };
            let entries: Vec<_> = obj.borrow().fields.entries().collect();
            let mut out = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let pair = value_to_val(k, &mut root.handles).and_then(|k| {
                    match value_to_val(v, &mut root.handles) {
                        Ok(v) => Ok((k, v)),
                        Err(e) => {
                            if let Some(h) = k.handle() {
                                let _ = root.handles.release(h);
                            }
                            Err(e)
                        }
                    }
                });
                match pair {
                    Ok(pair) => out.push(pair),
                    Err(e) => {
                        for (k, v) in &out {
                            for h in [k.handle(), v.handle()].into_iter().flatten() {
                                let _ = root.handles.release(h);
                            }
                        }
                        return Err(e);
                    }
                }
            }
            Ok(out)
        });
        self.collect_debt();
        fields
    }

    /// The same as [`Vm::fields`] (the name the Rust SDK of StoffelVM uses).
    pub fn entries(&mut self, object: &Val) -> Result<Vec<(Val, Val)>, VmError> {
        self.fields(object)
    }

    /// The field after `key` in `object` (the first for a Unit `key`), in insertion order, as
    /// (key, value) with heap values as new handles the caller owns; `None` after the last.
    /// A `key` that is not a field is an error. What `stoffel_object_next` does.
    ///
    /// ```
    /// # use stoffel_vm::{Val, Vm};
    /// let mut vm = Vm::new();
    /// let obj = vm.create_object().unwrap();
    /// vm.set(&obj, "a", 1i64).unwrap();
    /// vm.set(&obj, "b", 2i64).unwrap();
    /// let mut key = Val::Unit;
    /// let mut seen = Vec::new();
    /// while let Some((k, v)) = vm.next_field(&obj, &key).unwrap() {
    ///     seen.push((k.clone(), v));
    ///     key = k;
    /// }
    /// assert_eq!(seen, [(Val::from("a"), Val::I64(1)), (Val::from("b"), Val::I64(2))]);
    /// assert!(vm.next_field(&obj, &Val::from("zz")).is_err());
    /// ```
    pub fn next_field(&mut self, object: &Val, key: &Val) -> Result<Option<(Val, Val)>, VmError> {
        if !matches!(object, Val::Object(_)) {
            return Err(ApiError::WrongKind {
                expected: "object",
                got: object.kind().type_name(),
            }
            .into());
        }
        let _guard = self.enter()?;
        let meter = &self.rt.meter;
        let next = self.arena.mutate_root(|mc, root| {
            let Value::Object(obj) = val_to_value(mc, meter, &root.handles, object)? else {
                return Err(VmError::from(ApiError::WrongKind {
                    expected: "object",
                    got: object.kind().type_name(),
                }));
            };
            let key = match key {
                Val::Unit => None,
                other => Some(Key(val_to_value(mc, meter, &root.handles, other)?)),
            };
            let next = obj.borrow().fields.next_after(key.as_ref());
            match next {
                Err(()) => Err(ApiError::NotAField.into()),
                Ok(None) => Ok(None),
                Ok(Some((k, v))) => {
                    let k = value_to_val(k, &mut root.handles)?;
                    match value_to_val(v, &mut root.handles) {
                        Ok(v) => Ok(Some((k, v))),
                        Err(e) => {
                            if let Some(h) = k.handle() {
                                let _ = root.handles.release(h);
                            }
                            Err(e)
                        }
                    }
                }
            }
        });
        self.collect_debt();
        next
    }

    /// `call_closure(closure, args…)`.
    pub fn call_closure(&mut self, closure: &Val, args: &[Val]) -> Result<Val, VmError> {
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(closure.clone());
        all.extend_from_slice(args);
        self.builtin(Builtin::CallClosure, &all)
    }

    pub(super) fn builtin(&mut self, b: Builtin, args: &[Val]) -> Result<Val, VmError> {
        let _guard = self.enter()?;
        self.run_builtin(b, args)
    }
}
