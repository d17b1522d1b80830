//! Links the `dist` binary (`cargo build --profile dist`: the container
//! image, the comparison scripts) with the functions a WAL push or restore
//! runs placed first, in the order they run (`build/symbol-order.txt`,
//! written by `scripts/symbol-order.sh`).
//!
//! Why: a `wal-push` or `wal-restore` is a process per WAL segment, and most
//! of its resident memory is its own code. The kernel maps the binary 64 KiB
//! around every page it faults in, so the ~2 MB of functions a push runs,
//! scattered over 9.7 MB of `.text`, used to map 6.8 MiB of it; packed
//! together they map about 2.5 MiB. Symbols the file names that a build does
//! not have are skipped by the linker: the order only makes the binary smaller
//! in memory, never different in behaviour. Rust symbol names carry a hash of
//! the toolchain, Cargo.lock and the build's target settings, so the file fits
//! the host's `cargo build --profile dist` it was written from; the image's
//! static `--target` build keeps only the C functions (AWS-LC) in order until
//! the file is rewritten from that build.
//!
//! Only for the `dist` profile (the profile directory in `OUT_DIR`), only on
//! x86_64 Linux, where rustc links with LLD (`--symbol-ordering-file` is an
//! LLD option); `BARNACLE_SYMBOL_ORDER=0` turns it off, with the packed
//! relocations below.

use std::env;
use std::ffi::OsStr;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build/symbol-order.txt");
    println!("cargo:rerun-if-env-changed=BARNACLE_SYMBOL_ORDER");
    let out_dir = env::var("OUT_DIR").unwrap_or_default();
    // OUT_DIR is target/[TRIPLE/]PROFILE/build/PACKAGE-HASH/out.
    let dist = Path::new(&out_dir)
        .ancestors()
        .nth(3)
        .and_then(Path::file_name)
        == Some(OsStr::new("dist"));
    let linux_x86_64 = env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let wanted = env::var("BARNACLE_SYMBOL_ORDER").map_or(true, |v| v != "0");
    if dist && linux_x86_64 && wanted {
        let order = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
            .join("build/symbol-order.txt");
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
        // Relative relocations packed (DT_RELR, glibc 2.36+): the dynamic
        // loader reads a few KiB at start instead of the whole 370 KiB
        // `.rela.dyn`. Not for the static image, whose start-up code applies
        // its own relocations.
        let static_crt = env::var("CARGO_CFG_TARGET_FEATURE")
            .is_ok_and(|features| features.split(',').any(|f| f == "crt-static"));
        if !static_crt {
            println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        }
    }
}
