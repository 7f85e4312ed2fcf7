//! The `toolhost` binary: everything happens in [`toolhost::cli::run`].

fn main() -> std::process::ExitCode {
    toolhost::cli::run()
}
