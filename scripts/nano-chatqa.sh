#!/usr/bin/env bash
# The nano-ChatQA recipe: ChatQA-2's three steps at laptop scale, with longqa's own tools.
#   1. a byte-level BPE tokenizer trained on English text from Debian packages
#   2. pretraining at 512 tokens on that text and on synthetic lookup documents, in two parts: copying
#      of distinct words first (a), then of passages and recurring words (b), at a lower learning rate
#   3. context extension: RoPE base 10,000 -> 160,000, continued pretraining at 4,096 tokens (8x) on
#      long documents joined by "<s>"
#   4. SFT in the ChatQA format: extractive QA over short and long contexts (related passages with the
#      answer-bearing one at a random place, the NarrativeQA way) and "cannot find" cases; the model
#      is the mean of the weights over the SFT's last quarter (tail averaging)
# plus, for the paper's contrast, the same SFT on the model before extension (at 512 tokens), and the
# needle-in-a-haystack heatmaps of both.
#
#   scripts/nano-chatqa.sh OUT_DIR [--mini] [--longqa BINARY]
#
# --mini runs a seconds-long miniature on the bundled texts (the test suite's end-to-end check).
# Deterministic for the seed below and the machine's thread count. Needs python3 and a longqa binary
# (build/bin/longqa by default). The full run takes about an hour on 2 cores (BENCHMARKS.md).
# Run again on the same OUT_DIR, it picks up where it stopped: finished steps are skipped and a stage
# cut short continues from its last checkpoint (taken every 50 steps).
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
  s1a=(--seq-len 256 --batch 2 --steps 4 --warmup 1 -t 1)
  s1b=(--seq-len 256 --batch 2 --steps 2 --warmup 1 -t 1)
  s2=(--seq-len 1024 --batch 1 --steps 2 --warmup 1 -t 1)
  s3=(--seq-len 1024 --batch 2 --steps 3 --warmup 1 -t 1 --average-from 2 --average-every 1)
  short_sft=(--seq-len 768 --batch 2 --steps 2 --warmup 1 -t 1)
  long_len=1024 short_len=256 niah_lengths=384,768 threads=1 every=2
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
  s1a=(--seq-len 512 --batch 8 --steps 3000 --warmup 50 --lr 2e-3 --min-lr 2e-4)
  s1b=(--seq-len 512 --batch 8 --steps 1600 --warmup 20 --lr 1e-3 --min-lr 1e-4)
  s2=(--seq-len 4096 --batch 1 --steps 300 --warmup 5 --lr 5e-4 --min-lr 1e-4)
  # SFT: the model is the mean of the weights after its last quarter's steps (every 25, or 5).
  s3=(--seq-len 4096 --batch 1 --steps 400 --warmup 5 --lr 2.5e-4 --min-lr 2.5e-5 --average-from 300 --average-every 25)
  short_sft=(--seq-len 512 --batch 8 --steps 100 --warmup 5 --lr 2.5e-4 --min-lr 2.5e-5 --average-from 80 --average-every 5)
  long_len=4096 short_len=512 niah_lengths=512,1024,2048,4096 threads=0 every=50
fi

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

# Trains OUT_DIR/NAME.gguf unless done before; continues it from its checkpoint if one was cut short.
train_stage() {  # NAME, longqa train options...
  local ckpt="$out/$1.gguf"
  shift
  if [ -f "$ckpt.done" ]; then echo "done before: $ckpt"; return; fi
  local resume=()
  if [ -f "$ckpt" ] && [ -f "$ckpt.optim" ]; then resume=(--resume); echo "continuing $ckpt"; fi
  $longqa train --tokenizer "$out/tokenizer.json" --out "$ckpt" --seed $seed --checkpoint-every $every "${resume[@]}" "$@"
  touch "$ckpt.done"
}

step "data"
if [ -f "$out/data.done" ]; then
  echo "done before: $out/data"
else
  python3 scripts/nano_chatqa_data.py --out "$out/data" --seed $seed "${scale[@]}" "${texts[@]}"
  $longqa data tokenizer --vocab $vocab --out "$out/tokenizer.json" "$out/data/corpus.txt"
  rm -f "$out"/data/pre-[ab].* "$out"/data/ext.*
  for part in a b; do
    $longqa data pretrain --tokenizer "$out/tokenizer.json" --source-field "" --seq-len $short_len --out "$out/data/pre-$part" "$out/data/pretrain-$part.jsonl"
  done
  $longqa data pretrain --tokenizer "$out/tokenizer.json" --source-field "" --seq-len $long_len --out "$out/data/ext" "$out/data/extend.jsonl"
  touch "$out/data.done"
fi

step "1a. pretraining at $short_len tokens: copying distinct words, lookups"
train_stage stage1a --data "$out/data/pre-a" --context $long_len --rope-theta 10000 "${model[@]}" "${s1a[@]}"

step "1b. pretraining at $short_len tokens: copying passages and recurring words, lookups"
train_stage stage1 --init "$out/stage1a.gguf" --data "$out/data/pre-b" "${s1b[@]}"

step "2. context extension to $long_len tokens, RoPE base 160000"
train_stage stage2 --init "$out/stage1.gguf" --data "$out/data/ext" --rope-theta 160000 "${s2[@]}"

step "3. ChatQA SFT (long and short contexts)"
train_stage nano-chatqa --init "$out/stage2.gguf" --data "$out/data/sft.jsonl" "${s3[@]}"

step "the contrast: ChatQA SFT of the model before extension"
# The same samples: those longer than the short window are left out by the trainer (and counted).
train_stage nano-chatqa-short --init "$out/stage1.gguf" --data "$out/data/sft.jsonl" "${short_sft[@]}"

step "needle in a haystack"
$longqa eval niah --model "$out/nano-chatqa.gguf" --lengths $niah_lengths -t $threads --out "$out/niah-extended"
$longqa eval niah --model "$out/nano-chatqa-short.gguf" --lengths $niah_lengths -t $threads --out "$out/niah-before"
python3 scripts/nano_chatqa_report.py "$out" > "$out/report.md"
step "done: $out/report.md"
