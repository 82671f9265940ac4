#!/usr/bin/env bash
# Decode and prompt speed of longqa beside llama.cpp on the same GGUF files, one type after the
# other so that both see the same machine: longqa (weights read into huge pages, the default), longqa
# with --mmap (decode only; mapped weights also keep the file's layout: Q4_0 rows not interleaved),
# then llama-bench; with the machine's read bandwidth before and after.
# usage: bench/side_by_side.sh LLAMA_BENCH THREADS MODEL.gguf...
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 LLAMA_BENCH THREADS MODEL.gguf..." >&2; exit 2; }
llama_bench=$1 threads=$2; shift 2
bin=$(cd "$(dirname "$0")/.." && pwd)/build/bin
figures() { grep -o "\"\\($1\\)\": [0-9.]*" | tr '\n' ' '; }
"$bin/longqa-bench-membw" "$threads" 7
for model in "$@"; do
  echo "$model"
  echo "  longqa:        $("$bin/longqa" bench -m "$model" -p 512 -n 128 -r 3 -t "$threads" --json | figures 'pp_tok_s\|tg_tok_s\|gb_s\|peak_rss_mb')"
  echo "  longqa --mmap: $("$bin/longqa" bench -m "$model" -p 1 -n 128 -r 3 -t "$threads" --json --mmap | figures tg_tok_s)"
  echo "  llama.cpp:     $("$llama_bench" -m "$model" -p 512 -n 128 -r 3 -t "$threads" 2>/dev/null | awk -F'|' '/pp512|tg128/ {printf "%s%s ", $(NF-2), $(NF-1)}')"
done
"$bin/longqa-bench-membw" "$threads" 7
