//! Hand-written inputs that reach the callback paths, and the encoder that turns them into
//! the bytes `arbitrary` decodes them from.
//!
//! Part of the `c_api` target (`#[path]` module): the seeds are written in the target's own
//! types, and `write` checks that each decodes back to the ops it was written from.

use super::*;

trait Enc {
    fn enc(&self, o: &mut Vec<u8>);
}

/// Variant `index` of an enum with `count` variants (`arbitrary` maps a u32 `x` to
/// variant `(x * count) >> 32`).
fn variant(o: &mut Vec<u8>, index: u32, count: u32) {
    let x = ((u64::from(index) << 32).div_ceil(u64::from(count))) as u32;
    o.extend_from_slice(&x.to_le_bytes());
}

impl Enc for u8 {
    fn enc(&self, o: &mut Vec<u8>) {
        o.push(*self);
    }
}
impl Enc for bool {
    fn enc(&self, o: &mut Vec<u8>) {
        o.push(u8::from(*self));
    }
}
impl Enc for u16 {
    fn enc(&self, o: &mut Vec<u8>) {
        o.extend_from_slice(&self.to_le_bytes());
    }
}
impl Enc for i32 {
    fn enc(&self, o: &mut Vec<u8>) {
        o.extend_from_slice(&self.to_le_bytes());
    }
}
impl Enc for i64 {
    fn enc(&self, o: &mut Vec<u8>) {
        o.extend_from_slice(&self.to_le_bytes());
    }
}
impl Enc for u64 {
    fn enc(&self, o: &mut Vec<u8>) {
        o.extend_from_slice(&self.to_le_bytes());
    }
}
impl Enc for f64 {
    fn enc(&self, o: &mut Vec<u8>) {
        self.to_bits().enc(o);
    }
}
impl<T: Enc> Enc for Vec<T> {
    fn enc(&self, o: &mut Vec<u8>) {
        for x in self {
            o.push(1);
            x.enc(o);
        }
        o.push(0);
    }
}

macro_rules! enc_enum {
    ($ty:ident, $count:expr, { $($pat:pat => $idx:expr, [$($f:expr),*]);* $(;)? }) => {
        impl Enc for $ty {
            #[allow(unused_variables)]
            fn enc(&self, o: &mut Vec<u8>) {
                match self {
                    $($pat => { variant(o, $idx, $count); $($f.enc(o);)* })*
                }
            }
        }
    };
}

enc_enum!(Arg, 10, {
    Arg::Int(i) => 0, [i];
    Arg::Float(f) => 1, [f];
    Arg::Bool(b) => 2, [b];
    Arg::Str(s) => 3, [s];
    Arg::NullString => 4, [];
    Arg::BadTag(t) => 5, [t];
    Arg::Pool(k) => 6, [k];
    Arg::Forged(id, kind) => 7, [id, kind];
    Arg::Param(k) => 8, [k];
    Arg::Last => 9, [];
});

enc_enum!(Fin, 4, {
    Fin::None => 0, [];
    Fin::Count => 1, [];
    Fin::Destroy(s) => 2, [s];
    Fin::Probe(s) => 3, [s];
});

enc_enum!(Res, 10, {
    Res::Int(i) => 0, [i];
    Res::Float(f) => 1, [f];
    Res::Arg(k) => 2, [k];
    Res::Pool(k) => 3, [k];
    Res::Last => 4, [];
    Res::NewObject => 5, [];
    Res::Str => 6, [];
    Res::NullString => 7, [];
    Res::BadTag(t) => 8, [t];
    Res::Fail(c) => 9, [c];
});

