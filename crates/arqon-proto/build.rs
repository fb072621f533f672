//! Compiles `proto/arqon/v1/*.proto` with protox (no `protoc`) and generates the Rust types with prost-build.

use std::path::{Path, PathBuf};

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not baked in with `env!`: a build-script binary cargo reuses for another
    // checkout of the same crate must still look at that checkout's protos.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let package_dir = root.join("arqon/v1");
    println!("cargo:rerun-if-changed={}", package_dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&package_dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "proto"));
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|file| file.strip_prefix(&root).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;

    let fds = protox::compile(&relative, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("arqon_v1_descriptor.bin"), fds.encode_to_vec())?;

    prost_build::Config::new()
        // Payloads are `Bytes`, so decoding a frame held in `Bytes` does not copy them.
        .bytes(["."])
        // Ordered maps make the encoding deterministic, so golden vectors are byte-exact.
        .btree_map(["."])
        // These carry tokens or payloads; their `Debug` is written by hand and redacts them.
        .skip_debug([
            ".arqon.v1.Refresh",
            ".arqon.v1.Publish",
            ".arqon.v1.Message",
        ])
        .compile_fds(fds)?;
    Ok(())
}
