#!/usr/bin/env python3
"""The data of the nano-ChatQA recipe (scripts/nano-chatqa.sh), from plain English text files.

Writes to OUT:
  corpus.txt      the text the tokenizer is trained on
  pretrain-a.jsonl  short documents for the first part of stage 1: runs of distinct words shown
                  again (copying where the previous token says what follows), lists of facts with
                  questions and answers, and text with facts planted in it, some followed by a
                  question and its answer (lookup tasks: passkeys, key-value facts, "what does the
                  passage say"), now and then one about a fact not there, answered with the refusal
  pretrain-b.jsonl  the second part: passages shown again and runs over a few recurring words
                  (copying where only the tokens before say what follows), and lookups
  extend.jsonl    long documents of the same kinds, for context extension
  sft.jsonl       ChatQA-format chat samples: a context (short or long, built the NarrativeQA way:
                  related passages with the answer-bearing one at a random place), a question, the
                  answer, or, when the context does not hold it, a reply that says so and ends in
                  ChatQA's refusal

Deterministic for a seed; standard library only.
usage: nano_chatqa_data.py --out DIR [--seed S] [--scale X] TEXT_FILE...
"""
import argparse
import html
import json
import os
import random
import re
from collections import namedtuple

SYSTEM = ("This is a chat between a user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions based on the context. The assistant should also "
          "indicate when the answer cannot be found in the context.")
INSTRUCTION = "Please give a full and complete answer for the question."
REFUSAL = "Sorry. I cannot find the answer based on the context."


def read_passages(paths):
    """Paragraph-sized passages of the text files (fortune files split at '%', HTML stripped)."""
    passages = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if path.endswith(".html"):
            text = re.sub(r"(?is)<(script|style).*?</\1>", " ", text)
            text = html.unescape(re.sub(r"(?s)<[^>]+>", " ", text))
        for block in re.split(r"\n\s*%\s*\n|\n\s*\n", text):
            block = re.sub(r"[ \t]+", " ", block).strip()
            if 40 <= len(block) <= 1500 and "<s>" not in block:
                passages.append(block)
    return passages


# The answer restates the statement, so answering is finding the sentence the question points at and
# copying it (ChatQA's "full and complete answer"); the value is what a reply must contain. `missing` is
# the SFT reply when the context lacks the fact: the same words up to the key's statement, then "not
# given", then ChatQA's refusal. A model this small does not learn to refuse at the first token (README,
# "The nano-ChatQA recipe"); it does decide where the answer's words meet the lookup, as a copy does.
Fact = namedtuple("Fact", "statement question value answer kind missing")


