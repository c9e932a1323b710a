"""Deterministic, template-driven story writer that keeps the prompt's own words on screen."""

from __future__ import annotations

import hashlib
import random
import re

from deepflix.stages.generators.base import Character, Scene, Story

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
        "{hero} is introduced amid {the_kw}, where an ordinary day is about to turn.",
        "We open on the world of {the_kw}; {hero} senses that {the_kw2} will change it.",
        "Quiet beginnings: {hero} and {ally} go about their lives near {the_kw}.",
    ),
    "rising": (
        "{hero} and {ally} push deeper toward {the_kw} as {rival} closes in.",
        "A setback with {the_kw} forces {hero} to rethink everything about {the_kw2}.",
        "Clues about {the_kw} pile up, and {rival} is never far behind.",
    ),
    "climax": (
        "Face to face with {rival}, {hero} risks it all for {the_kw}.",
        "Everything converges on {the_kw}: {hero} must act now or lose {the_kw2} forever.",
    ),
    "resolution": (
        "In the calm that follows, {hero} looks back on {the_kw} and what it cost.",
        "{hero} and {ally} stand before {the_kw}, changed for good.",
    ),
}

_NARRATIONS: dict[str, tuple[str, ...]] = {
    "setup": (
        "It all began with {the_kw}.",
        "Nobody expected much from {the_kw}.",
        "{hero} had always dreamed of {the_kw}.",
    ),
    "rising": (
        "Then {the_kw} changed everything.",
        "{hero} could not ignore {the_kw}.",
        "Every step led closer to {the_kw}.",
    ),
    "climax": ("Now or never: {the_kw}.", "{hero} made a choice about {the_kw}."),
    "resolution": (
        "And {the_kw} was never the same.",
        "{hero} finally understood {the_kw}.",
    ),
}

_NAMES = (
    "Ada", "Juno", "Milo", "Iris", "Theo", "Nova", "Ravi", "Lena", "Oskar", "Suki",
    "Emeka", "Priya", "Hugo", "Mara", "Kai", "Zora", "Felix", "Anya", "Tomas", "Wren",
)  # fmt: skip

_ROLES = ("protagonist", "ally", "rival", "mentor")

