#!/usr/bin/env bash
# The nano-ChatQA recipe: ChatQA-2's three steps at laptop scale, with longqa's own tools.
#   1. a byte-level BPE tokenizer trained on English text from Debian packages
#   2. pretraining at 512 tokens on that text and on synthetic lookup documents
#   3. context extension: RoPE base 10,000 -> 160,000, continued pretraining at 4,096 tokens (8x) on
#      long documents joined by "<s>"
#   4. SFT in the ChatQA format: extractive QA over short and long contexts (related passages with the
#      answer-bearing one at a random place, the NarrativeQA way) and "cannot find" cases
# plus, for the paper's contrast, the same SFT on the model before extension (at 512 tokens), and the
# needle-in-a-haystack heatmaps of both.
#
#   scripts/nano-chatqa.sh OUT_DIR [--mini] [--longqa BINARY]
#
# --mini runs a seconds-long miniature on the bundled texts (the test suite's end-to-end check).
# Deterministic for the seed below and the machine's thread count. Needs python3 and a longqa binary
# (build/bin/longqa by default). The full run takes about an hour on 2 cores (BENCHMARKS.md).
set -euo pipefail
out=${1:?usage: scripts/nano-chatqa.sh OUT_DIR [--mini] [--longqa BINARY]}
shift
mini="" longqa=build/bin/longqa
while [ $# -gt 0 ]; do
  case "$1" in
    --mini) mini=--mini ;;
    --longqa) longqa=$(realpath "$2"); shift ;;
    *) echo "nano-chatqa.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
out=$(realpath -m "$out")
cd "$(dirname "$0")/.."
mkdir -p "$out"
seed=1

if [ "$mini" = "--mini" ]; then
  texts=(data/haystack/*.txt)
  scale=(--scale 0.01 --short-chars 600 --long-chars 2400)
  vocab=400
  model=(--hidden 32 --layers 2 --heads 2 --kv-heads 2 --ffn 64 --tied)
  s1=(--seq-len 256 --batch 2 --steps 4 --warmup 1 -t 1)
  s2=(--seq-len 1024 --batch 1 --steps 2 --warmup 1 -t 1)
  s3=(--seq-len 1024 --batch 2 --steps 3 --warmup 1 -t 1)
  short_sft=(--seq-len 512 --batch 2 --steps 2 --warmup 1 -t 1)
  long_len=1024 short_len=256 niah_lengths=384,768 threads=1
else
  texts=()
  for f in /usr/share/games/fortunes/*; do
    case "$f" in *.dat | *.u8) ;; *) texts+=("$f") ;; esac
  done
  texts+=(/usr/share/debian-reference/*.en.html /usr/share/common-licenses/Apache-2.0 /usr/share/common-licenses/GPL-3
          /usr/share/common-licenses/LGPL-2.1 /usr/share/common-licenses/MPL-2.0 /usr/share/common-licenses/Artistic)
  scale=()
  vocab=4096
  # Tied embeddings: copying from the context forms far sooner (README, "The nano-ChatQA recipe").
  model=(--hidden 192 --layers 4 --heads 3 --kv-heads 3 --ffn 512 --tied)
  s1=(--seq-len 512 --batch 8 --steps 2800 --warmup 50 --lr 2e-3 --min-lr 2e-4)
  s2=(--seq-len 4096 --batch 1 --steps 150 --warmup 5 --lr 5e-4 --min-lr 1e-4)
  s3=(--seq-len 4096 --batch 1 --steps 200 --warmup 5 --lr 5e-4 --min-lr 5e-5)
  short_sft=(--seq-len 512 --batch 8 --steps 100 --warmup 5 --lr 5e-4 --min-lr 5e-5)
  long_len=4096 short_len=512 niah_lengths=512,1024,2048,4096 threads=0
fi

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

step "data"
python3 scripts/nano_chatqa_data.py --out "$out/data" --seed $seed "${scale[@]}" "${texts[@]}"
$longqa data tokenizer --vocab $vocab --out "$out/tokenizer.json" "$out/data/corpus.txt"
rm -f "$out"/data/pre.* "$out"/data/ext.*
$longqa data pretrain --tokenizer "$out/tokenizer.json" --source-field "" --seq-len $short_len --out "$out/data/pre" "$out/data/pretrain.jsonl"
$longqa data pretrain --tokenizer "$out/tokenizer.json" --source-field "" --seq-len $long_len --out "$out/data/ext" "$out/data/extend.jsonl"

step "1. pretraining at $short_len tokens"
$longqa train --data "$out/data/pre" --tokenizer "$out/tokenizer.json" --out "$out/stage1.gguf" --context $long_len \
  --rope-theta 10000 --seed $seed "${model[@]}" "${s1[@]}"

step "2. context extension to $long_len tokens, RoPE base 160000"
$longqa train --init "$out/stage1.gguf" --data "$out/data/ext" --tokenizer "$out/tokenizer.json" --out "$out/stage2.gguf" \
  --rope-theta 160000 --seed $seed "${s2[@]}"

step "3. ChatQA SFT (long and short contexts)"
$longqa train --init "$out/stage2.gguf" --data "$out/data/sft.jsonl" --tokenizer "$out/tokenizer.json" \
  --out "$out/nano-chatqa.gguf" --seed $seed "${s3[@]}"

step "the contrast: ChatQA SFT of the model before extension"
# The same samples: those longer than the short window are left out by the trainer (and counted).
$longqa train --init "$out/stage1.gguf" --data "$out/data/sft.jsonl" --tokenizer "$out/tokenizer.json" \
  --out "$out/nano-chatqa-short.gguf" --seed $seed "${short_sft[@]}"

step "needle in a haystack"
$longqa eval niah --model "$out/nano-chatqa.gguf" --lengths $niah_lengths -t $threads --out "$out/niah-extended"
$longqa eval niah --model "$out/nano-chatqa-short.gguf" --lengths $niah_lengths -t $threads --out "$out/niah-before"
python3 scripts/nano_chatqa_report.py "$out" > "$out/report.md"
step "done: $out/report.md"
