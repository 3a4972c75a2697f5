"""IPA (as espeak-ng writes it for piper voices) -> common inventory.

Piper reports one duration per IPA code point. Diphthongs, affricates and long
vowels span several code points ("eɪ", "tʃ", "ɑː"), so the symbols are first
grouped by longest match against :data:`IPA_TO_COMMON`. Symbols that are not
sounds of their own get their time folded into neighbours:
stress marks and word boundaries sit between two phones and give half their
time to each; length marks and diacritics belong to the phone before them.
Sentence punctuation and piper's begin/end symbols are pauses ("sil").
"""
from __future__ import annotations

from .base import PhoneMapError
from ..phones import PHONE_CLASS, SIL

IPA_TO_COMMON: dict[str, str | tuple[str, ...]] = {
    # multi-symbol units first in spirit: the tokenizer tries the longest key
    "eɪ": "EY", "aɪ": "AY", "aʊ": "AW", "oʊ": "OW", "əʊ": "OW", "ɔɪ": "OY",
    "tʃ": "CH", "dʒ": "JH",
    "ɑː": "AA", "ɒː": "AA", "ɜː": "ER", "iː": "IY", "uː": "UW", "ɔː": "AO", "oː": "OW", "ɛː": "EH",
    "eə": ("EH", "AH"), "ɪə": ("IH", "AH"), "ʊə": ("UH", "AH"),
    # consonants
    "p": "P", "b": "B", "m": "M", "f": "F", "v": "V", "θ": "TH", "ð": "DH",
    "t": "T", "d": "D", "n": "N", "ɾ": "T", "ʔ": "T", "l": "L", "ɫ": "L", "ɬ": "L",
    "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH",
    "k": "K", "g": "G", "ɡ": "G", "ŋ": "NG", "x": "K", "h": "HH", "ç": "HH",
    "ɹ": "R", "r": "R", "ɻ": "R", "w": "W", "ʍ": "W", "j": "Y",
    # vowels
    "æ": "AE", "a": "AE", "ɐ": "AH", "ə": "AH", "ʌ": "AH", "ɑ": "AA", "ɒ": "AA", "ɔ": "AO",
    "ɛ": "EH", "e": "EH", "ɪ": "IH", "ᵻ": "IH", "ɨ": "IH", "i": "IY", "ʊ": "UH", "u": "UW",
    "o": "OW", "ɚ": "ER", "ɜ": "ER", "ɝ": "ER",
}
FOLD_BOTH = frozenset({"ˈ", "ˌ", " "})  # between phones: half to each neighbour
FOLD_PREVIOUS = frozenset({"ː", "ˑ", "ʲ", "ʰ", "˞", "\u0329", "\u0303", "\u032f", "\u0361"})
SILENT = frozenset({"^", "$", "_", ".", ",", "?", "!", ";", ":", "…", "—", "-", "\"", "(", ")"})
_MAX_KEY = max(map(len, IPA_TO_COMMON))


def ipa_segments(engine: str, symbols: list[tuple[str, float, float]],
                 context: str = "") -> list[tuple[str, float, float]]:
    """(IPA symbol, start_s, end_s) per code point -> contiguous common-inventory segments."""
    units: list[list] = []  # [kind, phones, start, end]; kind: "phone" | "both"
    i = 0
    while i < len(symbols):
        sym, start, end = symbols[i]
        if sym in SILENT:
            units.append(["phone", (SIL,), start, end])
            i += 1
            continue
        if sym in FOLD_BOTH:
            units.append(["both", (), start, end])
            i += 1
            continue
        if sym in FOLD_PREVIOUS:
            if units:
                units[-1][3] = end
            else:
                units.append(["phone", (SIL,), start, end])
            i += 1
            continue
        for n in range(min(_MAX_KEY, len(symbols) - i), 0, -1):  # longest match
            key = "".join(s for s, _, _ in symbols[i:i + n])
            if key in IPA_TO_COMMON:
                mapped = IPA_TO_COMMON[key]
                phones = (mapped,) if isinstance(mapped, str) else tuple(mapped)
                units.append(["phone", phones, start, symbols[i + n - 1][2]])
                i += n
                break
        else:
            raise PhoneMapError(engine, sym, context)
    return _fold(units)


def _fold(units: list[list]) -> list[tuple[str, float, float]]:
    """Give each "both" unit's time to its neighbours, then split multi-phone units."""
    for k, unit in enumerate(units):
        if unit[0] != "both":
            continue
        prev = next((u for u in reversed(units[:k]) if u[0] == "phone"), None)
        nxt = next((u for u in units[k + 1:] if u[0] == "phone"), None)
        mid = (unit[2] + unit[3]) / 2
        if prev is not None and nxt is not None:
            prev[3], nxt[2] = mid, mid
        elif prev is not None:
            prev[3] = unit[3]
        elif nxt is not None:
            nxt[2] = unit[2]
    out: list[tuple[str, float, float]] = []
    phone_units = [u for u in units if u[0] == "phone"]
    if not phone_units and units:
        return [(SIL, units[0][2], units[-1][3])]
    for _, phones, start, end in phone_units:
        n = len(phones)
        for j, p in enumerate(phones):
            assert p in PHONE_CLASS, p
            out.append((p, start + (end - start) * j / n, start + (end - start) * (j + 1) / n))
    return out
