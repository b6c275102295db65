//! Calls of MPC builtins: the current StoffelVM binds `Share.*`, `Mpc.*`, `ClientStore.*`,
//! `Rbc.*`, `Avss.*`, `MpcOutput.*`, `Field.*` and most of `Crypto.*` to its MPC engine,
//! which stoffel-vm does not have. Calling one (unless a host defined the name) says so,
//! instead of "function not found".

use crate::interp::RuntimeErrorKind;

/// The namespaces of the original's MPC builtins.
const MPC_NAMESPACES: [&str; 8] = [
    "Share.",
    "Mpc.",
    "ClientStore.",
    "Rbc.",
    "Avss.",
    "MpcOutput.",
    "Field.",
    // The hashes are builtins here; the curve and field operations are not.
    "Crypto.",
];

/// Whether `name` is in the namespace of an MPC builtin.
pub(crate) fn is_mpc_name(name: &str) -> bool {
    MPC_NAMESPACES.iter().any(|ns| name.starts_with(ns))
}

/// The error of a call of `name`, which nothing defines: an MPC builtin's name is refused as
/// such, any other is "function not found".
#[cold]
pub(crate) fn unbound_call(name: &str) -> RuntimeErrorKind {
    if is_mpc_name(name) {
        RuntimeErrorKind::NeedsMpc(name.to_string())
    } else {
        RuntimeErrorKind::FunctionNotFound(name.to_string())
    }
}
