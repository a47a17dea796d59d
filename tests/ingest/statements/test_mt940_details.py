"""The fast structured-`:86:` post-processor gives exactly what the `mt-940` library's own
gives, on every MT940 sample and on generated text (it replaces the library's step for speed)."""

from __future__ import annotations

import re

import mt940
from hypothesis import given, settings
from hypothesis import strategies as st
from mt940 import processors as library

from recon_pipeline.ingest.statements import mt940_details as fast
from tests import SAMPLES_DIR

SAMPLES = SAMPLES_DIR / "mt940"


class _Statement:
    """The one attribute the post-processor reads from the library's `Transactions`."""

    def __init__(self, options: mt940.Options):
        self.options = options


def _both(details: str, options: mt940.Options) -> tuple[dict, dict]:
    owner = _Statement(options)
    expected = library.transaction_details_post_processor(owner, None, {"transaction_details": details}, {"transaction_details": details})
    actual = fast.transaction_details_post_processor(owner, None, {"transaction_details": details}, {"transaction_details": details})
    return expected, actual


def _sample_details() -> list[str]:
    found = []
    for path in sorted(SAMPLES.glob("*/*")):
        if path.suffix in {".sta", ".txt", ".mt940"}:
            text = path.read_bytes().decode("latin-1")
            found += re.findall(r"(?ms)^:86:(.*?)(?=^:\d\d[A-Z]?:|\Z)", text)
    return found


def test_samples_hold_structured_details():
    details = _sample_details()
    assert len(details) > 20
    assert any(re.match(r"^\d{3}\?\d{2}", d) for d in details)


def test_every_sample_detail_parses_as_the_library_does():
    for options in (mt940.Options.all(), mt940.Options()):
        for details in _sample_details():
            expected, actual = _both(details, options)
            assert actual == expected, details
            assert list(actual) == list(expected)


_PIECES = st.sampled_from(["?", "+", "?20", "?00", "?31", "?32", "?33", "?61", "?2", "EREF+", "SVWZ+", "KREF+",
                           "IBAN+", "BIC ", " BIC", " IBAN", "\n", "\r\n", "A", "z", "0", "9", " ", "ü"])
_DETAILS = st.builds(lambda prefix, parts: prefix + "".join(parts),
                     st.sampled_from(["", "166?00", "835?20", "12?3"]), st.lists(_PIECES, max_size=25))


@settings(max_examples=1500, deadline=None)
@given(_DETAILS, st.booleans())
def test_generated_details_parse_as_the_library_does(details, all_options):
    expected, actual = _both(details, mt940.Options.all() if all_options else mt940.Options())
    assert actual == expected
    assert list(actual) == list(expected)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="?+0123456789 ABCEFIKNRSVWZ", max_size=40), st.booleans())
def test_segment_and_keyword_splitting_match_the_library(text, keep_leading_text):
    assert fast.parse_segments(text) == dict(library._parse_segments(text))
    assert list(fast.parse_segments(text)) == list(library._parse_segments(text))
    assert fast.parse_gvcodes(text, keep_leading_text=keep_leading_text) == library._parse_mt940_gvcodes(
        text, keep_leading_text=keep_leading_text)
