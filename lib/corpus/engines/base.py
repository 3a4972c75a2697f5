"""What every TTS engine adapter returns, and the phone-mapping error.

An engine adapter turns text into audio at the engine's own sample rate plus
phone segments already mapped onto the common inventory
(:mod:`lib.corpus.phones`). :mod:`lib.corpus.voices` then resamples to 16 kHz
and checks/normalises the segments (leading/trailing silence, contiguity).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..phones import PHONE_CLASS, SIL


class PhoneMapError(ValueError):
    """An engine reported a phone symbol that no table maps: names engine and symbol."""

    def __init__(self, engine: str, symbol: str, context: str = ""):
        self.engine, self.symbol = engine, symbol
        where = f" in {context!r}" if context else ""
        super().__init__(f"{engine}: phone symbol {symbol!r}{where} has no mapping to the common inventory")


class EngineError(RuntimeError):
    """The engine failed or returned something unusable (message names engine and voice)."""


@dataclass
class RawSynthesis:
    """Engine output before resampling and segment normalisation.

    wav: (samples,) float32 in [-1, 1] at ``sample_rate_hz``.
    phones: (phone, start_s, end_s) in time order, phones in the common inventory.
    """

    wav: np.ndarray
    sample_rate_hz: int
    phones: list[tuple[str, float, float]]


def map_symbol(engine: str, table: dict[str, str | tuple[str, ...]], symbol: str,
               context: str = "") -> tuple[str, ...]:
    """Common-inventory phones for one engine symbol (a tuple: some symbols are two phones).

    Raises PhoneMapError for a symbol not in ``table``; an empty tuple means "no phone"
    (the caller folds the duration into a neighbour).
    """
    if symbol not in table:
        raise PhoneMapError(engine, symbol, context)
    mapped = table[symbol]
    phones = (mapped,) if isinstance(mapped, str) else tuple(mapped)
    for p in phones:
        if p not in PHONE_CLASS:  # a typo in a table must fail loudly, not reach the rig
            raise PhoneMapError(engine, f"{symbol}->{p}", "mapping table")
    return phones


def split_segment(phones: tuple[str, ...], start_s: float, end_s: float) -> list[tuple[str, float, float]]:
    """Spread one engine segment evenly over the phones it maps to (e.g. syllabic 'el' -> AH L)."""
    n = len(phones)
    edges = [start_s + (end_s - start_s) * i / n for i in range(n + 1)]
    return [(p, edges[i], edges[i + 1]) for i, p in enumerate(phones)]


def segments_from_ends(engine: str, table: dict[str, str | tuple[str, ...]],
                       items: list[tuple[str, float]], context: str = "") -> list[tuple[str, float, float]]:
    """(symbol, end_s) items, each starting where the previous ended, -> mapped segments."""
    out: list[tuple[str, float, float]] = []
    start = 0.0
    for symbol, end in items:
        end = max(end, start)  # engines round end times; never let a segment run backwards
        phones = map_symbol(engine, table, symbol, context)
        if phones:
            out.extend(split_segment(phones, start, end))
        elif out:  # a symbol with no phone of its own: its time belongs to the previous phone
            out[-1] = (out[-1][0], out[-1][1], end)
        else:
            out.append((SIL, start, end))
        start = end
    return out
