//! The committed generated protocol code and descriptor set match the proto.
//!
//! Regenerate with:
//! `HIBERNATOR_REGENERATE_PROTO=1 cargo nextest run -p hibernator-streaming codegen`

use std::path::{Path, PathBuf};

const PROTO: &str = "hibernator/streaming/v1alpha1/execution.proto";
const REGENERATE: &str =
    "HIBERNATOR_REGENERATE_PROTO=1 cargo nextest run -p hibernator-streaming codegen";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn generate(out: &Path) {
    let root = workspace_root();
    let mut compiler = protox::Compiler::new([root.join("proto")]).unwrap();
    compiler.include_imports(true).include_source_info(true);
    compiler.open_file(PROTO).unwrap();
    let fds = compiler.file_descriptor_set();
    std::fs::write(
        out.join("descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )
    .unwrap();
    tonic_prost_build::configure()
        .out_dir(out)
        .build_client(true)
        .build_server(true)
        // The stubs belong to the crate's sides; the messages to both.
        .client_mod_attribute("hibernator.api.v1", r#"#[cfg(feature = "client")]"#)
        .server_mod_attribute("hibernator.api.v1", r#"#[cfg(feature = "server")]"#)
        // Structured fields stay ordered, as everywhere else in the crate
        // (no HashMap → BTreeMap conversion per log line).
        .btree_map(".")
        .emit_rerun_if_changed(false)
        .compile_fds(fds)
        .unwrap();
}

#[test]
fn generated_code_matches_the_proto() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gen");
    let tmp = tempfile::tempdir().unwrap();
    generate(tmp.path());
    if std::env::var_os("HIBERNATOR_REGENERATE_PROTO").is_some() {
        for name in ["hibernator.api.v1.rs", "descriptor.bin"] {
            std::fs::copy(tmp.path().join(name), committed.join(name)).unwrap();
        }
        return;
    }
    for name in ["hibernator.api.v1.rs", "descriptor.bin"] {
        let fresh = std::fs::read(tmp.path().join(name)).unwrap();
        let current = std::fs::read(committed.join(name)).unwrap_or_default();
        assert!(
            fresh == current,
            "src/gen/{name} is out of date with proto/{PROTO}; regenerate with `{REGENERATE}`"
        );
    }
}