# Function words and filler verbs that never make a prompt's subject.
_STOPWORD_TEXT = """a an the and or but if then so of to in on at by for with from into onto over
under about after before through between against during without within upon as is are was were be
been being am do does did has have had will would can could should may might must this that these
those it its it's he she they them his her their our your my we you i me who whom which what when
where why how not no yes very just only also too than there here some any all each every one two
three four five six seven eight nine ten up down out off again once more most other such own same
while until because make makes made get gets got story film movie short tale whose learns learn
tries try finds find goes go comes come becomes become wants want"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())

# Words that open a noun phrase: what follows them is likely a noun or its adjective.
_OPENER_TEXT = """a an the his her their its our your my of on in at through across beyond inside
near under over into from with"""
_OPENERS = frozenset(_OPENER_TEXT.split())
_DETERMINER_TEXT = "a an the his her their its our your my"
_DETERMINERS = frozenset(_DETERMINER_TEXT.split())
_ADJ_ENDINGS = ("ly", "ous", "ful", "ive", "less", "ic", "al", "ish")
_MAX_NARRATION = 90
_HEAD_SCORE = 2.0  # only a head-noun bonus (2.5) lifts a word this high


def stable_hash(text: str) -> int:
    """A process-independent 63-bit hash (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


def keywords(prompt: str, limit: int = 6) -> list[str]:
    """Salient prompt words, most noun-like first, ties in order of appearance."""
    tokens = re.findall(r"[^\W\d_][\w'-]*|[.,;:!?]", prompt)
    scores: dict[str, float] = {}
    display: dict[str, str] = {}
    phrase: list[str] = []  # content words of the noun phrase being read
    in_phrase = True  # the prompt's opening words usually name its subject

    def close_phrase(boundary: str) -> None:
        # A run's last word right before a determiner is likely a verb ("keeper BEFRIENDS a").
        if len(phrase) > 1 and boundary in _DETERMINERS:
            phrase.pop()
        # The last content word of a phrase ("a lonely ROBOT") is its head noun.
        for i, w in enumerate(phrase):
            scores[w] += 2.5 if i == len(phrase) - 1 else 0.5
        phrase.clear()

    for pos, raw in enumerate([*tokens, "."]):
        clean = raw.strip("'-").removesuffix("'s")
        word = clean.lower()
        boundary = not clean.replace("'", "").replace("-", "").isalpha()
        if boundary or word in _OPENERS or word in _STOPWORDS:
            if phrase or boundary:
                close_phrase(word)
                in_phrase = False
            in_phrase = in_phrase or word in _OPENERS
            continue
        if len(word) < 3 and word.isascii():  # CJK words are often two characters
            continue
        if word not in scores:
            # Keep proper nouns capitalised ("Mars"), everything else lower case.
            display[word] = clean if clean[0].isupper() and pos > 0 else word
            scores[word] = min(len(word), 8) / 8 - (1.0 if word.endswith(_ADJ_ENDINGS) else 0.0)
        if in_phrase:
            phrase.append(word)
    order = {w: i for i, w in enumerate(display)}
    ranked = sorted(scores, key=lambda w: (-scores[w], order[w]))
    # Prefer head nouns; pad with the best other words so short prompts still vary.
    heads = [w for w in ranked if scores[w] >= _HEAD_SCORE]
    chosen = heads if len(heads) >= 3 else ranked[: max(3, len(heads))]
    return [display[w] for w in chosen[:limit]] or ["journey"]


def _the(word: str) -> str:
    """Article for a keyword: proper nouns ("Tokyo") go bare."""
    return word if word[:1].isupper() else f"the {word}"


def _title_case(text: str) -> str:
    small = {"of", "the", "and", "a"}
    words = text.split()
    return " ".join(
        w if (i and w in small) or w[:1].isupper() else w[:1].upper() + w[1:]
        for i, w in enumerate(words)
    )


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


def _premise(prompt: str) -> str:
    """The prompt itself as a clipped sentence, so the logline quotes the request."""
    text = " ".join(prompt.strip().rstrip(".!?").split())
    if not text:
        return "A story begins"
    return _clip(text[0].upper() + text[1:], 160)


class CpuStoryGenerator:
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
        rng = random.Random(seed ^ stable_hash(prompt))  # nosec B311 # seeded story from the request's seed, not a secret
        kws = keywords(prompt)
        characters = self._characters(rng, kws)
        names = [c.name for c in characters]
        hero, ally = names[0], names[1]
        rival = names[2] if len(names) > 2 else "the storm"
        scenes = [
            self._scene(rng, i, phase, kws, hero, ally, rival)
            for i, phase in enumerate(_phases(scene_count))
        ]
        final_title = title.strip() if title and title.strip() else self._title(rng, kws)
        logline = (
            f"{_premise(prompt)}. {hero} and {ally} must confront {rival} to save {_the(kws[0])}."
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
        a = _the(kws[0])
        if len(kws) == 1:
            options = (f"The Last {kws[0]}", kws[0], f"Beyond {a}")
        else:
            b = _the(kws[1])
            options = (f"{a} of {b}", f"{kws[0]} and {b}", f"{kws[0]} beyond {b}")
        return _title_case(rng.choice(options))

    @staticmethod
    def _characters(rng: random.Random, kws: list[str]) -> list[Character]:
        count = rng.randint(2, 4)
        names = rng.sample(_NAMES, count)
        subject = _the(kws[0])
        other = _the(kws[1] if len(kws) > 1 else kws[0])
        blurbs = {
            "protagonist": f"restless and brave, whose life turns on {subject}",
            "ally": f"a loyal friend who knows {other} better than anyone",
            "rival": f"who wants {subject} for reasons of their own",
            "mentor": f"an old hand who has seen {other} before",
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
        kw2 = kws[(index + 1) % len(kws)]
        fields = {
            "hero": hero,
            "ally": ally,
            "rival": rival,
            "the_kw": _the(kw),
            "the_kw2": _the(kw2),
        }
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
