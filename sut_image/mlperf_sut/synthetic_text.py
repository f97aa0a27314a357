"""Deterministic English-like text from a seed: the tiny tokenizer's training text and the tiny data set's articles."""
from __future__ import annotations

import random

_SYLLABLES = ("ka", "lo", "mi", "ran", "te", "su", "vo", "den", "pa", "ri", "no", "gal", "be", "tor", "shi", "um",
              "el", "dra", "fen", "qui", "mar", "os", "ti", "zen")
_COMMON = ("the", "a", "of", "to", "and", "in", "said", "on", "for", "was", "with", "that", "by", "at", "from",
           "police", "city", "year", "people", "government", "minister", "report", "new", "first", "told")


class TextGenerator:
    """Sentences of common words and invented names: enough variety for BPE merges, fully determined by the seed."""

    def __init__(self, seed: int, vocabulary_size: int = 400) -> None:
        self._rng = random.Random(seed)
        words = {"".join(self._rng.choice(_SYLLABLES) for _ in range(self._rng.randint(1, 3)))
                 for _ in range(vocabulary_size)}
        self._words = sorted(words) + list(_COMMON) * 8

    def sentence(self) -> str:
        words = [self._rng.choice(self._words) for _ in range(self._rng.randint(6, 18))]
        return " ".join(words).capitalize() + self._rng.choice((".", ".", ".", "!", "?"))

    def paragraph(self, sentences: int) -> str:
        return " ".join(self.sentence() for _ in range(sentences))
