//! Compiles `proto/` and `proto-ext/` with protox (pure Rust, no system `protoc`) and generates prost
//! messages plus tonic client/server stubs, depending on the enabled features.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    // In the workspace the protos live at the repository root; a packaged crate carries a copy.
    // `proto-ext/` holds API files that the shared wire check's official set lacks (checked by
    // scripts/wire-check-ext.sh instead); both roots compile as one.
    let find = |dir: &str| {
        [manifest.join(dir), manifest.join("../..").join(dir)]
            .into_iter()
            .find(|p| p.is_dir())
            .ok_or_else(|| format!("{dir}/ directory not found"))
    };
    let roots = [find("proto")?, find("proto-ext")?];
    let mut files = Vec::new();
    for root in &roots {
        println!("cargo:rerun-if-changed={}", root.display());
        collect(root, root, &mut files)?;
    }
    files.sort();
    let fds = protox::compile(&files, &roots)?;

    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("file_descriptor_set.bin"), prost::Message::encode_to_vec(&fds))?;
    fs::write(out.join("method_paths.rs"), method_paths(&fds))?;

    tonic_prost_build::configure()
        .build_client(env::var_os("CARGO_FEATURE_CLIENT").is_some())
        .build_server(env::var_os("CARGO_FEATURE_SERVER").is_some())
        .build_transport(env::var_os("CARGO_FEATURE_CLIENT").is_some())
        // Unimplemented methods answer UNIMPLEMENTED, so a service can grow method by method.
        .generate_default_stubs(true)
        .include_file("_includes.rs")
        .emit_rerun_if_changed(false)
        .compile_fds_with_config(fds, {
            let mut config = tonic_prost_build::Config::new();
            // `prost::Name` impls let us pack and unpack `google.protobuf.Any` by type URL.
            config.enable_type_names();
            config.type_name_domain(["."], "type.googleapis.com");
            config
        })?;
    Ok(())
}

/// One `pub const SERVICE_METHOD: &str = "/package.Service/Method";` per RPC, so callers and
/// the emulator name methods by constant instead of by hand-typed strings.
fn method_paths(fds: &prost_types::FileDescriptorSet) -> String {
    let mut out = String::new();
    for file in &fds.file {
        for service in &file.service {
            for method in &service.method {
                let (package, service, method) = (file.package(), service.name(), method.name());
                out.push_str(&format!(
                    "/// `{package}.{service}/{method}`.\npub const {}_{}: &str = \"/{package}.{service}/{method}\";\n",
                    screaming(service),
                    screaming(method)
                ));
            }
        }
    }
    out
}

fn screaming(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn collect(root: &PathBuf, dir: &PathBuf, out: &mut Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path.strip_prefix(root)?.to_string_lossy().into_owned());
        }
    }
    Ok(())
}
