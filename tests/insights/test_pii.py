"""PII scrubbing: every kind, in Japanese and ASCII forms, with full-width digits."""
import pytest

from helpdesk.insights.pii import scrub

NAMES = ["山田 太郎", "Taro Yamada"]


@pytest.mark.parametrize("text, placeholder, gone", [
    ("山田太郎です", "[氏名]", "山田"),
    ("山田 太郎と申します", "[氏名]", "太郎"),
    ("山田\u3000太郎様より", "[氏名]", "太郎"),
    ("担当の山田です", "[氏名]", "山田"),
    ("Taro Yamada called", "[氏名]", "Taro"),
    ("YAMADA TARO called", "[氏名]", "YAMADA"),
    ("ｙａｍａｄａ called", "[氏名]", "ａｍａｄａ"),
    ("TEL 03-1234-5678", "[電話番号]", "1234"),
    ("携帯 090-1234-5678 まで", "[電話番号]", "5678"),
    ("０９０－１２３４－５６７８", "[電話番号]", "５６７８"),
    ("08012345678", "[電話番号]", "12345678"),
    ("+81-90-1234-5678", "[電話番号]", "1234"),
    ("＋８１－９０－９０８１－３３８０", "[電話番号]", "３３８０"),
    ("+81 3 1234 5678", "[電話番号]", "1234"),
    ("(03)1234-5678", "[電話番号]", "1234"),
    ("mail: taro.yamada@example.lg.jp", "[メール]", "example"),
    ("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ", "[メール]", "ｅｘａｍｐｌｅ"),
    ("個人番号 123456789012", "[個人番号]", "9012"),
    ("1234 5678 9012", "[個人番号]", "9012"),
    ("１２３４－５６７８－９０１２", "[個人番号]", "９０１２"),
    ("〒123-4567", "[住所]", "4567"),
    ("〒１００－０００１ 東京都千代田区千代田１－１", "[住所]", "千代田"),
    ("住所は大阪府大阪市北区梅田2丁目4番9号です", "[住所]", "梅田"),
    ("神奈川県横浜市中区本町6-50-10", "[住所]", "本町"),
    ("Postal code: 100-0001", "[住所]", "0001"),
    ("生年月日：昭和45年3月2日", "[生年月日]", "45"),
    ("生年月日 1970/03/02", "[生年月日]", "1970"),
    ("平成元年５月１日生まれ", "[生年月日]", "５月"),
    ("DOB: 1970-03-02", "[生年月日]", "1970"),
    ("Date of birth 02/03/1970", "[生年月日]", "1970"),
])
def test_each_kind_is_replaced(text, placeholder, gone):
    out = scrub(text, names=NAMES)
    assert placeholder in out
    assert gone not in out


def test_everyday_numbers_and_dates_stay():
    text = "発注番号 PO-2026-123456、20バイアル、令和6年4月1日から、在庫 -20本、医療機関コード 1234567"
    assert scrub(text, names=NAMES) == text


def test_text_around_matches_is_kept():
    out = scrub("お世話になっております。山田です。電話 03-1234-5678 へ折り返しください。", names=["山田 太郎"])
    assert out == "お世話になっております。[氏名]です。電話 [電話番号] へ折り返しください。"


def test_without_names_only_patterns_apply():
    assert scrub("山田です 03-1234-5678") == "山田です [電話番号]"
    assert scrub("") == "" and scrub(None) == ""
