"""Deterministic, template-driven story writer that keeps the prompt's own words on screen."""

from __future__ import annotations

import hashlib
import random
import re

from deepflix.stages.base import Character, Scene, Story

MOODS = ("hopeful", "tense", "mysterious", "joyful", "melancholic", "triumphant")

# Mood choices per arc phase; the first entry of each tuple is the most likely pick.
_PHASE_MOODS: dict[str, tuple[str, ...]] = {
    "setup": ("hopeful", "mysterious", "joyful"),
    "rising": ("tense", "mysterious", "melancholic"),
    "climax": ("tense", "triumphant"),
    "resolution": ("triumphant", "joyful", "hopeful", "melancholic"),
}

_TIME_OF_DAY = {
    "hopeful": "DAWN",
    "tense": "DUSK",
    "mysterious": "NIGHT",
    "joyful": "DAY",
    "melancholic": "LATE AFTERNOON",
    "triumphant": "SUNRISE",
}

_SHOTS: dict[str, tuple[str, ...]] = {
    "setup": ("wide establishing shot, slow push-in", "aerial wide shot, gentle drift right"),
    "rising": ("medium tracking shot, handheld", "over-the-shoulder shot, slow pan left"),
    "climax": ("low-angle close-up, fast push-in", "dutch-angle medium shot, quick pan"),
    "resolution": ("wide shot, slow pull-back", "close-up, soft rack focus, slow zoom out"),
}

_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "setup": (
        "{hero} is introduced amid the {kw}, where the story of {topic} quietly begins.",
        "We open on the world of the {kw}; {hero} senses that {topic} is about to change it.",
    ),
    "rising": (
        "{hero} and {ally} push deeper toward the {kw} as {rival} closes in.",
        "A setback with the {kw} forces {hero} to rethink everything about {topic}.",
    ),
    "climax": (
        "Face to face with {rival}, {hero} risks it all for the {kw}.",
        "Everything converges on the {kw}: {hero} must act now or lose {topic} forever.",
    ),
    "resolution": (
        "In the calm that follows, {hero} looks back on the {kw} and what {topic} meant.",
        "{hero} and {ally} stand before the {kw}, changed for good.",
    ),
}

_NARRATIONS: dict[str, tuple[str, ...]] = {
    "setup": ("It all began with the {kw}.", "Nobody expected much from the {kw}."),
    "rising": ("Then the {kw} changed everything.", "{hero} could not ignore the {kw}."),
    "climax": ("Now or never: the {kw}.", "{hero} made a choice about the {kw}."),
    "resolution": ("And the {kw} was never the same.", "{hero} finally understood the {kw}."),
}

_NAMES = (
    "Ada", "Juno", "Milo", "Iris", "Theo", "Nova", "Ravi", "Lena", "Oskar", "Suki",
    "Emeka", "Priya", "Hugo", "Mara", "Kai", "Zora", "Felix", "Anya", "Tomas", "Wren",
)  # fmt: skip

_ROLES = ("protagonist", "ally", "rival", "mentor")

# Function words and filler verbs that never make a prompt's subject.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "about",
        "after",
        "before",
        "through",
        "between",
        "against",
        "during",
        "without",
        "within",
        "upon",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "has",
        "have",
        "had",
        "will",
        "would",
        "can",
        "could",
        "should",
        "may",
        "might",
        "must",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "it's",
        "he",
        "she",
        "they",
        "them",
        "his",
        "her",
        "their",
        "our",
        "your",
        "my",
        "we",
        "you",
        "i",
        "me",
        "who",
        "whom",
        "which",
        "what",
        "when",
        "where",
        "why",
        "how",
        "not",
        "no",
        "yes",
        "very",
        "just",
        "only",
        "also",
        "too",
        "than",
        "there",
        "here",
        "some",
        "any",
        "all",
        "each",
        "every",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "up",
        "down",
        "out",
        "off",
        "again",
        "once",
        "more",
        "most",
        "other",
        "such",
        "own",
        "same",
        "while",
        "until",
        "because",
        "make",
        "makes",
        "made",
        "get",
        "gets",
        "got",
        "story",
        "film",
        "movie",
        "short",
        "tale",
        "about",
        "who",
        "whose",
        "learns",
        "learn",
        "tries",
        "try",
        "finds",
        "find",
        "goes",
        "go",
        "comes",
        "come",
        "becomes",
        "become",
        "must",
        "wants",
        "want",
    ]
)

_DETERMINERS = frozenset(
    ["a", "an", "the", "his", "her", "their", "its", "our", "your", "my", "of"]
)
_MAX_NARRATION = 90


