//! Generates the Rust ABI definitions from `uapi/linux/kdbus.h` with the
//! bindgen CLI (the same tool and flags the module's Kbuild uses), so the ABI
//! is written exactly once, in C.
use std::{env, path::PathBuf, process::Command};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let uapi = manifest.join("..");
    let header = uapi.join("linux/kdbus.h");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("kdbus_uapi.rs");
    println!("cargo:rerun-if-changed={}", header.display());
    println!(
        "cargo:rerun-if-changed={}",
        uapi.join("bindgen.flags").display()
    );
    let flags = std::fs::read_to_string(uapi.join("bindgen.flags")).expect("bindgen.flags");
    let bindgen = env::var("BINDGEN").unwrap_or_else(|_| "bindgen".into());
    let status = Command::new(&bindgen)
        .arg(&header)
        .args(
            flags
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#')),
        )
        .arg("--ctypes-prefix")
        .arg("::core::ffi")
        .arg("-o")
        .arg(&out)
        .arg("--")
        .arg(format!("-I{}", uapi.display()))
        .status()
        .unwrap_or_else(|e| panic!("running {bindgen}: {e} (run tools/testing/setup-host.sh)"));
    assert!(status.success(), "bindgen failed on {}", header.display());
}
