//! The `hibernator` binary. All wiring lives in the library.

fn main() -> std::process::ExitCode {
    hibernator_operator::cli::main()
}