def stable_hash(text: str) -> int:
    """A process-independent 63-bit hash (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


def keywords(prompt: str, limit: int = 6) -> list[str]:
    """Salient prompt words, most noun-like first, ties in order of appearance."""
    tokens = re.findall(r"[A-Za-z][A-Za-z'-]*", prompt)
    scored: dict[str, tuple[float, int]] = {}
    display: dict[str, str] = {}
    for pos, raw in enumerate(tokens):
        word = raw.strip("'-").lower()
        if len(word) < 3 or word in _STOPWORDS or word in scored:
            continue
        # Keep proper nouns capitalised ("Mars"), everything else lower case.
        display[word] = raw.strip("'-") if raw[0].isupper() and pos > 0 else word
        score = min(len(word), 8) / 8
        # A word shortly after a determiner is most likely a noun (or its adjective).
        if pos > 0 and tokens[pos - 1].lower() in _DETERMINERS:
            score += 2.0
        elif pos > 1 and tokens[pos - 2].lower() in _DETERMINERS:
            score += 1.5
        if raw[0].isupper() and pos > 0:
            score += 1.0
        scored[word] = (score, pos)
    ranked = sorted(scored, key=lambda w: (-scored[w][0], scored[w][1]))
    return [display[w] for w in ranked[:limit]] or ["journey"]


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def _phases(n: int) -> list[str]:
    """Arc phase per scene: setup, rising action, climax, resolution."""
    if n == 1:
        return ["setup"]
    if n == 2:
        return ["setup", "resolution"]
    if n == 3:
        return ["setup", "climax", "resolution"]
    setup = max(1, n // 5)
    return ["setup"] * setup + ["rising"] * (n - setup - 2) + ["climax", "resolution"]


def _topic(prompt: str) -> str:
    text = " ".join(prompt.strip().rstrip(".!?").split())
    if not text:
        return "the unknown"
    # Lower-case a leading capital ("A robot" -> "a robot") but not an acronym ("NASA").
    if len(text) > 1 and text[1].islower():
        text = text[0].lower() + text[1:]
    return _clip(text, 60)


class LocalStoryGenerator:
    """Builds a structured story from templates, seeded by (seed, prompt)."""

    def __init__(self, scene_seconds: float = 3.0) -> None:
        if scene_seconds <= 0:
            raise ValueError("scene_seconds must be positive")
        self.scene_seconds = scene_seconds

    def write_story(
        self, *, prompt: str, title: str | None, style: str, scene_count: int, seed: int
    ) -> Story:
        if scene_count < 1:
            raise ValueError("scene_count must be at least 1")
        rng = random.Random(seed ^ stable_hash(prompt))
        kws = keywords(prompt)
        topic = _topic(prompt)
        characters = self._characters(rng, kws)
        names = [c.name for c in characters]
        hero, ally = names[0], names[1]
        rival = names[2] if len(names) > 2 else "the storm"
        scenes = [
            self._scene(rng, i, phase, kws, topic, hero, ally, rival)
            for i, phase in enumerate(_phases(scene_count))
        ]
        final_title = title.strip() if title and title.strip() else self._title(rng, kws)
        logline = _clip(
            f"In a tale of {topic}, {hero} and {ally} must confront {rival} "
            f"to save the {kws[0]}.",
            240,
        )
        return Story(
            prompt=prompt,
            title=final_title,
            logline=logline,
            style=style,
            seed=seed,
            characters=characters,
            scenes=scenes,
        )

    @staticmethod
    def _title(rng: random.Random, kws: list[str]) -> str:
        a = kws[0].title()
        b = kws[1].title() if len(kws) > 1 else "Tomorrow"
        pattern = rng.choice(("The {a} of {b}", "{a} and the {b}", "The Last {a}", "{a}"))
        return pattern.format(a=a, b=b)

    @staticmethod
    def _characters(rng: random.Random, kws: list[str]) -> list[Character]:
        count = rng.randint(2, 4)
        names = rng.sample(_NAMES, count)
        subject = kws[0]
        other = kws[1] if len(kws) > 1 else subject
        blurbs = {
            "protagonist": f"at the heart of the story of the {subject}, restless and brave",
            "ally": f"a loyal friend who knows the {other} better than anyone",
            "rival": f"who wants the {subject} for reasons of their own",
            "mentor": f"an old hand who has seen the {other} before",
        }
        return [
            Character(name=name, role=role, description=f"{name}, {blurbs[role]}.")
            for name, role in zip(names, _ROLES, strict=False)
        ]

    def _scene(
        self,
        rng: random.Random,
        index: int,
        phase: str,
        kws: list[str],
        topic: str,
        hero: str,
        ally: str,
        rival: str,
    ) -> Scene:
        moods = _PHASE_MOODS[phase]
        # Weighted toward the phase's signature mood so the arc reads clearly.
        mood = moods[0] if rng.random() < 0.5 else rng.choice(moods)
        kw = kws[index % len(kws)]
        place = "INT." if rng.random() < 0.3 else "EXT."
        heading = f"{place} {kw.upper()} - {_TIME_OF_DAY[mood]}"
        fields = {"hero": hero, "ally": ally, "rival": rival, "kw": kw, "topic": topic}
        description = rng.choice(_DESCRIPTIONS[phase]).format(**fields)
        narration = _clip(rng.choice(_NARRATIONS[phase]).format(**fields), _MAX_NARRATION)
        return Scene(
            index=index,
            heading=heading,
            description=description,
            narration=narration,
            shot=rng.choice(_SHOTS[phase]),
            mood=mood,
            duration_s=self.scene_seconds,
        )