enc_enum!(Op, 40, {
    Op::NewVm => 0, [];
    Op::Destroy(s) => 1, [s];
    Op::Load(s, w, b) => 2, [s, w, b];
    Op::LoadBytes(s, v) => 3, [s, v];
    Op::LoadAsm(s, v) => 4, [s, v];
    Op::Execute(s, n, a) => 5, [s, n, a];
    Op::ExecuteNoArgs(s, n) => 6, [s, n];
    Op::ExecuteBadName(s, v) => 7, [s, v];
    Op::ExecuteBadCount(s, c, b) => 8, [s, c, b];
    Op::Register(s, n, k) => 9, [s, n, k];
    Op::RegisterScript(s, n, ops) => 10, [s, n, ops];
    Op::RegisterNull(s) => 11, [s];
    Op::ForeignObject(s, f) => 12, [s, f];
    Op::GetForeign(s, a) => 13, [s, a];
    Op::Release(s, k) => 14, [s, k];
    Op::Retain(s, k) => 15, [s, k];
    Op::ReleaseArg(s, a) => 16, [s, a];
    Op::RetainArg(s, a) => 17, [s, a];
    Op::CreateObject(s) => 18, [s];
    Op::CreateArray(s) => 19, [s];
    Op::GetField(s, c, k) => 20, [s, c, k];
    Op::SetField(s, c, k, v) => 21, [s, c, k, v];
    Op::ArrayPush(s, a, v) => 22, [s, a, v];
    Op::ArrayLength(s, a) => 23, [s, a];
    Op::CallClosure(s, c, a) => 24, [s, c, a];
    Op::Limits(s, f, d, m) => 25, [s, f, d, m];
    Op::Gc(s) => 26, [s];
    Op::Stats(s) => 27, [s];
    Op::CreateString(s, v) => 28, [s, v];
    Op::FreeString(k) => 29, [k];
    Op::FreeBogus(x) => 30, [x];
    Op::PrintCallback(s, b) => 31, [s, b];
    Op::Result(r) => 32, [r];
    Op::Interrupt(s) => 33, [s];
    Op::ObjectNext(s, o, k) => 34, [s, o, k];
    Op::Lookup(s, n) => 35, [s, n];
    Op::CallFunction(s, k, a) => 36, [s, k, a];
    Op::Start(s, n, a, f) => 37, [s, n, a, f];
    Op::Resume(s, f) => 38, [s, f];
    Op::Cancel(s) => 39, [s];
});

/// The current VM (see [`Sel`]).
const CUR: Sel = 0x80;
/// `NAMES` indices.
const IDENTITY: u8 = 4;
const CALLS_CBS: u8 = 6;
const MAKE_OBJ: u8 = 0;
const SHOW: u8 = 9;
const LOOP_CB: u8 = 24;
const AGAIN: u8 = 25;
/// `CB_NAMES` indices.
const CB0: u8 = 0;
const CB1: u8 = 1;
/// `PROGRAMS` indices.
const P_MAIN: u8 = 0;
const P_SWAP: u8 = 1;
const P_CBS: u8 = 2;
const P_BUILTINS: u8 = 3;
const P_AGAIN: u8 = 4;

fn ints(a: i64, b: i64) -> Vec<Arg> {
    vec![Arg::Int(a), Arg::Int(b)]
}

/// STFL v9 files (`corpus/load_bytecode`): compiled programs, spill slots (LDS/STS, NOP),
/// every FunctionType tag, a manifest with clients and demand, a store to slot 2^32-1.
const V9_FILES: [(&str, &[u8]); 5] = [
    (
        "fibonacci",
        include_bytes!("../corpus/load_bytecode/v9-tests-stfl-fibonacci"),
    ),
    (
        "spill",
        include_bytes!("../corpus/load_bytecode/hand-v9-spill"),
    ),
    (
        "types",
        include_bytes!("../corpus/load_bytecode/hand-v9-types"),
    ),
    (
        "manifest",
        include_bytes!("../corpus/load_bytecode/hand-v9-manifest"),
    ),
    (
        "huge-slot",
        include_bytes!("../corpus/load_bytecode/hand-v9-sts-huge-slot"),
    ),
];

/// Each v9 file loaded into a VM that already has `PROGRAM` (bytecode and callbacks), then
/// its `main` run, and a prepared program loaded over it.
fn v9_seeds() -> Vec<(String, Vec<Op>)> {
    use Op::*;
    V9_FILES
        .iter()
        .map(|(name, bytes)| {
            let ops = vec![
                Register(0, 0, 0),
                Load(0, P_MAIN, true),
                LoadBytes(0, bytes.to_vec()),
                ExecuteBadName(0, b"main".to_vec()),
                Execute(0, CALLS_CBS, ints(1, 2)),
                Load(0, P_SWAP, false),
                ExecuteBadName(0, b"main".to_vec()),
                Stats(0),
            ];
            (format!("v9-{name}"), ops)
        })
        .collect()
}

