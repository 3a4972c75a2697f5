"""Sentence generator and TTS voices of the built-in corpus.

Engine tests skip (with the reason) when an engine is not installed here.
Timings are checked against the audio itself: pauses the engine reports must be
much quieter than the phones it reports as spoken.
"""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from lib.corpus.engines import engine_module
from lib.corpus.engines.base import PhoneMapError, map_symbol
from lib.corpus.engines.espeak_phones import ESPEAK_TO_COMMON, NON_RHOTIC
from lib.corpus.engines.ipa import IPA_TO_COMMON, ipa_segments
from lib.corpus.engines.radio import RADIO_TO_COMMON
from lib.corpus.phones import PHONE_CLASS, SIL, VISEME_CLASSES
from lib.corpus.text import MAX_WORDS, MIN_WORDS, generate_sentences, read_sentences, word_count
from lib.corpus.voices import (Synthesis, VoiceSpec, list_voices, normalize_segments, parse_voice,
                               synthesize)
from lib.io import DataError

SR = 16000
ONE_VOICE_PER_ENGINE = ["festival:kal_diphone", "flite:kal16", "espeak:en-us", "piper:joe"]
BILABIAL_TEXT = "Bob drew a map of the harbour."


def _require(spec: VoiceSpec) -> None:
    have = engine_module(spec.engine).installed_voices()
    if isinstance(have, str):
        pytest.skip(have)
    if spec.voice.split("+")[0] not in have:
        pytest.skip(f"{spec.engine} voice {spec.voice} not installed")


_cache: dict[tuple[str, str], Synthesis] = {}


def _speak(voice: str, text: str = BILABIAL_TEXT) -> Synthesis:
    spec = parse_voice(voice)
    _require(spec)
    if (voice, text) not in _cache:
        _cache[voice, text] = synthesize(spec, text)
    return _cache[voice, text]


def _check_tiling(syn: Synthesis) -> None:
    """Phones tile [0, duration] exactly, in the inventory, no empty segments."""
    phones = syn.phones
    assert phones[0][1] == 0.0
    assert phones[-1][2] == pytest.approx(syn.duration_s, abs=1e-9)
    for (_, _, end), (_, start, _) in zip(phones, phones[1:]):
        assert start == pytest.approx(end, abs=1e-9)
    for phone, start, end in phones:
        assert phone in PHONE_CLASS
        assert end > start
    for (a, _, _), (b, _, _) in zip(phones, phones[1:]):
        assert not (a == b == SIL), "adjacent pauses must be merged"


# ----------------------------------------------------------------------------- text
def test_generator_is_deterministic_and_seeded():
    a = generate_sentences(80, seed=3)
    assert a == generate_sentences(80, seed=3)
    assert a != generate_sentences(80, seed=4)
    assert generate_sentences(30, seed=3) == a[:30]  # a longer list extends a shorter one
    assert len(set(a)) == len(a)
    for s in a:
        assert MIN_WORDS <= word_count(s) <= MAX_WORDS, s
        assert s[0].isupper() and s[-1] in ".?", s
    assert generate_sentences(0, seed=1) == []


