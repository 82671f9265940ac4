#!/usr/bin/env python3
"""Checks of the nano-ChatQA eval's documents (scripts/nano_chatqa_eval.py, on the facts of
scripts/nano_chatqa_data.py): every question has one right answer. Run by ctest; standard library only."""
import glob
import os
import random
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from nano_chatqa_data import Facts, read_passages  # noqa: E402
from nano_chatqa_eval import trial_document  # noqa: E402


class EvalDocumentsTest(unittest.TestCase):
    def setUp(self):
        self.rng = random.Random(5)
        self.passages = read_passages(sorted(glob.glob(os.path.join(ROOT, "data/haystack/*.txt"))))
        self.facts = Facts(self.rng, self.passages)

    def test_several_draws_every_family_and_at_most_one_pass_key(self):
        kinds = set()
        for _ in range(2000):
            planted = self.facts.several(3)
            self.assertEqual(len(planted), 3)
            self.assertLessEqual(sum(f.kind == Facts.PASS_KEY for f in planted), 1)
            kinds.update(f.kind for f in planted)
        self.assertEqual(kinds, set(range(Facts.KINDS)))

    def test_a_pass_key_question_has_one_answer(self):
        pass_keys = 0
        for trial in range(1500):
            absent = trial % 5 == 4
            text, question, value = trial_document(self.rng, self.facts, self.passages, 2000, absent)
            if question == "What is the pass key?":
                pass_keys += 1
                self.assertEqual(text.count("The pass key is "), 1)  # two would make either a right answer
            if not absent:
                self.assertIn(value, text)
        self.assertGreater(pass_keys, 100)


if __name__ == "__main__":
    unittest.main()
