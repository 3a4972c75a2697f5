"""espeak-ng's English phoneme mnemonics -> common inventory.

The mnemonics are the names in espeak-ng's ``phsource/ph_english*`` files, as
reported by phoneme events. Some English mnemonics are two phones for the lips
(``A@`` is the vowel + r of "car" in American English), and the same mnemonic
is r-coloured in American and plain in British voices, so British voices apply
:data:`NON_RHOTIC` on top of the base table. An empty tuple means "no phone of
its own": its time goes to the previous phone (``;`` palatalises the one before).
"""
from __future__ import annotations

ESPEAK_TO_COMMON: dict[str, str | tuple[str, ...]] = {
    # consonants
    "p": "P", "b": "B", "m": "M", "f": "F", "v": "V", "T": "TH", "D": "DH",
    "t": "T", "d": "D", "n": "N", "t#": "T", "t2": "T", "d#": "D", "?": "T",  # flaps, glottal stop
    "l": "L", "l/": "L", "l/2": "L", "s": "S", "z": "Z", "z#": "Z", "z/2": "Z",
    "S": "SH", "Z": "ZH", "tS": "CH", "dZ": "JH",
    "k": "K", "g": "G", "N": "NG", "x": "K", "h": "HH",
    "r": "R", "r-": "R", "r/": "R", "w": "W", "W": "W", "j": "Y",
    "n-": ("AH", "N"), "m-": ("AH", "M"), "@L": ("AH", "L"),  # syllabic consonants
    ";": (),
    # vowels
    "a": "AE", "aa": "AE", "a#": "AH", "A:": "AA", "A": "AA", "0": "AA",
    "V": "AH", "@": "AH", "@2": "AH", "@5": "AH", "@-": "AH",
    "E": "EH", "e": "EH", "eI": "EY",
    "I": "IH", "I#": "IH", "I2": "IH", "i": "IY", "i:": "IY",
    "O": "AO", "O:": "AO", "O2": "AO", "OI": "OY",
    "U": "UH", "u:": "UW", "u": "UW", "oU": "OW", "o": "OW",
    "aI": "AY", "aU": "AW",
    "3": "ER", "3:": "ER",
    # American r-coloured vowels: vowel + r
    "A@": ("AA", "R"), "O@": ("AO", "R"), "o@": ("AO", "R"), "e@": ("EH", "R"),
    "i@3": ("IH", "R"), "U@": ("UH", "R"), "aI@": ("AY", "ER"), "aI3": ("AY", "ER"),
    "aU@": ("AW", "ER"), "i@": ("IY", "AH"),
}

# British (non-rhotic) readings of the r-coloured mnemonics above
NON_RHOTIC: dict[str, str | tuple[str, ...]] = {
    "3": "AH", "A@": "AA", "O@": "AO", "o@": "AO", "e@": ("EH", "AH"), "i@3": ("IH", "AH"),
    "U@": ("UH", "AH"), "aI@": ("AY", "AH"), "aI3": ("AY", "AH"), "aU@": ("AW", "AH"),
}

SILENT_MNEMONICS = frozenset({"_", "_:", "_!", "_|", "||", "_^_"})


def table_for(voice: str) -> dict[str, str | tuple[str, ...]]:
    """The mapping table for an espeak voice name (American voices keep the r)."""
    if voice.split("+")[0].lower().startswith("en-us"):
        return ESPEAK_TO_COMMON
    return {**ESPEAK_TO_COMMON, **NON_RHOTIC}
