#!/usr/bin/env python3
"""Asks a model about facts planted in long documents, through `longqa ask --json`, and scores it.

Each trial builds a document from the bundled licence texts (text the recipe never trained on) with
facts planted at random places, then asks about one of them (extractive: correct when the reply holds
the value) or about a fact it does not hold (correct when the reply says it cannot find the answer).
Documents of --chars characters; --mode long puts the whole text in the prompt, --mode rag retrieves.

usage: nano_chatqa_eval.py [--model M] [--mode long|rag] [--chars N] [--trials N] [--seed S] [--ask-args "..."]
"""
import argparse
import glob
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nano_chatqa_data import Facts, haystack, read_passages  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trial_document(rng, facts, passages, chars, absent):
    """A document of about `chars` characters with three facts planted (at most one pass key, whose
    question names no key), a question about one of them or, if `absent`, about a fact it does not
    hold, and the value a right reply contains."""
    paragraphs = haystack(rng, passages, chars)
    planted = facts.several(3)
    for fact in planted:
        paragraphs.insert(rng.randint(0, len(paragraphs)), fact.statement)
    asked = facts.absent(planted) if absent else rng.choice(planted)
    return "\n\n".join(paragraphs), asked.question, asked.value


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="")
    ap.add_argument("--mode", default="long", choices=["long", "rag", "auto"])
    ap.add_argument("--chars", type=int, default=8000)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--longqa", default=os.path.join(ROOT, "build/bin/longqa"))
    ap.add_argument("--ask-args", default="", help="more options for longqa ask, e.g. \"--chunk-tokens 600 --k 4\"")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    passages = read_passages(sorted(glob.glob(os.path.join(ROOT, "data/haystack/*.txt"))))
    facts = Facts(rng, passages)
    correct = {"extractive": [0, 0], "absent": [0, 0]}
    with tempfile.TemporaryDirectory() as tmp:
        for trial in range(a.trials):
            absent = trial % 5 == 4
            text, question, answer = trial_document(rng, facts, passages, a.chars, absent)
            doc = os.path.join(tmp, f"doc{trial}.txt")
            with open(doc, "w") as f:
                f.write(text)
            cmd = [a.longqa, "ask", "--doc", doc, "--mode", a.mode, "--json", "-n", "64"] + a.ask_args.split()
            if a.model:
                cmd += ["--model", a.model]
            r = subprocess.run(cmd + [question], capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(r.stderr)
            reply = json.loads(r.stdout)["answer"]
            ok = ("cannot find" in reply.lower()) if absent else (answer.lower() in reply.lower())
            kind = "absent" if absent else "extractive"
            correct[kind][0] += ok
            correct[kind][1] += 1
            print(json.dumps({"trial": trial, "kind": kind, "ok": ok, "question": question, "answer": answer,
                              "reply": reply, "route": json.loads(r.stdout)["route"]}), flush=True)
    for kind, (ok, n) in correct.items():
        print(f"{kind}: {ok}/{n} = {100.0 * ok / max(n, 1):.1f}%")


if __name__ == "__main__":
    main()
