//! The `hibernator` binary. All wiring lives in the library.

#[global_allocator]
static ALLOCATOR: hibernator_operator::Allocator = hibernator_operator::Allocator;

fn main() -> std::process::ExitCode {
    // Invoked as `kubectl-hibernator` (a symlink or copy on PATH): the kubectl plugin.
    if std::env::args_os()
        .next()
        .is_some_and(|argv0| hibernator_operator::plugin::invoked_as_plugin(&argv0))
    {
        return hibernator_operator::plugin::main();
    }
    hibernator_operator::cli::main()
}