class Facts:
    """Families of (statement, question, answer) with random keys and values. Phrase values are runs of
    words cut from the passages (natural phrases, short words and capitals included, as a needle's)."""

    def __init__(self, rng, passages):
        self.rng = rng
        self.word_runs = [ws for ws in (re.findall(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]|[0-9]+", p) for p in passages) if len(ws) >= 12]
        self.words = sorted({w.lower() for ws in self.word_runs for w in ws if 3 <= len(w) <= 10 and w.isalpha()})
        # Names as varied as real ones, so that a name is copied token by token and never recalled:
        # capitalised words of the text (most split into several tokens) and invented ones.
        self.capitalised = sorted({w for ws in self.word_runs for w in ws if 3 <= len(w) <= 12 and w.isalpha() and w[0].isupper()
                                   and not w.isupper() and w != "Francisco"})  # the needle test's key stays unseen
        self.syllables = ["ka", "lo", "mi", "ra", "ten", "bor", "vel", "sa", "dun", "qui", "mar", "zel", "op", "rin", "ta",
                          "gu", "an", "el", "dor", "is", "fen", "wy", "osk", "ul", "bra", "chi", "ne", "pol", "ves", "tro"]
        self.adjectives = ["red", "blue", "green", "silver", "golden", "small", "old", "hidden", "northern", "quiet",
                           "broken", "wooden", "bright", "dark", "secret", "tall"]
        self.nouns = ["door", "box", "tower", "garden", "ship", "lamp", "bridge", "river", "house", "book", "key",
                      "road", "well", "clock", "mountain", "window"]
        self.things = ["colour", "food", "book", "song", "city", "animal", "number", "tool", "game", "flower"]

    def invented(self):
        return "".join(self.rng.choice(self.syllables) for _ in range(self.rng.randint(2, 4))).capitalize()

    def name(self):
        """One or two words, real or invented; drawn afresh each time."""
        r = self.rng
        word = lambda: r.choice(self.capitalised) if r.random() < 0.6 else self.invented()
        return word() if r.random() < 0.5 else word() + " " + word()

    def phrase(self, lo, hi):
        words = self.rng.choice(self.word_runs)
        n = min(self.rng.randint(lo, hi), len(words))
        start = self.rng.randrange(len(words) - n + 1)
        return " ".join(words[start:start + n])

    KINDS = 7
    PASS_KEY = 4  # the one family whose question names no key

    def make(self, kind=None):
        """A Fact of the given family (a random one by default)."""
        if kind is None:
            kind = self.rng.randrange(self.KINDS)
        statement, question, value, answer = self._make(kind)
        said = answer[:answer.index(value)].rstrip()
        if said.endswith(" says that"):  # "... of X says that" -> "... of X is not given"
            said = said[:-len(" says that")] + " is"
        return Fact(statement, question, value, answer, kind, f"{said} not given in the context. {REFUSAL}")

    def several(self, n):
        """n facts of random families, at most one of them a pass key: with two, the question "What is
        the pass key?" would have two right answers (its family is the one whose question names no key)."""
        planted = []
        while len(planted) < n:
            fact = self.make()
            if fact.kind != self.PASS_KEY or all(f.kind != self.PASS_KEY for f in planted):
                planted.append(fact)
        return planted

    def absent(self, planted, same_family=0.0):
        """A fact whose question none of the planted facts answers: with probability same_family of a
        planted fact's family (so that a reply must check the key, not only find a sentence of the asked
        shape), else of any family; never "the pass key", whose question names no key."""
        same = [f.kind for f in planted if f.kind != self.PASS_KEY] if same_family else []
        others = [k for k in range(self.KINDS) if k != self.PASS_KEY]
        kind = self.rng.choice(same if same and self.rng.random() < same_family else others)
        asked = self.make(kind)
        while any(f.question == asked.question for f in planted):  # a key drawn again (1 in 256 for the codes)
            asked = self.make(kind)
        return asked

    def _make(self, kind):
        r = self.rng
        name = self.name()
        if kind == 0:
            value = self.phrase(4, 14)
            s = f"The best thing to do in {name} is {value}."
            return (s, f"What is the best thing to do in {name}?", value, s)
        if kind == 6:
            value = self.phrase(4, 14)
            s = f"The most important thing about {name} is {value}."
            return (s, f"What is the most important thing about {name}?", value, s)
        if kind == 1:
            key = f"{r.choice(self.adjectives)} {r.choice(self.nouns)}"
            value = f"{r.choice(self.words)}-{r.randint(10, 9999)}"
            s = f"The secret code of the {key} is {value}."
            return (s, f"What is the secret code of the {key}?", value, s)
        if kind == 2:
            value = str(r.randint(1000, 9999999))
            s = f"The special magic number for {name} is {value}."
            return (s, f"What is the special magic number for {name}?", value, s)
        if kind == 3:
            thing = r.choice(self.things)
            value = self.phrase(1, 3)
            s = f"{name}'s favourite {thing} is {value}."
            return (s, f"What is {name}'s favourite {thing}?", value, s)
        if kind == 4:
            value = str(r.randint(10000, 99999))
            return (f"The pass key is {value}. Remember it. {value} is the pass key.", "What is the pass key?", value,
                    f"The pass key is {value}.")
        key = f"{r.choice(self.adjectives)} {r.choice(self.nouns)} of {name}"
        value = self.phrase(2, 6)
        s = f"The passage about the {key} says that {value}."
        return (s, f"What does the passage say about the {key}?", value, s)


def haystack(rng, passages, chars):
    out, size = [], 0
    start = rng.randrange(len(passages))
    while size < chars:  # related passages: a contiguous run, as a story's paragraphs are
        p = passages[(start + len(out)) % len(passages)]
        out.append(p)
        size += len(p) + 2
    return out


def plant(rng, paragraphs, statements):
    """Each statement as a paragraph of its own, or on a line of its own after a sentence of a paragraph
    (where the needle test puts its needle)."""
    for s in statements:
        i = rng.randrange(len(paragraphs) + 1)
        ends = [m.end() for m in re.finditer(r"[.!?] ", paragraphs[i])] if i < len(paragraphs) and rng.random() < 0.5 else []
        if ends:
            at = rng.choice(ends)
            paragraphs[i] = paragraphs[i][:at - 1] + "\n" + s + "\n" + paragraphs[i][at:]
        else:
            paragraphs.insert(i, s)
    return "\n\n".join(paragraphs)


def questions(rng, facts, planted):
    """A question about every planted fact, in another order, each with its answer; in 30% of documents
    one more about a fact the text does not hold, answered with the refusal. Refused at the answer's
    first token, it is never learnt here (the extended model refuses none of 8 absent facts even in
    bare fact lists); SFT's `Fact.missing` is what teaches refusing. Kept as it is, so that stages 1–2
    of the committed model remain this script's output."""
    asked = [(f.question, f.answer) for f in planted]
    rng.shuffle(asked)
    if rng.random() < 0.3:
        absent = facts.absent(planted, same_family=0.5)
        asked.insert(rng.randint(0, len(asked)), (absent.question, REFUSAL))
    return "".join(f"\n\nQuestion: {q}\nAnswer: {a}" for q, a in asked)


def lookup_document(rng, facts, passages, chars):
    """Text with facts planted, then a question about one of them and its answer (or plain text)."""
    paragraphs = haystack(rng, passages, chars)
    if rng.random() < 0.25:
        return "\n\n".join(paragraphs)
    planted = [facts.make() for _ in range(rng.randint(1, 4))]
    return plant(rng, paragraphs, [f.statement for f in planted]) + questions(rng, facts, planted)


def fact_list_document(rng, facts):
    """Only facts, one a line, then a question about each and its answer: lookups at their densest."""
    planted = [facts.make() for _ in range(rng.randint(3, 8))]
    return "\n".join(f.statement for f in planted) + questions(rng, facts, planted)


def copy_document(rng, facts, passages, kind):
    """Text shown again, for copying token by token (induction), the skill lookups are built on and the
    one that forms slowest from text alone. Kind "words": runs of distinct random words (lower-case,
    capitalised, invented), where the previous token alone says what comes next; it forms first.
    "passages": stretches of passages; "pool": runs over a pool of a few recurring words. In those two
    only the tokens before say what follows, as after the " a" of a needle in a haystack full of them;
    learnt from scratch they stall, learnt after "words" they form (README, "The nano-ChatQA recipe")."""
    runs = []
    for _ in range(rng.randint(2, 6) if kind != "passages" else rng.randint(1, 3)):
        if kind == "words":
            word = lambda u: rng.choice(facts.words) if u < 0.7 else rng.choice(facts.capitalised) if u < 0.9 else facts.invented()
            run = " ".join(word(rng.random()) for _ in range(rng.randint(6, 20)))
        elif kind == "passages":
            words = rng.choice(passages).split()
            n = min(len(words), rng.randint(15, 80))
            start = rng.randrange(len(words) - n + 1)
            run = " ".join(words[start:start + n])
        else:
            pool = [rng.choice(facts.words) for _ in range(rng.randint(4, 10))]
            run = " ".join(rng.choice(pool) for _ in range(rng.randint(12, 30)))
        runs.append(("\n\n" if kind == "passages" else "\n").join([run] * rng.randint(2, 3)))
    return "\n\n".join(runs)


def pretrain_document(rng, facts, passages, part, short_chars):
    """Stage 1a: 40% word runs, 30% fact lists, 30% lookups. Stage 1b: 35% passages, 25% pools, 40% lookups."""
    u = rng.random()
    if part == "a":
        if u < 0.4:
            return copy_document(rng, facts, passages, "words")
        if u < 0.7:
            return fact_list_document(rng, facts)
    else:
        if u < 0.35:
            return copy_document(rng, facts, passages, "passages")
        if u < 0.6:
            return copy_document(rng, facts, passages, "pool")
    return lookup_document(rng, facts, passages, rng.randint(200, short_chars))


def sft_sample(rng, facts, passages, chars):
    paragraphs = haystack(rng, passages, chars)
    # Two pass keys can be drawn here, and then "What is the pass key?" has two right answers (50 of
    # the recipe's 3,000 samples, one in six of those asking for the pass key). Kept so that the
    # committed model stays this script's output: drawn with `facts.several`, three SFT runs (seeds
    # 1-3) all scored below it (README, "The committed default model").
    planted = [facts.make() for _ in range(rng.randint(1, 3))]
    # In half the samples, one or two more facts of the first one's family with other keys: the reply
    # must match the question's key, not only find a sentence of its shape (without them a model copies
    # the first value of the asked family, and never learns when to refuse).
    if planted[0].kind != facts.PASS_KEY and rng.random() < 0.5:
        for _ in range(rng.randint(1, 2)):
            other = facts.make(planted[0].kind)
            while any(f.question == other.question for f in planted):  # a key drawn again
                other = facts.make(planted[0].kind)
            planted.append(other)
        rng.shuffle(planted)
    if rng.random() < 0.25:  # the asked fact is not in the context
        asked = facts.absent(planted, same_family=0.8)
        answer = asked.missing
    else:
        asked = rng.choice(planted)
        answer = asked.answer
    context = plant(rng, paragraphs, [f.statement for f in planted])
    return {"messages": [{"role": "system", "content": SYSTEM + "\n\n" + context},
                         {"role": "user", "content": INSTRUCTION + " " + asked.question},
                         {"role": "assistant", "content": answer}]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every document count")
    ap.add_argument("--short-chars", type=int, default=1800, help="text per pretraining document")
    ap.add_argument("--long-chars", type=int, default=15000, help="text per long document")
    ap.add_argument("texts", nargs="+")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    passages = read_passages(sorted(a.texts))
    if len(passages) < 50:
        raise SystemExit("nano_chatqa_data: too little text (%d passages)" % len(passages))
    facts = Facts(rng, passages)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "corpus.txt"), "w", encoding="utf-8") as f:
        f.write("\n\n".join(passages))
        f.write("\n\n" + "\n".join(facts.make().statement for _ in range(2000)) + "\n")
    n = lambda x: max(1, int(x * a.scale))
    for part, count in (("a", 22000), ("b", 18000)):
        with open(os.path.join(a.out, f"pretrain-{part}.jsonl"), "w", encoding="utf-8") as f:
            for _ in range(n(count)):
                f.write(json.dumps({"text": pretrain_document(rng, facts, passages, part, a.short_chars)}) + "\n")
    with open(os.path.join(a.out, "extend.jsonl"), "w", encoding="utf-8") as f:
        for _ in range(n(600)):
            f.write(json.dumps({"text": lookup_document(rng, facts, passages, rng.randint(a.long_chars // 4, a.long_chars))}) + "\n")
    with open(os.path.join(a.out, "sft.jsonl"), "w", encoding="utf-8") as f:
        for _ in range(n(3000)):
            long = rng.random() < 0.5
            chars = rng.randint(a.long_chars // 5, a.long_chars - 1500) if long else rng.randint(100, a.short_chars)
            f.write(json.dumps(sft_sample(rng, facts, passages, chars)) + "\n")


if __name__ == "__main__":
    main()
