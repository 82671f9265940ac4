#!/usr/bin/env bash
# Installs the Debian packages longqa needs (only those missing) and builds it in build/ (Release).
# Idempotent: run it again after pulling; it rebuilds only what changed.
#   scripts/setup.sh [--sanitize]   (--sanitize: ASan + UBSan build in build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config nlohmann-json3-dev libpcre2-dev libcli11-dev
          libgtest-dev libgmock-dev libsqlite3-dev libxml2-dev libpoppler-cpp-dev libfaiss-dev libcpp-httplib-dev
          zlib1g-dev libzstd-dev python3
          # English text for the nano-ChatQA recipe (scripts/nano-chatqa.sh)
          fortunes debian-reference-en)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Tests drive longqa with real third-party clients from npm: the official OpenAI client (`openai`,
# the server tests) and Hugging Face tokenizers (`tokenizers`, the tokenizer-training tests).
if [ ! -d tests/node/node_modules/openai ] || [ ! -d tests/node/node_modules/tokenizers ]; then
  if ! command -v npm >/dev/null; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm >/dev/null
  fi
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

build_dir=build
flags=(-DCMAKE_BUILD_TYPE=Release)
if [ "${1:-}" = "--sanitize" ]; then
  build_dir=build-asan
  # -O1 -g1 halves the compile time of the template-heavy files; the benchmarks are not built.
  flags=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" -DLONGQA_SANITIZE=ON -DLONGQA_BUILD_BENCH=OFF)
fi
cmake -S . -B "$build_dir" -G Ninja "${flags[@]}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
