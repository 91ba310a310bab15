//! Landlock as a second layer. With a shared network namespace, abstract unix
//! sockets (`\0name`) cross every other namespace; Landlock ABI 6 scopes them,
//! and signals, to the session's own domain.

use landlock::{Ruleset, RulesetAttr, RulesetStatus, Scope};

use super::init::{InitError, Step};

/// The Landlock ABI version the kernel offers, or `None` when Landlock is absent
/// or disabled.
pub fn kernel_abi() -> Option<i64> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a NULL attr and size 0 and the VERSION flag, the syscall only
    // returns the ABI number; it reads and writes no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (rc > 0).then_some(rc)
}

/// The first ABI with `LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET` and `LANDLOCK_SCOPE_SIGNAL`.
pub const SCOPES_ABI: i64 = 6;

/// Confines the caller and its future children to their own Landlock domain for
/// abstract unix sockets and signals. Needs `no_new_privs` first.
pub fn scope_to_session() -> Result<bool, InitError> {
    let status = Ruleset::default()
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .and_then(|ruleset| ruleset.create())
        .and_then(|ruleset| ruleset.restrict_self())
        .map_err(|e| InitError::invalid(Step::Landlock, &e.to_string()))?;
    Ok(status.ruleset == RulesetStatus::FullyEnforced)
}
