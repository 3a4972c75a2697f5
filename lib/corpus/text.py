"""English sentences for the built-in corpus: a seeded generator and a reader.

The generator fills the project's own sentence templates from the project's own
word lists. The vocabulary is chosen so that every viseme class of
:data:`lib.corpus.phones.PHONE_CLASS` turns up within a few dozen sentences
(bilabials "map", "bob"; labiodentals "five", "velvet"; dentals "the", "thick";
post-alveolars "church", "judge", "measure"; glides "water", "yellow"; ...),
so even a small corpus shows the face rig every mouth shape.
"""
from __future__ import annotations

import random
from pathlib import Path

from ..io import DataError

MIN_WORDS = 4
MAX_WORDS = 16

NAMES = (
    "Bob", "Maria", "Peter", "Judith", "Victor", "Thomas", "Sheila", "George", "Yolanda",
    "Walter", "Hannah", "Raymond", "Lucy", "Kevin", "Olivia", "Frank", "Zoe", "Charles",
    "Agnes", "Ethan", "Ursula", "Boris", "Martha", "Leonard",
)
DETERMINERS = ("the", "a", "my", "our", "that", "this", "every", "her", "his", "their")
ADJECTIVES = (
    "yellow", "heavy", "quiet", "brave", "cheap", "smooth", "thick", "purple", "gentle",
    "broken", "shiny", "warm", "ancient", "muddy", "lovely", "fresh", "huge", "tiny",
    "wooden", "golden", "bitter", "rusty", "soft", "clever", "noisy", "velvet", "orange",
    "beautiful", "awkward", "frozen", "pleasant", "shabby", "usual", "vivid", "royal",
)
NOUNS = (
    "map", "boat", "church", "judge", "garage", "pumpkin", "window", "fish", "valley",
    "thimble", "feather", "mother", "orchard", "engine", "kitchen", "bridge", "wagon",
    "measure", "shovel", "yacht", "pillow", "cabbage", "monkey", "violin", "jacket",
    "teacher", "hammer", "ladder", "mirror", "basket", "rabbit", "oyster", "cushion",
    "zebra", "doctor", "treasure", "youth", "thunder", "wheel", "puzzle", "cowboy",
    "tower", "lamp", "blanket", "beach", "soup", "guitar", "painting", "letter", "umbrella",
)
TRANSITIVE_PAST = (
    "painted", "found", "moved", "washed", "fixed", "pushed", "bought", "carried",
    "watched", "judged", "measured", "chose", "borrowed", "wrapped", "threw", "showed",
    "hid", "visited", "polished", "described", "opened", "caught", "loved", "mended",
)
TRANSITIVE_BASE = (
    "paint", "find", "move", "wash", "fix", "push", "buy", "carry", "watch", "judge",
    "measure", "choose", "borrow", "wrap", "throw", "show", "hide", "visit", "polish",
    "describe", "open", "catch", "love", "mend",
)
INTRANSITIVE_PAST = (
    "laughed", "slept", "waited", "shouted", "vanished", "smiled", "jumped", "whispered",
    "arrived", "yawned", "wobbled", "hurried", "breathed", "sang", "shivered", "worked",
)
ADVERBS = (
    "quietly", "happily", "yesterday", "again", "early", "badly", "very slowly",
    "with joy", "at home", "at noon", "for a while", "without a word", "together",
)
PREPOSITIONS = ("near", "behind", "under", "beside", "inside", "over", "through", "beyond", "toward")
MODALS = ("will", "can", "should", "might", "must", "could", "would")
TIMES = ("tomorrow", "today", "next week", "on Thursday", "by the evening", "in June", "at dawn")
CONNECTIVES = ("and", "but", "while", "because", "although", "so")
REPORTING = ("said that", "thought that", "knew that", "heard that", "believed that")


def _noun_phrase(rng: random.Random) -> str:
    """A name, or determiner + optional adjective(s) + noun."""
    if rng.random() < 0.25:
        return rng.choice(NAMES)
    words = [rng.choice(DETERMINERS)]
    for _ in range(rng.choice((0, 1, 1, 2))):
        words.append(rng.choice(ADJECTIVES))
    words.append(rng.choice(NOUNS))
    phrase = " ".join(words)
    # "a" before a vowel sound reads as "an": keep the text natural for the TTS voices.
    if phrase.startswith("a ") and (phrase[2] in "aeio" or phrase[2:5] == "umb"):
        phrase = "an" + phrase[1:]
    return phrase


def _place(rng: random.Random) -> str:
    return f"{rng.choice(PREPOSITIONS)} {_noun_phrase(rng)}"


def _clause(rng: random.Random) -> str:
    """A declarative clause without final punctuation."""
    kind = rng.randrange(4)
    if kind == 0:
        return f"{_noun_phrase(rng)} {rng.choice(TRANSITIVE_PAST)} {_noun_phrase(rng)}"
    if kind == 1:
        return f"{_noun_phrase(rng)} {rng.choice(TRANSITIVE_PAST)} {_noun_phrase(rng)} {_place(rng)}"
    if kind == 2:
        return f"{_noun_phrase(rng)} {rng.choice(INTRANSITIVE_PAST)} {rng.choice(ADVERBS)}"
    return (f"{_noun_phrase(rng)} {rng.choice(MODALS)} {rng.choice(TRANSITIVE_BASE)} "
            f"{_noun_phrase(rng)} {rng.choice(TIMES)}")


def _sentence(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind <= 1:
        text, end = _clause(rng), "."
    elif kind == 2:
        text, end = f"{_clause(rng)}, {rng.choice(CONNECTIVES)} {_clause(rng)}", "."
    elif kind == 3:
        text, end = f"{rng.choice(NAMES)} {rng.choice(REPORTING)} {_clause(rng)}", "."
    elif kind == 4:
        question = rng.choice(("did", "why did", "where did", "how did"))
        text, end = f"{question} {_noun_phrase(rng)} {rng.choice(TRANSITIVE_BASE)} {_noun_phrase(rng)}", "?"
    else:
        text, end = f"please {rng.choice(TRANSITIVE_BASE)} {_noun_phrase(rng)} {_place(rng)}", "."
    return text[0].upper() + text[1:] + end


def word_count(sentence: str) -> int:
    """Number of whitespace-separated words."""
    return len(sentence.split())


def generate_sentences(n: int, seed: int) -> list[str]:
    """``n`` distinct English sentences of 4-16 words, the same list for the same seed.

    Args:
        n: number of sentences (>= 0).
        seed: random seed; the list depends on nothing else.
    Returns:
        list of ``n`` sentences, each starting with a capital and ending in "." or "?".
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:  # the template space is huge; this only trips on a bug
            raise RuntimeError(f"could not generate {n} distinct sentences")
        sentence = _sentence(rng)
        if not MIN_WORDS <= word_count(sentence) <= MAX_WORDS or sentence in seen:
            continue
        seen.add(sentence)
        out.append(sentence)
    return out


def read_sentences(path: str | Path) -> list[str]:
    """Sentences from a UTF-8 text file, one per line; blank lines are skipped.

    Raises:
        DataError: the file cannot be read, is not UTF-8, or holds no sentence.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot read sentence file ({type(e).__name__}: {e})") from None
    sentences = [line.strip() for line in text.splitlines() if line.strip()]
    if not sentences:
        raise DataError(path, "sentence file holds no sentence (empty or only blank lines)")
    return sentences
