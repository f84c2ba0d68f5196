"""Intent tagging: how eager a lead is, and what kind of customer, from its own words.

A keyword dictionary (YAML, per template; the plugin ships one for
manufacturing) lists intent keywords with weights, negative keywords and
category keywords. Text is segmented with jieba, whose vocabulary is extended
with every keyword of the dictionary, so "急需液压阀样品" splits into 急需 /
液压阀 / 样品 and scores as urgent, industrial and asking for samples. Other
classifiers come from plugins through the ``qiao_classify_lead`` hook; their
results are combined with this one (highest score, union of tags).
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from qiao.api import ConfigurationError, normalise_width

DEFAULT_DICTIONARY = Path(__file__).with_name("dictionaries") / "manufacturing.yaml"
#: Lead fields whose text is classified.
TEXT_FIELDS = ("description", "company", "industry")
#: Segmented text parts kept per classifier (a plain dict, emptied when full).
_CUT_CACHE = 10_000


def _new_tokenizer() -> Any:
    """A jieba tokenizer of our own (its global one is shared by everything in the process).

    jieba 0.42 imports and uses ``pkg_resources`` to find its dictionary, which
    warns on current setuptools; those warnings are about jieba, not about us.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jieba = importlib.import_module("jieba")
        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
    return tokenizer


@dataclass(frozen=True)
class Classification:
    """A 0-100 intent score and the tags that explain it."""

    score: int
    tags: tuple[str, ...]


class KeywordClassifier:
    """Scores text with one keyword dictionary; safe to share between threads once built."""

    def __init__(self, dictionary: Mapping[str, Any], name: str = "dictionary") -> None:
        try:
            self.base = int(dictionary.get("base_score", 0))
            self.levels = [(str(x["tag"]), int(x["min_score"])) for x in dictionary["levels"]]
            self.intent = {_norm(k): int(v) for k, v in (dictionary.get("intent") or {}).items()}
            self.negative = {
                _norm(k): int(v) for k, v in (dictionary.get("negative") or {}).items()
            }
            self.categories = {
                _norm(word): str(tag)
                for tag, words in (dictionary.get("categories") or {}).items()
                for word in words
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"intent dictionary {name}: {exc!r} is malformed") from None
        self.levels.sort(key=lambda level: -level[1])
        self._tokenizer = _new_tokenizer()
        self._cuts: dict[str, tuple[str, ...]] = {}
        for word in (*self.intent, *self.negative, *self.categories):
            # A high frequency makes the segmenter prefer the whole keyword.
            self._tokenizer.add_word(word, freq=100_000)

    @classmethod
    def from_file(cls, path: Path) -> KeywordClassifier:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read intent dictionary {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"intent dictionary {path} is not a mapping")
        return cls(data, str(path))

    def words(self, text: str) -> list[str]:
        # The segmenter cuts at whitespace anyway; cutting each part alone gives the same
        # words and lets repeated parts (a form's stock phrases, an import's industry) be
        # looked up rather than segmented again.
        return [w for part in _norm(text).split() for w in self._cut(part)]

    def _cut(self, part: str) -> tuple[str, ...]:
        found = self._cuts.get(part)
        if found is None:
            found = tuple(w for w in self._tokenizer.lcut(part) if w.strip())
            if len(self._cuts) >= _CUT_CACHE:
                self._cuts.clear()
            self._cuts[part] = found
        return found

    def classify(self, text: str) -> Classification:
        words = self.words(text)
        score = self.base
        tags: list[str] = []
        for word in dict.fromkeys(words):
            score += self.intent.get(word, 0) - self.negative.get(word, 0)
            category = self.categories.get(word)
            if category and category not in tags:
                tags.append(category)
        score = max(0, min(100, score))
        level = next((tag for tag, minimum in self.levels if score >= minimum), None)
        return Classification(score, tuple([level, *tags] if level else tags))


def lead_text(values: Mapping[str, Any]) -> str:
    """The words a lead was written with: its description, company and industry."""
    return " ".join(str(values[f]) for f in TEXT_FIELDS if values.get(f))


def combine(results: Iterable[tuple[int, Sequence[str]] | None]) -> Classification | None:
    """Several classifiers' opinions as one: the highest score, every tag once."""
    found = [r for r in results if r is not None]
    if not found:
        return None
    tags = dict.fromkeys(tag for _, ts in found for tag in ts)
    return Classification(max(0, min(100, max(int(s) for s, _ in found))), tuple(tags))


def _norm(text: str) -> str:
    return normalise_width(str(text)).lower()
