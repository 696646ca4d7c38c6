//! Protobuf code generation without `protoc`: protox compiles the `.proto` files in
//! pure Rust, tonic-prost-build generates the messages and service code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/phalanx/attestation/v1/attestation.proto",
        "proto/phalanx/keyvault/v1/keyvault.proto",
        "proto/phalanx/chain/v1/chain.proto",
    ];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    // One encoded descriptor set per package, for gRPC server reflection: a server
    // registers only what it serves.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    for (proto, name) in protos.iter().zip(["attestation", "keyvault", "chain"]) {
        let one = protox::compile([proto], ["proto"])?;
        std::fs::write(
            out.join(format!("{name}_descriptor.bin")),
            prost::Message::encode_to_vec(&one),
        )?;
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
