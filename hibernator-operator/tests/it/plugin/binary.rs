//! The real binary under the name `kubectl-hibernator`, and the
//! `hibernator kubectl` alias.

use clap::Parser;

use super::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_invoked_as_kubectl_hibernator_runs_the_plugin() {
    let env = Env::start("plugin-bin").await;
    env.create_plan("p").await;
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("kubectl-hibernator");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_hibernator"), &link).unwrap();
    let args: Vec<String> = [
        "list",
        "-o",
        "json",
        "--kubeconfig",
        &env.kubeconfig,
        "-n",
        env.ns(),
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&link)
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rows[0]["name"], "p");

    // Plan not found: exit 1 with the name and namespace on stderr.
    let link = dir.path().join("kubectl-hibernator");
    let kubeconfig = env.kubeconfig.clone();
    let ns = env.ns().to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&link)
            .args(["describe", "ghost", "--kubeconfig", &kubeconfig, "-n", &ns])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"ghost\"") && stderr.contains(env.ns()),
        "{stderr}"
    );
    env.tc.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hibernator_kubectl_alias_reaches_the_same_commands() {
    let env = Env::start("plugin-alias").await;
    env.create_plan("p").await;
    let kubeconfig = env.kubeconfig.clone();
    let ns = env.ns().to_string();
    let (code, out) = tokio::task::spawn_blocking(move || {
        hibernator_operator::cli::run_capture([
            "hibernator",
            "kubectl",
            "list",
            "-o",
            "json",
            "--kubeconfig",
            &kubeconfig,
            "-n",
            &ns,
        ])
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows[0]["name"], "p");
    env.tc.cleanup().await.unwrap();
}

#[test]
fn help_lists_every_command() {
    let err =
        hibernator_operator::plugin::PluginCli::try_parse_from(["kubectl-hibernator", "--help"])
            .unwrap_err();
    let help = err.to_string();
    for cmd in [
        "list", "describe", "preview", "suspend", "resume", "override", "retry", "restore", "logs",
    ] {
        assert!(help.contains(cmd), "{cmd}: {help}");
    }
}
