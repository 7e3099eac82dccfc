#!/usr/bin/env bash
# Builds the five detectors as WebAssembly components and copies each to
# plugins/<name>.wasm, where the daemon loads them.
#
# Usage: scripts/build-plugins.sh [--fixtures]
#
#   --fixtures  also build the test fixture workspace tests/fixtures/ and
#               copy each fixture to tests/fixtures/<crate directory>.wasm
#
# Cargo writes to $CARGO_TARGET_DIR when it is set, else to <repo>/target.
# Runs from any directory.
set -euo pipefail

readonly TARGET=wasm32-wasip2
readonly PLUGINS=(council-disagreement dlq-depth jr-failure-rate stale-kanban work-state)

# A component starts with the wasm magic followed by version 0x0d and layer
# 1; a core module has version 1 and layer 0 (`01 00 00 00`).
readonly COMPONENT_HEADER=0061736d0d000100
readonly CORE_MODULE_HEADER=0061736d01000000

usage() {
    echo "usage: $0 [--fixtures]" >&2
    exit 2
}

fail() {
    echo "build-plugins: $*" >&2
    exit 1
}

build_fixtures=false
for argument in "$@"; do
    case "$argument" in
        --fixtures) build_fixtures=true ;;
        -h | --help)
            sed -n '2,11s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        *) usage ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Resolve a relative CARGO_TARGET_DIR against the caller's directory once, so
# the workspace build and the fixture build share the same directory.
target_dir=${CARGO_TARGET_DIR:-$repo/target}
case "$target_dir" in
    /*) ;;
    *) target_dir=$PWD/$target_dir ;;
esac
export CARGO_TARGET_DIR=$target_dir

ensure_target() {
    command -v cargo >/dev/null || fail "cargo not found: install Rust (rustup, or your distribution's rust and cargo packages)"

    if command -v rustup >/dev/null; then
        if ! rustup target list --installed | grep -qx "$TARGET"; then
            echo "Installing the $TARGET target with rustup"
            rustup target add "$TARGET"
        fi
        return
    fi

    # Without rustup the target's standard library must already be in the
    # sysroot, as a distribution package would put it.
    local sysroot
    sysroot=$(rustc --print sysroot)
    if [[ ! -d "$sysroot/lib/rustlib/$TARGET" ]]; then
        fail "the $TARGET target is not installed and rustup is missing: install rustup and run 'rustup target add $TARGET', or install your distribution's Rust standard library for $TARGET"
    fi
}

# Fails unless $1 is a component. rustc links a cdylib for wasm32-wasip2 as
# a component, but a wrong crate type or target gives a core module, which
# the host rejects.
check_component() {
    local file=$1 header
    header=$(od -An -tx1 -N8 "$file" | tr -d ' \n')
    case "$header" in
        "$COMPONENT_HEADER") ;;
        "$CORE_MODULE_HEADER")
            fail "$file is a core WebAssembly module, not a component: build it as a cdylib for $TARGET, which rustc links as a component"
            ;;
        *) fail "$file is not a WebAssembly component (header $header, expected $COMPONENT_HEADER)" ;;
    esac
}

# Copies a built component to its destination and prints its size.
install_component() {
    local source=$1 destination=$2
    [[ -f "$source" ]] || fail "cargo did not produce $source"
    check_component "$source"
    cp "$source" "$destination"
    printf '%-44s %9d bytes\n' "${destination#"$repo"/}" "$(wc -c <"$destination")"
}

build_plugins() {
    local packages=() name
    for name in "${PLUGINS[@]}"; do
        packages+=(-p "$name")
    done

    cargo build --manifest-path "$repo/Cargo.toml" --profile plugin --target "$TARGET" "${packages[@]}"

    for name in "${PLUGINS[@]}"; do
        install_component "$target_dir/$TARGET/plugin/${name//-/_}.wasm" "$repo/plugins/$name.wasm"
    done
}

# Builds the fixture workspace in one cargo call and copies each member's
# component. Each crate's directory name is its package name, so its
# library is <directory with '-' as '_'>.wasm.
build_fixtures() {
    local fixtures=$repo/tests/fixtures
    local manifest=$fixtures/Cargo.toml
    [[ -f "$manifest" ]] || fail "$manifest is missing"

    # A crate directory left out of the workspace's `members` would be
    # skipped without a word, so every one must appear in the metadata.
    local metadata crate_manifest directories=()
    metadata=$(cargo metadata --manifest-path "$manifest" --format-version 1 --no-deps)
    for crate_manifest in "$fixtures"/*/Cargo.toml; do
        [[ -f "$crate_manifest" ]] || continue
        if [[ $metadata != *"\"manifest_path\":\"$crate_manifest\""* ]]; then
            fail "$crate_manifest is not a member of the fixture workspace: add its directory to \`members\` in $manifest"
        fi
        directories+=("$(basename "$(dirname "$crate_manifest")")")
    done
    [[ ${#directories[@]} -gt 0 ]] || fail "no fixture crates under $fixtures"

    cargo build --manifest-path "$manifest" --workspace --profile plugin --target "$TARGET"

    local name
    for name in "${directories[@]}"; do
        [[ -f "$target_dir/$TARGET/plugin/${name//-/_}.wasm" ]] ||
            fail "fixture $name produced no ${name//-/_}.wasm: its package name must equal its directory name and its crate-type must be cdylib"
        install_component "$target_dir/$TARGET/plugin/${name//-/_}.wasm" "$fixtures/$name.wasm"
    done
}

ensure_target
build_plugins
if [[ $build_fixtures == true ]]; then
    build_fixtures
fi
