import pytest

from policies import SegmentInfo, count_segments
from policies.segments import is_gsm7, sms_text

EURO = "€"  # GSM-7 extension table: 2 septets
EMOJI = "😀"  # outside the BMP: a surrogate pair, 2 UTF-16 units


@pytest.mark.parametrize(
    ("text", "encoding", "segments", "units"),
    [
        ("", "GSM-7", 0, 0),
        ("a", "GSM-7", 1, 1),
        ("a" * 160, "GSM-7", 1, 160),
        ("a" * 161, "GSM-7", 2, 161),
        ("a" * 306, "GSM-7", 2, 306),
        ("a" * 307, "GSM-7", 3, 307),
        ("a" * 459, "GSM-7", 3, 459),
        ("a" * 460, "GSM-7", 4, 460),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./", "GSM-7", 1, 45),
        ("ÄÖÑÜ§¿äöñüà\n\r", "GSM-7", 1, 13),
        # extension characters count two septets
        (EURO, "GSM-7", 1, 2),
        (EURO * 80, "GSM-7", 1, 160),
        (EURO * 81, "GSM-7", 2, 162),
        ("{}[]~\\|^", "GSM-7", 1, 16),
        ("\f", "GSM-7", 1, 2),
        # 152 plain + € would straddle the 153 boundary: the escape pair moves to part two
        ("a" * 152 + EURO + "a" * 10, "GSM-7", 2, 164),
        # 152 + € + 151 = 305 septets would fit 2 parts of 153 if the pair could be split; it cannot
        ("a" * 152 + EURO + "a" * 152, "GSM-7", 3, 306),
        ("a" * 151 + EURO + "a" * 153, "GSM-7", 2, 306),
        # anything outside GSM-7 makes the whole text UCS-2
        ("가", "UCS-2", 1, 1),
        ("가" * 70, "UCS-2", 1, 70),
        ("가" * 71, "UCS-2", 2, 71),
        ("가" * 134, "UCS-2", 2, 134),
        ("가" * 135, "UCS-2", 3, 135),
        ("가" * 201, "UCS-2", 3, 201),
        ("가" * 202, "UCS-2", 4, 202),
        ("a" * 159 + "가", "UCS-2", 3, 160),
        ("Hello ç", "UCS-2", 1, 7),  # lowercase c-cedilla is not in the default GSM table
        ("`", "UCS-2", 1, 1),  # nor is the backtick
        (EMOJI, "UCS-2", 1, 2),
        (EMOJI * 35, "UCS-2", 1, 70),
        (EMOJI * 36, "UCS-2", 2, 72),
        # 66 units + a surrogate pair would straddle the 67 boundary: the pair moves on
        ("가" * 66 + EMOJI + "가" * 3, "UCS-2", 2, 71),
        ("가" * 66 + EMOJI + "가" * 66, "UCS-2", 3, 134),
        ("가" * 65 + EMOJI + "가" * 67, "UCS-2", 2, 134),
        ("\x1b", "UCS-2", 1, 1),  # a raw ESC is not sendable text
    ],
)
def test_count_segments(text, encoding, segments, units):
    assert count_segments(text) == SegmentInfo(encoding, segments, units)


def test_korean_71_characters_is_two_segments():
    body = "안녕하세요" * 14 + "요"
    assert len(body) == 71
    assert count_segments(body).segments == 2


@pytest.mark.parametrize("ch", list("{}[]~\\|^€"))
def test_every_extension_character_is_two_septets(ch):
    assert count_segments(ch).units == 2
    assert is_gsm7(ch)


def test_segments_agree_with_gsm0338_encoder_length():
    text = "Price: 5€ [promo] {code} ~50% off | A^B \\ ok"
    assert count_segments(text).units == len(text.encode("gsm03.38"))


@pytest.mark.parametrize(
    ("title", "body", "expected"),
    [("", "", ""), ("T", "", "T"), ("", "B", "B"), ("T", "B", "T\nB")],
)
def test_sms_text_joins_title_and_body(title, body, expected):
    assert sms_text(title, body) == expected
