//! Empty on purpose: a build script makes cargo build the `[build-dependencies]`
//! above, which is how their host-side features get pinned (see Cargo.toml).

fn main() {}
