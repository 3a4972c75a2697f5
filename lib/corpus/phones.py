"""The common phone inventory of the built-in corpus and its viseme classes.

Every TTS engine reports phones in its own alphabet (festival/flite: radio-style
ARPAbet in lower case, espeak-ng: its own mnemonics, piper: IPA); each engine's
adapter maps them onto this one inventory: the 39 ARPAbet phones of CMUdict
(no stress marks) plus ``sil`` for pauses. The face rig and the PPG model see
only this inventory.
"""
from __future__ import annotations

SIL = "sil"

# Viseme class of every phone: what the lips and jaw do while it is spoken.
PHONE_CLASS: dict[str, str] = {
    # consonants
    "P": "bilabial", "B": "bilabial", "M": "bilabial",
    "F": "labiodental", "V": "labiodental",
    "TH": "dental", "DH": "dental",
    "T": "alveolar", "D": "alveolar", "N": "alveolar",
    "L": "lateral",
    "S": "sibilant", "Z": "sibilant",
    "SH": "postalveolar", "ZH": "postalveolar", "CH": "postalveolar", "JH": "postalveolar",
    "K": "velar", "G": "velar", "NG": "velar",
    "HH": "glottal",
    "R": "rhotic",
    "W": "labial_glide",
    "Y": "palatal_glide",
    # vowels
    "AA": "open_vowel", "AE": "open_vowel", "AH": "open_vowel", "AW": "open_vowel", "AY": "open_vowel",
    "EH": "mid_vowel", "EY": "mid_vowel", "ER": "rhotic",
    "IY": "spread_vowel", "IH": "spread_vowel",
    "UW": "rounded_vowel", "UH": "rounded_vowel", "OW": "rounded_vowel", "OY": "rounded_vowel",
    "AO": "rounded_vowel",
    SIL: "silence",
}

PHONES: tuple[str, ...] = tuple(PHONE_CLASS)  # fixed order: index = PPG output dimension
PHONE_INDEX: dict[str, int] = {p: i for i, p in enumerate(PHONES)}
VISEME_CLASSES: tuple[str, ...] = tuple(dict.fromkeys(PHONE_CLASS.values()))
VOWELS = frozenset(p for p, c in PHONE_CLASS.items() if c.endswith("_vowel")) | {"ER"}

assert len(PHONES) == 40, "39 ARPAbet phones + sil"


def check_phone(phone: str) -> str:
    """Return ``phone`` if it is in the inventory, else raise naming it."""
    if phone not in PHONE_CLASS:
        raise ValueError(f"phone {phone!r} is not in the common inventory {PHONES}")
    return phone
