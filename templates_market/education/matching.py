"""Course matching: a parent's words ("小升初数学", "编程启蒙") to the three best courses.

Chinese has no spaces, so text is cut the way search engines' CJK analysers cut
it: every run of Chinese characters into overlapping two-character words
(bigrams: 小升初数学 -> 小升 升初 初数 数学), every run of Latin letters or digits
into one lower-cased word. A course scores 3 for each of its keywords found
whole in the inquiry, plus 1 for each word it shares with the inquiry (its name
and keywords cut the same way). The three best courses with a score above zero
are proposed, best first, ties by course code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qiao.api import Record

KEYWORD_SEPARATORS = re.compile(r"[,，、;；\s/|]+")
RUNS = re.compile(r"[\u3400-\u9fff]+|[A-Za-z0-9]+")
#: Points for a course keyword found whole in the inquiry, and for each shared word.
KEYWORD_POINTS, WORD_POINTS = 3, 1


@dataclass(frozen=True)
class Match:
    """A course proposed for an inquiry: its score and the keywords that matched whole."""

    course: Record
    score: int
    keywords: tuple[str, ...]


def words(text: str) -> set[str]:
    """The bigrams of Chinese runs and the lower-cased Latin or digit runs of ``text``."""
    found: set[str] = set()
    for run in RUNS.findall(text):
        if run.isascii():
            found.add(run.lower())
        elif len(run) == 1:
            found.add(run)
        else:
            found.update(run[i : i + 2] for i in range(len(run) - 1))
    return found


def keywords(course: Record) -> tuple[str, ...]:
    """The course's declared keywords, in order, without blanks."""
    return tuple(k for k in KEYWORD_SEPARATORS.split(course.get("keywords") or "") if k)


def best_courses(text: str, courses: Iterable[Record], limit: int = 3) -> Sequence[Match]:
    """The ``limit`` courses that fit ``text`` best, best first."""
    asked = words(text)
    lowered = text.lower()
    matches = []
    for course in courses:
        whole = tuple(k for k in keywords(course) if k.lower() in lowered)
        offered = words(" ".join((course["name"], *keywords(course))))
        score = KEYWORD_POINTS * len(whole) + WORD_POINTS * len(asked & offered)
        if score > 0:
            matches.append(Match(course, score, whole))
    matches.sort(key=lambda m: (-m.score, m.course["code"]))
    return matches[:limit]
