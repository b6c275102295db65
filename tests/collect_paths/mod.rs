//! The workloads of `tests/collect_every_path.rs` (heap figures) and
//! `tests/collect_every_path_rss.rs` (RSS, in its own process): every way a host makes the
//! VM allocate, repeated with every result released. Each must keep the heap flat because
//! the collector runs on that path itself, not because something else happens to run it.

#![allow(dead_code)]

use crate::common::SyncCell;
use std::sync::Arc;

use stoffel_vm::{Val, Vm};

/// Calls per workload.
pub const CALLS: u64 = 1_000_000;
/// Calls after which the figures are the reference (the heap may grow up to 2x of them).
pub const WARMUP: u64 = 10_000;

/// A VM set up for one workload and the call it repeats.
pub struct Workload {
    pub vm: Vm,
    pub step: Box<dyn FnMut(&mut Vm)>,
}

/// Every workload that repeats a host call, by name.
pub const NAMES: &[&str] = &[
    "execute_create_object",
    "execute_create_array",
    "call_builtin_with_strings",
    "execute_builtin_returning_string",
    "call_host_returning_string",
    "execute_host_returning_object",
    "heap_api",
    "create_foreign",
];

/// Counts drops of foreign data (finalizations).
pub struct Finalized(pub Arc<SyncCell<u64>>);

impl Drop for Finalized {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn release(vm: &mut Vm, v: &Val) {
    vm.release(v).expect("release");
}

/// The workload called `name`; `finalized` counts the foreign objects finalized.
pub fn workload(name: &str, finalized: &Arc<SyncCell<u64>>) -> Workload {
    let mut vm = Vm::new();
    let step: Box<dyn FnMut(&mut Vm)> = match name {
        // The Python bindings' pattern: a builtin by name, no arguments, result released.
        "execute_create_object" => Box::new(|vm| {
            let r = vm.execute("create_object", &[]).unwrap();
            release(vm, &r);
        }),
        "execute_create_array" => Box::new(|vm| {
            let r = vm.execute("create_array", &[]).unwrap();
            release(vm, &r);
        }),
        // `Vm::call` of a builtin whose string arguments are copied into the heap: the field
        // is overwritten, so each call leaves two strings behind.
        "call_builtin_with_strings" => {
            let obj = vm.create_object().unwrap();
            Box::new(move |vm| {
                vm.call::<Val>(
                    "set_field",
                    &[obj.clone(), Val::from("key"), Val::from("a value string")],
                )
                .unwrap();
            })
        }
        // A builtin whose result is a fresh string, converted for the host.
        "execute_builtin_returning_string" => Box::new(|vm| {
            let r = vm.execute("type", &[Val::from("argument")]).unwrap();
            assert_eq!(r, Val::from("string"));
        }),
        // A host function by name: a string argument in, a string result out.
        "call_host_returning_string" => {
            vm.register_function("make_string", |_, args| match args {
                [Val::String(s)] => Ok(Val::String(format!("made from {s}"))),
                _ => Err("make_string: one string".into()),
            });
            Box::new(|vm| {
                let r = vm.call::<Val>("make_string", &[Val::from("x")]).unwrap();
                assert_eq!(r, Val::from("made from x"));
            })
        }
        // A host function by name making an object (heap API inside) and handing it over.
        "execute_host_returning_object" => {
            vm.register_function("make_object", |vm, _| {
                let obj = vm.create_object()?;
                vm.set_field(&obj, &Val::from("name"), &Val::from("made by the host"))?;
                Ok(obj)
            });
            Box::new(|vm| {
                let r = vm.execute("make_object", &[]).unwrap();
                release(vm, &r);
            })
        }
        // The heap API with no execution at all: objects, arrays, string keys and values,
        // a string read back out.
        "heap_api" => Box::new(|vm| {
            let obj = vm.create_object().unwrap();
            vm.set_field(&obj, &Val::from("name"), &Val::from("a value string"))
                .unwrap();
            let got = vm.get_field(&obj, &Val::from("name")).unwrap();
            assert_eq!(got, Val::from("a value string"));
            let arr = vm.create_array().unwrap();
            vm.array_push(&arr, &obj).unwrap();
            assert_eq!(vm.array_length(&arr).unwrap(), 1);
            release(vm, &obj);
            release(vm, &arr);
        }),
        "create_foreign" => {
            let counter = finalized.clone();
            Box::new(move |vm| {
                let f = vm
                    .create_foreign(Box::new(Finalized(counter.clone())))
                    .unwrap();
                release(vm, &f);
            })
        }
        other => panic!("no workload {other}"),
    };
    Workload { vm, step }
}

/// A program whose one execution calls host functions `n` times in a tight loop (far fewer
/// instructions between host calls than a driver step runs), with a fresh object each
/// iteration: `loop(n)`. The host functions are `host_string` (returns a fresh string) and
/// `host_int` (returns an integer).
pub const HOST_LOOP: &str = r#"
.function loop(n) registers 6
    MOV r4, r0
    LDI r2, 0
    LDI r3, 1
top:
    CMP r2, r4
    JMPEQ done
    CALL create_object
    MOV r5, r0
    PUSHARG r5
    CALL host_string
    CALL host_int
    ADD r2, r2, r3
    JMP top
done:
    RET r2
"#;

/// Reads a `kB` figure of `/proc/self/status` (`VmRSS`, `VmHWM`).
pub fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
