//! Hash flooding (issue 18, item 2): string keys that all collide under the old unseeded
//! FNV-1a hash cost no more as object fields than random keys do.
//!
//! The old hash was 64-bit FNV-1a of the text, and the field map re-hashed only that value,
//! so keys with one FNV value shared one probe chain. FNV-1a's xor touches only the low byte
//! of the state, so `h ^ b == h + ((l ^ b) - l)` with `l` the state's low byte, and the low
//! byte after a block depends only on the low byte before it. A block's effect is therefore
//! `h * P^len + S(l, block)`: two blocks with equal `S` from one low byte leave *any* state
//! with that low byte equal. [`BLOCK_A`] and [`BLOCK_B`] are such a pair for the low byte of
//! the FNV offset basis, found offline: a short vector `d` of the lattice of integer vectors
//! with `sum d_i * P^(12 - i) == 0 (mod 2^64)` (LLL), realised byte by byte as the
//! differences of the two blocks' `(l ^ b) - l` terms, then one byte appended to both to
//! bring the low byte back to 0x25. So every sequence of K blocks, each A or B,
//! has the same FNV-1a hash: 2^K colliding keys. The test checks that for every key.

mod common;

use std::time::{Duration, Instant};

use common::vm_with;
use stoffel_vm::{Val, Vm};

/// Two blocks with one FNV-1a effect from a state whose low byte is that of the offset
/// basis (0x25), both ending with the low byte 0x25 again.
const BLOCK_A: &str = "zHFF+%U;4miFp";
const BLOCK_B: &str = "yMXD91Z1'm`Ep";

/// Blocks per key: 2^16 keys, half inserted, the other half missing.
const BLOCKS: u32 = 16;

/// Fields inserted.
const FIELDS: usize = 1 << 15;

/// Missing-key lookups timed.
const LOOKUPS: i64 = 2000;

/// The old string hash: 64-bit FNV-1a of the text, with the low bit set.
fn old_fnv(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in text.as_bytes() {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h | 1
}

/// Key `i`: block `j` is B when bit `j` of `i` is set.
fn colliding_key(i: u32) -> String {
    (0..BLOCKS)
        .map(|j| if i >> j & 1 == 1 { BLOCK_B } else { BLOCK_A })
        .collect()
}

/// A pseudo-random key of `len` letters and digits.
fn random_key(state: &mut u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            ALPHABET[(*state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// `fill(o, keys, n)` sets `o[keys[i]] = i` for i < n with `set_field`; `probe(o, k, n)`
/// reads `o[k]` n times with `get_field`.
const PROGRAM: &str = "
.function fill(o, keys, n) registers 8
    MOV r6, r0          ; r6 = o (calls return in r0)
    LDI r3, 0
    LDI r4, 1
    CMP r3, r2
    JMPLT body
    RET r3
body:
    PUSHARG r1
    PUSHARG r3
    CALL get_field
    MOV r5, r0          ; r5 = keys[i]
    PUSHARG r6
    PUSHARG r5
    PUSHARG r3
    CALL set_field
    ADD r3, r3, r4
    CMP r3, r2
    JMPLT body
    RET r3

.function probe(o, k, n) registers 8
    MOV r7, r0          ; r7 = o
    LDI r3, 0
    LDI r4, 1
    LDI r5, 0
    CMP r3, r2
    JMPLT body
    RET r5
body:
    PUSHARG r7
    PUSHARG r1
    CALL get_field
    MOV r6, r0
    ADD r3, r3, r4
    CMP r3, r2
    JMPLT body
    RET r6
";

/// Times, for one VM: filling an object with the first [`FIELDS`] of `keys` from VM code,
/// and [`LOOKUPS`] lookups of `missing`. Checks the fields landed.
fn measure(keys: &[String], missing: &str) -> (Duration, Duration) {
    let (mut vm, _) = vm_with(PROGRAM);
    let array = vm.create_array().unwrap();
    for key in &keys[..FIELDS] {
        vm.array_push(&array, &Val::from(key.as_str())).unwrap();
    }
    let object = vm.create_object().unwrap();

    let start = Instant::now();
    let n = vm
        .execute(
            "fill",
            &[object.clone(), array.clone(), Val::I64(FIELDS as i64)],
        )
        .unwrap();
    let fill = start.elapsed();
    assert_eq!(n, Val::I64(FIELDS as i64));

    let start = Instant::now();
    let found = vm
        .execute(
            "probe",
            &[object.clone(), Val::from(missing), Val::I64(LOOKUPS)],
        )
        .unwrap();
    let probe = start.elapsed();
    assert_eq!(found, Val::Unit);

    check_fields(&mut vm, &object, keys);
    (fill, probe)
}

/// Every inserted key reads back its index (a copy of the text, not the same string).
fn check_fields(vm: &mut Vm, object: &Val, keys: &[String]) {
    for (i, key) in keys[..FIELDS].iter().enumerate().step_by(97) {
        assert_eq!(
            vm.get_field(object, &Val::from(key.as_str())).unwrap(),
            Val::I64(i as i64)
        );
    }
}

/// The fastest of three runs (the machine may be busy).
fn best_of_three(keys: &[String], missing: &str) -> (Duration, Duration) {
    let runs: Vec<_> = (0..3).map(|_| measure(keys, missing)).collect();
    (
        runs.iter().map(|r| r.0).min().unwrap(),
        runs.iter().map(|r| r.1).min().unwrap(),
    )
}

#[test]
fn the_colliding_keys_collide_under_the_old_hash() {
    let hash = old_fnv(&colliding_key(0));
    let mut distinct = std::collections::HashSet::new();
    for i in 0..1u32 << BLOCKS {
        let key = colliding_key(i);
        assert_eq!(old_fnv(&key), hash, "key {i} does not collide");
        assert!(distinct.insert(key), "key {i} repeats");
    }
}

#[test]
fn fields_with_old_hash_collisions_cost_about_what_random_fields_cost() {
    let colliding: Vec<String> = (0..1u32 << BLOCKS).map(colliding_key).collect();
    assert_eq!(old_fnv(&colliding[0]), old_fnv(&colliding[FIELDS]));
    let len = colliding[0].len();
    let mut state = 0x9E37_79B9_7F4A_7C15;
    let random: Vec<String> = (0..=FIELDS).map(|_| random_key(&mut state, len)).collect();

    // The missing key collides with every inserted one under the old hash.
    let (fill_c, probe_c) = best_of_three(&colliding, &colliding[FIELDS]);
    let (fill_r, probe_r) = best_of_three(&random, &random[FIELDS]);
    eprintln!(
        "{FIELDS} fields: colliding {fill_c:?}, random {fill_r:?}; \
         {LOOKUPS} missing-key lookups: colliding {probe_c:?}, random {probe_r:?}"
    );
    let slack = Duration::from_millis(50);
    assert!(
        fill_c < fill_r * 5 + slack,
        "filling with colliding keys took {fill_c:?}, with random keys {fill_r:?}"
    );
    assert!(
        probe_c < probe_r * 5 + slack,
        "missing-key lookups among colliding keys took {probe_c:?}, among random {probe_r:?}"
    );
}
