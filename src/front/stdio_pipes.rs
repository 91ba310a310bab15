//! stdin and stdout for `run`. tokio's own stdin and stdout hand every read and
//! write to a blocking thread, which costs a thread hand-off per line. When they
//! are pipes (the usual case: `producer | sessionvisor run | consumer`), they
//! are driven by epoll directly instead; files and terminals keep tokio's way.

use std::os::fd::{AsFd, OwnedFd};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

/// The supervisor's stdin as an async reader.
pub fn input() -> Box<dyn AsyncRead + Unpin + Send> {
    match fifo_copy(std::io::stdin().as_fd()).and_then(|fd| pipe::Receiver::from_owned_fd(fd).ok())
    {
        Some(receiver) => Box::new(receiver),
        None => Box::new(tokio::io::stdin()),
    }
}

/// The supervisor's stdout as an async writer.
pub fn output() -> Box<dyn AsyncWrite + Unpin + Send> {
    match fifo_copy(std::io::stdout().as_fd()).and_then(|fd| pipe::Sender::from_owned_fd(fd).ok()) {
        Some(sender) => Box::new(sender),
        None => Box::new(tokio::io::stdout()),
    }
}

/// A duplicate of `fd` when it is a pipe, so the standard descriptor itself is
/// never closed.
fn fifo_copy(fd: std::os::fd::BorrowedFd<'_>) -> Option<OwnedFd> {
    use std::os::fd::AsRawFd;
    let stat = nix::sys::stat::fstat(fd.as_raw_fd()).ok()?;
    let is_fifo = stat.st_mode & libc::S_IFMT == libc::S_IFIFO;
    is_fifo.then(|| fd.try_clone_to_owned().ok()).flatten()
}
