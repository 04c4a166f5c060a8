#!/usr/bin/env bash
# Usage: fuzz/run.sh SECONDS
# Runs every cargo-fuzz target for SECONDS each. Stable Rust only: cargo-fuzz needs
# nightly flags (-Zsanitizer), which RUSTC_BOOTSTRAP=1 unlocks on a stable toolchain.
# cargo-fuzz is installed under <repo>/target/tools if missing; nothing is installed elsewhere.
set -euo pipefail

seconds="${1:?usage: $0 SECONDS}"
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$fuzz_dir/.." && pwd)"
tools="$repo/target/tools"
cargo_fuzz="$tools/bin/cargo-fuzz"

if [[ ! -x "$cargo_fuzz" ]]; then
    cargo install cargo-fuzz --locked --root "$tools"
fi
export PATH="$tools/bin:$PATH"
export RUSTC_BOOTSTRAP=1

cd "$fuzz_dir"
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    if [[ -d "seeds/$target" ]]; then
        cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
    fi
    echo "== fuzzing $target for ${seconds}s"
    cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds"
done
