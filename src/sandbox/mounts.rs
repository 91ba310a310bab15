//! The session's filesystem view: the whole host read-only, recursively, with
//! only the session's private directories writable, a fresh `/proc` for its PID
//! namespace, and the supervisor's state directory covered so no path reaches it.
//!
//! Runs as PID 1 of the session's namespaces (a fresh `/proc` must be mounted
//! from inside the PID namespace it shows).

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::{Component, Path, PathBuf};

use super::init::{InitError, Step};
use super::spec::{SCRATCH_DIRS, STORAGE_MOUNT};
use super::SandboxSpec;

const NONE: Option<&str> = None;

/// Builds the new root under `spec.new_root` and pivots into it.
pub fn build_root(spec: &SandboxSpec) -> Result<(), InitError> {
    let root = &spec.new_root;
    // Nothing we mount may propagate back to the host or to other sessions.
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .map_err(|e| InitError::mount(Step::MakePrivate, "/", e))?;
    mount(
        Some("/"),
        root,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(|e| InitError::mount(Step::BindHostRoot, root, e))?;

    for hidden in &spec.hidden {
        let target = inside(root, hidden);
        if target.is_dir() {
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=4k,mode=0555,nr_inodes=1"),
            )
            .map_err(|e| InitError::mount(Step::HideStateDir, &target, e))?;
        }
    }

    make_read_only_recursively(root)?;

    mount_scratch(spec)?;
    replace_run(root)?;
    if let Some(storage) = &spec.storage {
        mount_storage(root, storage)?;
    }

    let proc_dir = root.join("proc");
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        NONE,
    )
    .map_err(|e| InitError::mount(Step::MountProc, &proc_dir, e))?;

    pivot_into(root)
}

/// One tmpfs of `--tmp-size` bytes holds `/tmp`, `/var/tmp` and `/dev/shm`
/// together, so the limit bounds all three, and the kernel frees it all when
/// the session's mount namespace goes away.
fn mount_scratch(spec: &SandboxSpec) -> Result<(), InitError> {
    let scratch = &spec.scratch;
    let options = format!("size={},mode=0755", scratch.size_bytes);
    mount(
        Some("tmpfs"),
        &scratch.mount_point,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(|e| InitError::mount(Step::Scratch, &scratch.mount_point, e))?;
    for (name, inner) in SCRATCH_DIRS {
        let source = scratch.mount_point.join(name);
        make_world_writable_dir(&source)?;
        let target = inside(&spec.new_root, Path::new(inner));
        if !target.is_dir() {
            // The host lacks this directory (say /var/tmp) and the read-only host
            // cannot grow one: skipping it hides nothing and exposes nothing.
            continue;
        }
        mount(Some(&source), &target, NONE, MsFlags::MS_BIND, NONE)
            .map_err(|e| InitError::mount(Step::Scratch, &target, e))?;
    }
    Ok(())
}

fn make_world_writable_dir(path: &Path) -> Result<(), InitError> {
    use std::os::unix::fs::PermissionsExt;
    let error = |e| InitError::io(Step::Scratch, &path.display().to_string(), e);
    std::fs::create_dir(path).map_err(error)?;
    // Sticky and world-writable, as /tmp is everywhere.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o1777)).map_err(error)
}

/// The host's `/run` holds its services' unix sockets (the user's systemd and
/// D-Bus in `/run/user/UID`, the system bus, container engines). A read-only
/// mount does not stop `connect(2)`, and through the user's systemd a session
/// could start processes outside its sandbox. Sessions get an empty `/run`
/// instead, with `/etc/resolv.conf` still resolvable when it points into it
/// (systemd-resolved).
fn replace_run(root: &Path) -> Result<(), InitError> {
    let run = root.join("run");
    if !run.is_dir() {
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &run,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=64k,mode=0755"),
    )
    .map_err(|e| InitError::mount(Step::Run, &run, e))?;
    // Resolved in the host's view: the new root is not ours yet.
    if let Ok(resolv) = std::fs::canonicalize("/etc/resolv.conf") {
        if resolv.starts_with("/run") && resolv.is_file() {
            let target = inside(root, &resolv);
            let error = |e| InitError::io(Step::Run, &target.display().to_string(), e);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(error)?;
            }
            std::fs::write(&target, b"").map_err(error)?;
            mount(Some(&resolv), &target, NONE, MsFlags::MS_BIND, NONE)
                .map_err(|e| InitError::mount(Step::Run, &target, e))?;
        }
    }
    mount(
        NONE,
        &run,
        NONE,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        NONE,
    )
    .map_err(|e| InitError::mount(Step::Run, &run, e))
}

/// `/mnt` of the read-only host cannot hold a new mount point, so a small
/// tmpfs replaces it and carries `/mnt/workspace`.
fn mount_storage(root: &Path, storage: &Path) -> Result<(), InitError> {
    let mnt = root.join("mnt");
    mount(
        Some("tmpfs"),
        &mnt,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=64k,mode=0755"),
    )
    .map_err(|e| InitError::mount(Step::Storage, &mnt, e))?;
    let target = inside(root, Path::new(STORAGE_MOUNT));
    std::fs::create_dir(&target)
        .map_err(|e| InitError::io(Step::Storage, &target.display().to_string(), e))?;
    mount(Some(storage), &target, NONE, MsFlags::MS_BIND, NONE)
        .map_err(|e| InitError::mount(Step::Storage, &target, e))?;
    Ok(())
}

/// Maps an absolute host path to the same path under the new root.
fn inside(root: &Path, path: &Path) -> PathBuf {
    let relative: PathBuf = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    root.join(relative)
}

/// `mount_setattr(2)` with `AT_RECURSIVE` (Linux 5.12) flips every mount of the
/// tree to read-only in one call, submounts included, which a plain
/// `MS_REMOUNT|MS_RDONLY` cannot do.
fn make_read_only_recursively(root: &Path) -> Result<(), InitError> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let path = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
        .map_err(|_| InitError::invalid(Step::ReadOnlyRoot, "path contains NUL"))?;
    // SAFETY: `path` and `attr` outlive the call; the size argument matches the
    // struct the kernel reads (MOUNT_ATTR_SIZE_VER0 = 32).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc != 0 {
        return Err(InitError::mount(
            Step::ReadOnlyRoot,
            root,
            nix::errno::Errno::last(),
        ));
    }
    Ok(())
}

/// Makes `root` the process's `/` and detaches the old root entirely, so the
/// host's view (and with it every other session's directory) is gone. Uses the
/// `pivot_root(".", ".")` idiom (as runc does): no put-old directory is needed in
/// a read-only tree.
fn pivot_into(root: &Path) -> Result<(), InitError> {
    nix::unistd::chdir(root).map_err(|e| InitError::sys(Step::PivotRoot, e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| InitError::sys(Step::PivotRoot, e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| InitError::sys(Step::PivotRoot, e))?;
    nix::unistd::chdir("/").map_err(|e| InitError::sys(Step::PivotRoot, e))?;
    Ok(())
}
