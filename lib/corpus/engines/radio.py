"""Festival's and flite's phone set (the "radio" ARPAbet, lower case) -> common inventory."""
from __future__ import annotations

from ..phones import SIL

_SAME = ("aa ae ah ao aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t th "
         "uh uw v w y z zh").split()

RADIO_TO_COMMON: dict[str, str | tuple[str, ...]] = {p: p.upper() for p in _SAME}
RADIO_TO_COMMON.update({
    "ax": "AH",  # schwa: CMUdict writes it AH0
    "axr": "ER",
    "ix": "IH",
    "ux": "UW",
    "dx": "T",  # flap ("butter"): CMUdict keeps the T
    "nx": "N",
    "hv": "HH",
    # syllabic consonants carry a schwa the lips still show
    "el": ("AH", "L"), "em": ("AH", "M"), "en": ("AH", "N"),
    "pau": SIL, "h#": SIL, "brth": SIL, "#": SIL,
})