def test_read_sentences(tmp_path):
    good = tmp_path / "s.txt"
    good.write_text("First one here.\n\n   \n  Second line  \n", encoding="utf-8")
    assert read_sentences(good) == ["First one here.", "Second line"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt"):
        read_sentences(empty)
    with pytest.raises(DataError, match="missing.txt"):
        read_sentences(tmp_path / "missing.txt")


# ----------------------------------------------------------------------------- specs
def test_voice_spec_parse_and_name():
    spec = parse_voice("espeak:en-us+m3@0.75")
    assert spec == VoiceSpec("espeak", "en-us+m3", 0.75)
    assert parse_voice(str(spec)) == spec
    assert parse_voice("festival:kal_diphone").name == "festival_kal_diphone"
    for s in [spec] + [parse_voice(v) for v in ONE_VOICE_PER_ENGINE]:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", s.name), s.name
    assert spec.name != VoiceSpec("espeak", "en-us+m3").name
    for bad in ["kal_diphone", "nosuch:voice", "flite:", "flite:slt@0", "flite:slt@fast"]:
        with pytest.raises(ValueError):
            parse_voice(bad)


def test_list_voices_skips_missing_with_warning():
    fake = VoiceSpec("flite", "no_such_voice_xyz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = list_voices([fake])
    assert found == []
    assert any("no_such_voice_xyz" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for spec in list_voices():  # whatever is installed: never raises
            assert isinstance(spec, VoiceSpec)


# ----------------------------------------------------------------------------- phone tables
def test_tables_map_into_inventory():
    for engine, table in [("radio", RADIO_TO_COMMON), ("espeak", ESPEAK_TO_COMMON),
                          ("espeak-gb", NON_RHOTIC), ("ipa", IPA_TO_COMMON)]:
        for symbol in table:
            for p in map_symbol(engine, table, symbol):
                assert p in PHONE_CLASS


def test_unmapped_symbol_names_engine_and_symbol():
    with pytest.raises(PhoneMapError, match=r"flite.*'qq'"):
        map_symbol("flite", RADIO_TO_COMMON, "qq")
    with pytest.raises(PhoneMapError, match="piper.*'ʘ'"):
        ipa_segments("piper", [("^", 0.0, 0.1), ("ʘ", 0.1, 0.2)])


def test_ipa_grouping_and_folding():
    # "tʃˈeɪ" + boundary: affricate and diphthong are one phone each; the stress
    # mark's time is split between its neighbours; the length mark joins its vowel.
    syms = [("^", 0.0, 0.1), ("t", 0.1, 0.2), ("ʃ", 0.2, 0.3), ("ˈ", 0.3, 0.4), ("e", 0.4, 0.5),
            ("ɪ", 0.5, 0.6), (" ", 0.6, 0.7), ("ɑ", 0.7, 0.8), ("ː", 0.8, 0.9), (".", 0.9, 1.0)]
    out = ipa_segments("piper", syms)
    assert [p for p, _, _ in out] == [SIL, "CH", "EY", "AA", SIL]
    assert out[1][1:] == pytest.approx((0.1, 0.35))
    assert out[2][1:] == pytest.approx((0.35, 0.65))
    assert out[3][1:] == pytest.approx((0.65, 0.9))


def test_normalize_segments_tiles_the_clip():
    out = normalize_segments([("B", 0.1, 0.2), (SIL, 0.2, 0.3), (SIL, 0.3, 0.5), ("AA", 0.5, 0.58)], 0.6)
    assert out == [(SIL, 0.0, 0.1), ("B", 0.1, 0.2), (SIL, 0.2, 0.5), ("AA", 0.5, 0.6)]
    # a final pause running past the audio (diphone voices) is cut at the audio's end
    out = normalize_segments([("B", 0.0, 0.2), (SIL, 0.2, 0.9)], 0.6)
    assert out == [("B", 0.0, 0.2), (SIL, 0.2, 0.6)]
    # a long unreported tail becomes a pause
    assert normalize_segments([("B", 0.0, 0.2)], 0.6)[-1] == (SIL, 0.2, 0.6)
    with pytest.raises(Exception, match="past the audio"):
        normalize_segments([("B", 0.0, 0.7)], 0.6)
    with pytest.raises(Exception, match="overlap"):
        normalize_segments([("B", 0.0, 0.3), ("AA", 0.1, 0.4)], 0.6)


# ----------------------------------------------------------------------------- engines
@pytest.mark.parametrize("voice", ONE_VOICE_PER_ENGINE)
def test_engine_output(voice):
    syn = _speak(voice)
    assert syn.sample_rate_hz == SR
    assert syn.wav.dtype == np.float32 and syn.wav.ndim == 1 and len(syn.wav) > SR // 2
    assert np.all(np.isfinite(syn.wav)) and np.abs(syn.wav).max() <= 1.0
    assert np.abs(syn.wav).max() > 0.01
    _check_tiling(syn)
    spoken = [p for p, _, _ in syn.phones if p != SIL]
    assert {"B", "M", "P"} & set(spoken) and spoken.count("B") >= 2  # "Bob"
    # Timing agrees with the audio: reported pauses are far quieter than speech.
    def rms(kind_sil: bool) -> float:
        parts = [syn.wav[int(a * SR):int(b * SR)] for p, a, b in syn.phones if (p == SIL) == kind_sil]
        parts = [x for x in parts if len(x) > 80]
        return float(np.sqrt(np.mean(np.concatenate(parts) ** 2))) if parts else 0.0
    assert rms(True) < 0.3 * rms(False)


@pytest.mark.parametrize("voice", ["espeak:en-us", "flite:kal16", "festival:kal_diphone",
                                   "festival:cmu_us_slt_arctic_hts", "piper:joe"])
def test_rate_changes_duration(voice):
    fast = parse_voice(voice + "@1.5")
    _require(fast)
    slow = synthesize(VoiceSpec(fast.engine, fast.voice, 0.7), BILABIAL_TEXT)
    quick = synthesize(fast, BILABIAL_TEXT)
    assert quick.duration_s < 0.85 * slow.duration_s


def test_voices_differ_in_duration():
    # piper left out: its durations are random draws and may hit another voice's length
    deterministic = [v for v in ONE_VOICE_PER_ENGINE if not v.startswith("piper")] + ["espeak:en-us@0.75"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        specs = list_voices([parse_voice(v) for v in deterministic])
    if len(specs) < 2:
        pytest.skip("fewer than two TTS voices installed")
    lengths = [len(_speak(str(s)).wav) for s in specs]
    assert len(set(lengths)) == len(lengths)


def test_viseme_coverage_over_60_sentences():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        specs = list_voices([parse_voice("espeak:en-us"), parse_voice("flite:kal16")])
    if not specs:
        pytest.skip("neither espeak-ng nor flite installed")
    seen = set()
    for sentence in generate_sentences(60, seed=0):
        seen |= {PHONE_CLASS[p] for p, _, _ in synthesize(specs[0], sentence).phones}
    assert seen == set(VISEME_CLASSES)