fn list() -> Vec<(&'static str, Vec<Op>)> {
    use Op::*;
    vec![
        // Function handles: looked up, called, across a reload that redefines the name and
        // a callback registered under it; on another VM; made up; on a destroyed VM.
        (
            "function-handles",
            vec![
                Lookup(0, IDENTITY),
                Lookup(0, CALLS_CBS),
                CallFunction(0, 0, vec![Arg::Int(5)]),
                Register(0, 0, 0),
                Register(0, 1, 4),
                Register(0, 2, 2),
                Register(0, 3, 0),
                CallFunction(0, 1, ints(1, 2)),
                Load(0, P_SWAP, true),
                CallFunction(0, 0, vec![Arg::Int(6)]),
                CallFunction(0, 1, ints(3, 4)),
                RegisterScript(
                    0,
                    4,
                    vec![
                        Lookup(CUR, MAKE_OBJ),
                        CallFunction(CUR, 2, vec![Arg::Param(0)]),
                        Result(Res::Last),
                    ],
                ),
                CallFunction(0, 0, vec![Arg::Int(7)]),
                NewVm,
                Load(1, P_MAIN, false),
                CallFunction(1, 0, vec![Arg::Int(8)]),
                Lookup(1, IDENTITY),
                CallFunction(0, 0xF3, vec![]),
                Destroy(1),
                CallFunction(1, 3, vec![Arg::Int(9)]),
                CallFunction(0, 3, vec![Arg::Int(9)]),
            ],
        ),
        // Reloads from the top level, as assembly and as bytecode, between executions.
        (
            "reload-top",
            vec![
                Register(0, 0, 0),
                Register(0, 1, 4),
                Register(0, 2, 2),
                Register(0, 3, 0),
                Execute(0, CALLS_CBS, ints(1, 2)),
                Load(0, P_SWAP, false),
                Execute(0, CALLS_CBS, ints(3, 4)),
                Load(0, P_CBS, true),
                Execute(0, CALLS_CBS, ints(5, 6)),
                Load(0, P_BUILTINS, false),
                Execute(0, MAKE_OBJ, vec![Arg::Int(1)]),
                Execute(0, SHOW, vec![Arg::Int(1)]),
                Load(0, P_MAIN, true),
                Execute(0, MAKE_OBJ, vec![Arg::Int(1)]),
                Stats(0),
            ],
        ),
        // A callback reloads the function running it (calls_cbs) and itself (cb0), as
        // assembly and bytecode, then runs the new code re-entrantly.
        (
            "reload-in-callback",
            vec![
                Register(0, 1, 0),
                Register(0, 2, 4),
                Register(0, 3, 2),
                RegisterScript(
                    0,
                    CB0,
                    vec![
                        Load(CUR, P_SWAP, false),
                        Load(CUR, P_CBS, true),
                        Execute(CUR, CALLS_CBS, ints(7, 8)),
                        Load(CUR, P_AGAIN, false),
                        Result(Res::Int(7)),
                    ],
                ),
                Execute(0, CALLS_CBS, ints(1, 2)),
                Load(0, P_MAIN, false),
                RegisterScript(
                    0,
                    CB0,
                    vec![Load(CUR, P_MAIN, true), Result(Res::NewObject)],
                ),
                Execute(0, LOOP_CB, vec![Arg::Int(1)]),
                Stats(0),
            ],
        ),
        // Walking an object's fields with stoffel_object_next: first, next, the end, a key
        // that is not a field, a non-object.
        (
            "object-next",
            vec![
                CreateObject(0),
                SetField(0, Arg::Last, Arg::Str(b"a".to_vec()), Arg::Int(1)),
                SetField(
                    0,
                    Arg::Last,
                    Arg::Str(b"b".to_vec()),
                    Arg::Str(b"x".to_vec()),
                ),
                ObjectNext(0, Arg::Last, Arg::Param(0)),
                ObjectNext(0, Arg::Last, Arg::Str(b"a".to_vec())),
                ObjectNext(0, Arg::Last, Arg::Str(b"b".to_vec())),
                ObjectNext(0, Arg::Last, Arg::Str(b"zz".to_vec())),
                ObjectNext(0, Arg::Int(1), Arg::Param(0)),
                Stats(0),
            ],
        ),
        // Time slices: a program that calls back, started and resumed a few instructions at a
        // time with other calls between (a second start, a callback that tries to start,
        // resume and cancel from inside a slice), then cancelled, and the state errors.
        (
            "slices",
            vec![
                RegisterScript(
                    0,
                    CB0,
                    vec![
                        Start(CUR, MAKE_OBJ, vec![Arg::Int(1)], 3),
                        Resume(CUR, 3),
                        Cancel(CUR),
                        Execute(CUR, MAKE_OBJ, vec![Arg::Int(2)]),
                        Result(Res::Int(1)),
                    ],
                ),
                Register(0, 1, 0),
                Start(0, CALLS_CBS, ints(1, 2), 2),
                Resume(0, 3),
                Execute(0, MAKE_OBJ, vec![Arg::Int(3)]),
                Start(0, MAKE_OBJ, vec![Arg::Int(4)], 5),
                Gc(0),
                Resume(0, 7),
                Resume(0, 7),
                Resume(0, 15),
                Resume(0, 15),
                Start(0, LOOP_CB, vec![Arg::Int(1)], 4),
                Resume(0, 4),
                Cancel(0),
                Cancel(0),
                Resume(0, 1),
                Start(0, MAKE_OBJ, vec![Arg::Int(5)], 0),
                Stats(0),
            ],
        ),
        // A callback interrupts the execution that called it, then keeps using the VM: the
        // loop it runs in stops (INTERRUPTED), and the next top-level execution runs.
        (
            "interrupt-in-callback",
            vec![
                RegisterScript(
                    0,
                    CB0,
                    vec![
                        Interrupt(CUR),
                        Execute(CUR, MAKE_OBJ, vec![Arg::Int(2)]),
                        Result(Res::Int(1)),
                    ],
                ),
                Interrupt(0),
                Execute(0, LOOP_CB, vec![Arg::Int(1)]),
                Execute(0, MAKE_OBJ, vec![Arg::Int(3)]),
                Stats(0),
            ],
        ),
        // A callback replaces itself (by registration and by bytecode) while it runs
        // inside a loop that calls it again.
        (
            "replace-running-callback",
            vec![
                RegisterScript(
                    0,
                    CB0,
                    vec![
                        RegisterScript(CUR, CB0, vec![Result(Res::Int(3)), Gc(CUR)]),
                        Execute(CUR, LOOP_CB, vec![Arg::Int(2)]),
                        Load(CUR, P_CBS, false),
                        Result(Res::Int(1)),
                    ],
                ),
                Execute(0, LOOP_CB, vec![Arg::Int(0)]),
                Execute(0, LOOP_CB, vec![Arg::Int(0)]),
                Stats(0),
            ],
        ),
        // A callback destroys its own VM: the handle is dead at once (every later call,
        // in the callback and after, is INVALID_VM); the VM goes when the execution ends.
        (
            "destroy-self-in-callback",
            vec![
                ForeignObject(0, Fin::Count),
                ForeignObject(0, Fin::Probe(CUR)),
                PrintCallback(0, true),
                RegisterScript(
                    0,
                    CB0,
                    vec![
                        CreateObject(CUR),
                        Destroy(CUR),
                        Gc(CUR),
                        Execute(CUR, IDENTITY, vec![Arg::Int(1)]),
                        RetainArg(CUR, Arg::Param(0)),
                        Result(Res::Last),
                    ],
                ),
                Register(0, 1, 4),
                Execute(0, CALLS_CBS, vec![Arg::Last, Arg::Int(2)]),
                Stats(0),
                CreateObject(0),
                NewVm,
                Load(1, P_MAIN, true),
                Execute(1, MAKE_OBJ, vec![Arg::Int(3)]),
            ],
        ),
        // A callback of VM 0 destroys VM 1 (idle), whose finalizer destroys VM 0 (busy
        // in the call the callback runs in: destroyed when it returns).
        (
            "destroy-other-in-callback",
            vec![
                NewVm,
                Load(1, P_MAIN, false),
                ForeignObject(1, Fin::Count),
                ForeignObject(1, Fin::Destroy(0)),
                ForeignObject(1, Fin::Probe(0)),
                RegisterScript(
                    0,
                    CB0,
                    vec![Destroy(1), Stats(1), Stats(CUR), Result(Res::Int(1))],
                ),
                Execute(0, CALLS_CBS, ints(1, 2)),
                Stats(0),
                NewVm,
                Stats(2),
            ],
        ),
        // Finalizers run by a collection destroy VMs and call into them.
        (
            "finalizer-destroys",
            vec![
                NewVm,
                NewVm,
                ForeignObject(1, Fin::Destroy(0)),
                ForeignObject(1, Fin::Probe(CUR)),
                ForeignObject(1, Fin::Probe(2)),
                Release(1, 0),
                Release(1, 1),
                Release(1, 2),
                Gc(1),
                CreateObject(0),
                ForeignObject(2, Fin::Destroy(CUR)),
                ForeignObject(2, Fin::Destroy(1)),
                Destroy(2),
                Stats(1),
            ],
        ),
        // A chain: destroying VM 0 runs a finalizer destroying VM 1, whose finalizer
        // destroys VM 2, whose finalizer probes VM 0.
        (
            "finalizer-chain",
            vec![
                NewVm,
                NewVm,
                ForeignObject(0, Fin::Destroy(1)),
                ForeignObject(1, Fin::Destroy(2)),
                ForeignObject(2, Fin::Probe(0)),
                ForeignObject(2, Fin::Count),
                Destroy(0),
                NewVm,
                Stats(3),
            ],
        ),
        // A callback retains one argument id and releases another, collects, returns the
        // retained argument; the retained id stays ours.
        (
            "callback-arg-ids",
            vec![
                CreateObject(0),
                CreateArray(0),
                RegisterScript(
                    0,
                    CB0,
                    vec![
                        RetainArg(CUR, Arg::Param(0)),
                        ReleaseArg(CUR, Arg::Param(1)),
                        ReleaseArg(CUR, Arg::Param(1)),
                        Gc(CUR),
                        Stats(CUR),
                        Result(Res::Arg(0)),
                    ],
                ),
                RegisterScript(
                    0,
                    CB1,
                    vec![RetainArg(CUR, Arg::Param(1)), Result(Res::Pool(0))],
                ),
                Register(0, 2, 4),
                Register(0, 3, 4),
                Execute(0, CALLS_CBS, vec![Arg::Pool(0), Arg::Pool(1)]),
                Stats(0),
                Release(0, 2),
                Stats(0),
            ],
        ),
        // Re-entry across VMs: VM 0's callback runs VM 1's code, whose callback collects
        // VM 0 (lent) and destroys it, then VM 1 runs on.
        (
            "nested-vms",
            vec![
                NewVm,
                Load(1, P_MAIN, true),
                Load(1, P_AGAIN, true),
                ForeignObject(0, Fin::Probe(1)),
                Release(0, 0),
                RegisterScript(
                    0,
                    CB0,
                    vec![
                        Execute(1, CALLS_CBS, ints(1, 2)),
                        Execute(CUR, IDENTITY, vec![Arg::Param(0)]),
                        Result(Res::Int(5)),
                    ],
                ),
                RegisterScript(
                    1,
                    CB0,
                    vec![
                        Gc(0),
                        Stats(0),
                        Destroy(0),
                        Execute(0, IDENTITY, vec![Arg::Int(1)]),
                        Gc(CUR),
                        Result(Res::NewObject),
                    ],
                ),
                Register(1, 1, 0),
                Register(1, 2, 0),
                Register(1, 3, 0),
                Execute(0, CALLS_CBS, ints(1, 2)),
                Execute(1, AGAIN, vec![Arg::Int(4)]),
                Stats(1),
            ],
        ),
        // GC inside a callback runs a finalizer that probes the VM (busy: refused) and
        // the callback's result is a fresh object.
        (
            "gc-in-callback",
            vec![
                ForeignObject(0, Fin::Probe(CUR)),
                ForeignObject(0, Fin::Destroy(CUR)),
                Release(0, 0),
                RegisterScript(
                    0,
                    CB1,
                    vec![
                        Gc(CUR),
                        Stats(CUR),
                        Release(CUR, 1),
                        Gc(CUR),
                        Result(Res::NewObject),
                    ],
                ),
                Register(0, 0, 0),
                Register(0, 2, 4),
                Register(0, 3, 4),
                Execute(0, CALLS_CBS, ints(1, 2)),
                Stats(0),
            ],
        ),
    ]
}

pub fn write(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("seed directory");
    let seeds = list().into_iter().map(|(name, ops)| (name.to_owned(), ops));
    for (name, ops) in seeds.chain(v9_seeds()) {
        let mut bytes = Vec::new();
        for op in &ops {
            bytes.push(1);
            op.enc(&mut bytes);
        }
        let decoded = Vec::<Op>::arbitrary_take_rest(Unstructured::new(&bytes)).expect("decodes");
        assert_eq!(
            format!("{decoded:?}"),
            format!("{ops:?}"),
            "seed {name} decodes to what it was written from"
        );
        let path = dir.join(format!("seed-{name}"));
        std::fs::write(&path, &bytes).expect("write seed");
        eprintln!(
            "wrote {} ({} bytes, {} ops)",
            path.display(),
            bytes.len(),
            ops.len()
        );
    }
}
