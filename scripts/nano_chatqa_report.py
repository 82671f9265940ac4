#!/usr/bin/env python3
"""The nano-ChatQA recipe's report (Markdown): each stage's steps, tokens, time and loss from its
checkpoint's CSV log, and the needle-in-a-haystack grid of the model before and after extension.

usage: nano_chatqa_report.py OUT_DIR   (the directory scripts/nano-chatqa.sh wrote)
"""
import csv
import json
import os
import sys

STAGES = [("1a. pretraining: distinct words", "stage1a.gguf"),
          ("1b. pretraining: passages, recurring words", "stage1.gguf"),
          ("2. context extension", "stage2.gguf"),
          ("3. ChatQA SFT", "nano-chatqa.gguf"),
          ("contrast: SFT before extension", "nano-chatqa-short.gguf")]


def mean(xs):
    return sum(xs) / len(xs)


def main():
    out = sys.argv[1]
    print("# nano-ChatQA: the recipe's report\n")
    print("| stage | checkpoint | steps | tokens | minutes | tokens/s | loss (first 10 steps → last 10) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    total = 0.0
    for name, ckpt in STAGES:
        with open(os.path.join(out, ckpt + ".csv")) as f:
            rows = list(csv.DictReader(f))
        tokens, seconds = int(rows[-1]["tokens"]), float(rows[-1]["seconds"])
        # A run continued with --resume starts its clock again: add the time of each part.
        seconds += sum(float(a["seconds"]) for a, b in zip(rows, rows[1:]) if float(b["seconds"]) < float(a["seconds"]))
        total += seconds
        losses = [float(r["loss"]) for r in rows]
        print(f"| {name} | {ckpt} | {len(rows)} | {tokens:,} | {seconds / 60:.1f} | {tokens / seconds:,.0f} | "
              f"{mean(losses[:10]):.3f} → {mean(losses[-10:]):.3f} |")
    print(f"\nTraining time in all: {total / 60:.1f} minutes.\n")
    for title, folder in (("after extension and SFT", "niah-extended"), ("before extension (SFT at the short length)", "niah-before")):
        with open(os.path.join(out, folder, "niah.json")) as f:
            report = json.load(f)
        cells = report["cells"]
        lengths = sorted({c["length"] for c in cells})
        depths = sorted({c["depth"] for c in cells})
        score = {(c["length"], c["depth"]): c["score"] for c in cells}
        print(f"## Needle in a haystack, {title}: {100 * report['accuracy']:.1f}%\n")
        print("| depth \\ length | " + " | ".join(str(n) for n in lengths) + " |")
        print("| --- |" + " ---: |" * len(lengths))
        for d in depths:
            print(f"| {d:g}% | " + " | ".join("pass" if score.get((n, d), 0) >= 1 else "fail" for n in lengths) + " |")
        print()


if __name__ == "__main__":
    main()
