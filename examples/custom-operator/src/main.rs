//! The `hibernator` binary with one more executor: every role (controller,
//! runner, webhook, CLI, kubectl plugin) knows `argocd-autosync`.

#[global_allocator]
static ALLOCATOR: hibernator_operator::Allocator = hibernator_operator::Allocator;

fn main() -> std::process::ExitCode {
    // ExecutorSet::new().kubernetes(ArgoAutoSync::new): the built-ins plus ours.
    let executors = hibernator_example_custom_operator::executors();
    hibernator_operator::App::new(executors).main()
}
