//! The `hibernator` binary: the built-in executors. All wiring lives in the
//! library ([`hibernator_operator::App`]).

#[global_allocator]
static ALLOCATOR: hibernator_operator::Allocator = hibernator_operator::Allocator;

fn main() -> std::process::ExitCode {
    hibernator_operator::App::new(hibernator_executors::ExecutorSet::new()).main()
}
