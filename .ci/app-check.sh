#!/usr/bin/env bash
# An application outside the workspace, made as a user makes one: `cargo new`, `cargo add`, build,
# run. Twice: once from the packaged crates, served as a registry would serve them (`cargo package`,
# unpacked into a local directory source that also holds every other dependency, from `cargo
# vendor`, and replaces crates.io for that app), once from a git dependency on this repository's
# HEAD. Both run .ci/app/main.rs on a synthetic Qwen3-Next and must print the same transcript.
#
#   bash .ci/app-check.sh                 # both builds, run and compared
#   bash .ci/app-check.sh --vulkan        # the packaged build with `llamacpp/vulkan`, compiled only
#                                         # (LLAMACPP_SYS_CMAKE_ARGS must point at Vulkan headers)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
vulkan=false
[ "${1:-}" = --vulkan ] && vulkan=true

crates=(llamacpp-patchkit llamacpp-sys llamacpp-ggml llamacpp llamacpp-synth)
# Outside this workspace (cargo would take an app below it for a member), but its build cache
# stays in the workspace's target/ so that reruns are cheap.
work=$(mktemp -d "${TMPDIR:-/tmp}/llamacpp-app-XXXXXX")
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR=$root/target/app-check
$vulkan && export CARGO_TARGET_DIR=$root/target/app-check-vulkan

echo "-- cargo package: ${crates[*]}"
pkg_args=()
for c in "${crates[@]}"; do pkg_args+=(-p "$c"); done
cargo package --no-verify --allow-dirty --quiet "${pkg_args[@]}" --target-dir "$work/package"
# The local registry: every third-party crate the workspace uses, plus ours as packaged.
reg=$work/registry
cargo vendor --quiet --versioned-dirs "$reg" >/dev/null
for f in "$work"/package/package/*.crate; do
  tar -xzf "$f" -C "$reg"
  d=$reg/$(basename "$f" .crate)
  printf '{"files":{},"package":"%s"}' "$(sha256sum "$f" | cut -d' ' -f1)" >"$d/.cargo-checksum.json"
  # A package must build from its own files: no path may point back into the repository.
  if grep -n "$root" "$d/Cargo.toml"; then
    echo "$(basename "$d"): the packaged manifest points into the repository" >&2; exit 1
  fi
  echo "packaged $(basename "$d"): $(tar -tzf "$f" | wc -l) files"
done

new_app() { # NAME: a fresh binary crate with main.rs in place
  (cd "$work" && cargo new --quiet --vcs none --bin "$1")
  cp "$root/.ci/app/main.rs" "$work/$1/src/main.rs"
}

echo "-- app on the packaged crates"
touch "$work/stamp"
new_app packaged
mkdir -p "$work/packaged/.cargo"
cat >"$work/packaged/.cargo/config.toml" <<TOML
[source.crates-io]
replace-with = "packaged"
[source.packaged]
directory = "$reg"
TOML
(
  cd "$work/packaged"
  feat=()
  $vulkan && feat=(--features vulkan)
  cargo add --quiet llamacpp@0.1 "${feat[@]}"
  cargo add --quiet llamacpp-synth@0.1
  if $vulkan; then
    cargo build --quiet
    echo "built with Vulkan: $(ls "$CARGO_TARGET_DIR"/debug/packaged)"
  else
    cargo run --quiet >"$work/packaged.out"
  fi
)
# Building must not write into a package's directory (it fetches the upstream source into a cache
# under Cargo's home and builds in OUT_DIR).
written=$(find "$reg"/llamacpp-* -newer "$work/stamp" -print)
if [ -n "$written" ]; then
  echo "the build wrote into the packaged sources:" >&2; echo "$written" >&2; exit 1
fi
$vulkan && exit 0
cat "$work/packaged.out"

echo "-- app on a git dependency (file://$root at $(git rev-parse --short HEAD))"
[ -z "$(git status --porcelain -- llamacpp llamacpp-sys ggml synth patchkit Cargo.toml)" ] ||
  echo "note: uncommitted changes in the crates are not in the git build"
new_app from-git
(
  cd "$work/from-git"
  rev=$(git -C "$root" rev-parse HEAD)
  cargo add --quiet --git "file://$root" --rev "$rev" llamacpp llamacpp-synth
  cargo run --quiet >"$work/from-git.out"
)
if ! diff -u "$work/packaged.out" "$work/from-git.out"; then
  echo "the packaged and the git builds print different transcripts" >&2; exit 1
fi
grep -qx ok "$work/packaged.out"
echo "app-check: packaged and git builds agree"

# `links = "llamacpp"` is ours: an app can also depend on llama-cpp-2 (whose sys crate links
# "llama", the key llamacpp-sys used to take). Resolution alone shows a conflict; nothing is built.
(
  cd "$work/from-git"
  cargo add --quiet llama-cpp-2
  cargo tree --quiet -e normal -i llama-cpp-sys-2 >/dev/null
)
echo "app-check: resolves beside llama-cpp-2 (no links conflict)"
