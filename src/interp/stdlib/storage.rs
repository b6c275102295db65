//! `LocalStorage.store/load/retrieve/delete/exists` against a directory the host configures
//! (`Vm::set_local_storage`, `stoffel_set_local_storage`); without one each is the current
//! StoffelVM's error "Local storage is not configured".
//!
//! The original keeps key bytes → encoded value in a redb database. Here each key is one
//! file in the directory, holding the encoded value ([`super::codec`], the original's
//! bytes). A key (a string's UTF-8 bytes, or a byte array) becomes a file name that cannot
//! leave the directory: lower-case letters, digits, `_`, `-` and (not first) `.` stay, every
//! other byte is `%XX` (upper-case hex), and `.stflval` is appended. So every key the
//! original accepts maps to its own file (even on a case-insensitive file system), and
//! `../x`, `/etc/passwd` or `a/b` are plain names inside the directory. A key whose name
//! would pass 200 bytes is an error. Writes go to a temporary file renamed over the value,
//! so a reader never sees half a value.

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use gc_arena::Mutation;

use super::bytes::read_bytes;
use super::codec::{self, CodecError};
use super::{Args, fail};
use crate::interp::{Runtime, RuntimeErrorKind};
use crate::value::Value;

/// The longest file name a key may become (file systems allow 255 bytes; the temporary
/// file's name adds to it).
const MAX_NAME: usize = 200;

/// The suffix of value files.
const SUFFIX: &str = ".stflval";

/// The key's bytes: a string's UTF-8, or a byte array's bytes.
fn key_bytes(a: &Args<'_, '_>, rt: &mut Runtime) -> Result<Vec<u8>, RuntimeErrorKind> {
    match a.get(0) {
        Value::String(s) => Ok(s.as_str().as_bytes().to_vec()),
        other => read_bytes(a, rt, other),
    }
}

/// The file name of `key` (see the module documentation).
fn file_name(key: &[u8]) -> String {
    let mut name = String::new();
    for (i, &b) in key.iter().enumerate() {
        let plain = b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || b == b'_'
            || b == b'-'
            || (b == b'.' && i > 0);
        if plain {
            name.push(char::from(b));
        } else {
            let _ = write!(name, "%{b:02X}");
        }
    }
    name.push_str(SUFFIX);
    name
}

/// The configured directory and the file of the key given as the first argument.
fn locate(
    a: &Args<'_, '_>,
    rt: &mut Runtime,
    operation: &str,
) -> Result<(PathBuf, PathBuf), RuntimeErrorKind> {
    let key = key_bytes(a, rt)?;
    let Some(dir) = rt.local_storage.clone() else {
        return Err(fail(a.b, "Local storage is not configured"));
    };
    let name = file_name(&key);
    let failed = |reason: String| fail(a.b, format!("Local storage {operation} failed: {reason}"));
    if name.len() > MAX_NAME {
        return Err(failed(format!(
            "the key is too long ({} bytes as a file name, at most {MAX_NAME})",
            name.len()
        )));
    }
    // The encoding leaves no separator and no leading dot; checked all the same, since a
    // key that named another place would be a path traversal.
    let mut parts = Path::new(&name).components();
    if !matches!(
        (parts.next(), parts.next()),
        (Some(Component::Normal(_)), None)
    ) {
        return Err(failed(
            "the key would leave the storage directory".to_owned(),
        ));
    }
    let file = dir.join(&name);
    Ok((dir, file))
}

/// The error of a failed operation.
fn failed(a: &Args<'_, '_>, operation: &str, e: CodecError) -> RuntimeErrorKind {
    match e {
        CodecError::Runtime(kind) => kind,
        CodecError::Message(reason) => {
            fail(a.b, format!("Local storage {operation} failed: {reason}"))
        }
    }
}

/// `LocalStorage.store(key, value)`: true.
pub(super) fn store<'gc>(
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(2, "2 arguments: key and value")?;
    let op = "store value";
    let (dir, file) = locate(&a, rt, op)?;
    let bytes = codec::encode(rt, a.get(1)).map_err(|e| failed(&a, op, e))?;
    write_atomically(&dir, &file, &bytes)
        .map_err(|e| failed(&a, op, CodecError::Message(e.to_string())))?;
    Ok(Value::Bool(true))
}

/// A name for a temporary file no other writer of this process uses.
fn temp_name(file: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    file.with_file_name(name)
}

fn write_atomically(dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temp = temp_name(file);
    let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// `LocalStorage.load(key)` and `LocalStorage.retrieve(key)`: the stored value, or Unit.
pub(super) fn load<'gc>(
    mc: &Mutation<'gc>,
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(1, "1 argument: key")?;
    let op = "load value";
    let (_, file) = locate(&a, rt, op)?;
    let bytes = match read_limited(&file) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(Value::Unit),
        Err(e) => return Err(failed(&a, op, CodecError::Message(e.to_string()))),
    };
    codec::decode(mc, rt, &bytes).map_err(|e| failed(&a, op, e))
}

/// The file's bytes (`None` if it does not exist); a file larger than any stored value is
/// read only as far as needed to tell (the codec then refuses it).
fn read_limited(file: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    f.take(16 * 1024 * 1024 + 1).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// `LocalStorage.delete(key)`: whether the key was there.
pub(super) fn delete<'gc>(
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(1, "1 argument: key")?;
    let op = "delete";
    let (_, file) = locate(&a, rt, op)?;
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(Value::Bool(true)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Value::Bool(false)),
        Err(e) => Err(failed(&a, op, CodecError::Message(e.to_string()))),
    }
}

/// `LocalStorage.exists(key)`.
pub(super) fn exists<'gc>(
    rt: &mut Runtime,
    a: Args<'_, 'gc>,
) -> Result<Value<'gc>, RuntimeErrorKind> {
    a.exact(1, "1 argument: key")?;
    let op = "exists";
    let (_, file) = locate(&a, rt, op)?;
    match std::fs::symlink_metadata(&file) {
        Ok(_) => Ok(Value::Bool(true)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Value::Bool(false)),
        Err(e) => Err(failed(&a, op, CodecError::Message(e.to_string()))),
    }
}
