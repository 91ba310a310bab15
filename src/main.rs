use std::process::ExitCode;

fn main() -> ExitCode {
    // A session's init must run before anything starts a thread: it unshares a
    // user namespace, which the kernel refuses to multi-threaded callers.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(sessionvisor::sandbox::INIT_ARG) {
        sessionvisor::sandbox::init::main(&args[2..]);
    }
    sessionvisor::cli::main()
}
