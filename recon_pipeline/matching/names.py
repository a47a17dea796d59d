"""Chinese company names reduced to comparable parts: region, brand, industry, legal form.

A payer writes the same company in many ways: `北京某某科技有限公司`, `某某科技(北京)有限公司`,
`北京市某某科技`, `支付宝－某某科技`, `北京某某科技有限公司6222021234567890`, in traditional
characters or full-width letters, or masked by the bank (`中***融科技有限公司`). `parse_company_name`
brings them all to the same *core name* (brand + industry words), and keeps the region and
industry apart so that confusable companies (same brand, other region or other industry
word, e.g. `北京某某科技` vs `北京某某信息科技`) can be told apart rather than merged.

Data, not hand-typed lists:
- place names: `cpca`'s national administrative division table (`resources/adcodes.csv`,
  province / prefecture / county names with their adcodes, so regions can be compared by
  hierarchy);
- legal-form suffixes and industry words: `companynameparser`'s `data/suffix.txt` and
  `data/trade.txt` (a company-name parser's dictionaries).
- traditional -> simplified: `opencc` (`t2s`); full/half width: Unicode NFKC.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import opencc

# Morphemes that make a suffix a legal form (the contract's "有限/责任/公司" generic words),
# used to pick the legal forms out of companynameparser's wider list of shop/business suffixes.
_LEGAL_FORM = re.compile(r"^(有限|责任|股份|公司|集团|合伙|普通|控股|总|分|子|支|第一)+$")
_BRANCH_FORM = re.compile(r"(分公司|支公司|分行|营业部|办事处|分部)$")
# Suffixes of administrative names whose short form is also used alone (浙江省 -> 浙江).
_ADMIN_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市")
# Bank/statement masking characters after NFKC.
_MASK = re.compile(r"[*●•＊]+")
_ACCOUNT_RUN = re.compile(r"\d[\d\s-]{6,}\d")
_BRACKETS = str.maketrans({"【": "(", "】": ")", "〔": "(", "〕": ")", "[": "(", "]": ")",
                           "{": "(", "}": ")", "「": "(", "」": ")", "〈": "(", "〉": ")",
                           "《": "(", "》": ")"})
_BRACKETED = re.compile(r"\(([^()]*)\)")
_NOT_NAME_CHAR = re.compile(r"[^0-9a-z\u3400-\u9fff*]+")
_MIN_BRAND_CHARS = 2

DEFAULT_CHANNEL_PREFIXES = ("支付宝", "财付通", "微信支付", "微信", "银联", "云闪付", "京东支付",
                            "拉卡拉", "快钱", "易宝支付", "网银在线")


@lru_cache(maxsize=4096)
def masked_regex(masked: str) -> re.Pattern:
    """A regex for a masked name: each `*` hides one or more characters (compiled once per name)."""
    parts = [re.escape(p) for p in masked.split("*")]
    return re.compile("^" + ".+".join(parts) + "$")


@dataclass(frozen=True, slots=True)
class NameParts:
    """A company name taken apart. `core` = brand + industry, the string names are matched on."""

    raw: str
    normalized: str  # width/script/punctuation normalized, channel and account digits removed
    core: str
    brand: str
    industry: str
    regions: tuple[str, ...] = ()
    legal_form: str = ""
    channel: str = ""
    account_digits: str = ""
    masked: bool = False

    @property
    def is_empty(self) -> bool:
        return not self.core.replace("*", "")

    def mask_pattern(self) -> re.Pattern | None:
        """For a masked name, a regex over a customer's core (each `*` hides one or more chars)."""
        if not self.masked:
            return None
        return masked_regex(self.core)

    def evidence(self) -> dict:
        return {"raw": self.raw, "normalized": self.normalized, "core": self.core,
                "brand": self.brand, "industry": self.industry, "regions": list(self.regions)}


@dataclass(frozen=True)
class _Vocabulary:
    places: dict[str, frozenset[str]]  # place word -> adcodes
    legal_suffixes: frozenset[str]  # legal forms and branch markers
    branch_suffixes: frozenset[str]
    industry_words: frozenset[str]
    max_place_len: int
    max_legal_len: int
    max_industry_len: int


def _read_package_text(package: str, path: str) -> str:
    return (resources.files(package) / path).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def vocabulary() -> _Vocabulary:
    places: dict[str, set[str]] = {}
    for row in csv.DictReader(_read_package_text("cpca", "resources/adcodes.csv").splitlines()):
        name, adcode = row["name"].strip(), row["adcode"].strip()
        if not name:
            continue
        places.setdefault(name, set()).add(adcode)
        # Provinces and prefecture-level cities are written without their suffix too
        # (北京, 杭州); counties only in full, since their short forms are common brand words.
        if adcode.endswith("00000000"):
            for suffix in _ADMIN_SUFFIXES:
                if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                    places.setdefault(name[: -len(suffix)], set()).add(adcode)
                    break
    places.setdefault("中国", set()).add("000000000000")
    suffixes = [s.strip() for s in _read_package_text("companynameparser", "data/suffix.txt").splitlines()]
    legal = {s for s in suffixes if s and _LEGAL_FORM.match(s)} | {"有限公司", "有限责任公司"}
    branch = frozenset(s for s in suffixes if s and _BRANCH_FORM.search(s)) | {"分公司", "支公司", "分行"}
    trades = {t.strip() for t in _read_package_text("companynameparser", "data/trade.txt").splitlines()}
    trades = {t for t in trades if len(t) >= 2 and not re.search(r"[0-9a-z]", t)}
    return _Vocabulary(
        places={k: frozenset(v) for k, v in places.items()},
        legal_suffixes=frozenset(legal) | branch,
        branch_suffixes=branch,
        industry_words=frozenset(trades),
        max_place_len=max(map(len, places)),
        max_legal_len=max(map(len, legal | branch)),
        max_industry_len=max(map(len, trades)),
    )


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _longest_prefix(text: str, words: frozenset[str] | dict, max_len: int) -> str:
    for length in range(min(max_len, len(text)), 1, -1):
        if text[:length] in words:
            return text[:length]
    return ""


def _longest_suffix(text: str, words: frozenset[str] | dict, max_len: int) -> str:
    for length in range(min(max_len, len(text)), 1, -1):
        if text[-length:] in words:
            return text[-length:]
    return ""


def basic_normalize(text: str) -> str:
    """Width (NFKC), traditional -> simplified, lower-case latin, one bracket kind."""
    text = unicodedata.normalize("NFKC", text)
    text = _t2s().convert(text)
    return text.lower().translate(_BRACKETS)


def _is_region_text(text: str) -> list[str] | None:
    """The region words a text consists of entirely (浙江省杭州市 -> [浙江, 杭州]), else None."""
    vocab = vocabulary()
    found: list[str] = []
    rest = text
    while rest:
        word = _longest_prefix(rest, vocab.places, vocab.max_place_len)
        if not word:
            return None
        found.append(word)
        rest = rest[len(word):]
    return found or None


@lru_cache(maxsize=65_536)
def canonical_region(word: str) -> str:
    """A region word in its short form (北京市 -> 北京), to compare regions written differently."""
    for suffix in _ADMIN_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2 and word[: -len(suffix)] in vocabulary().places:
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=500_000)
def parse_company_name(raw: str | None, channel_prefixes: tuple[str, ...] = DEFAULT_CHANNEL_PREFIXES) -> NameParts:
    """Take a payer or customer name apart (see module docstring). Cached: payers repeat."""
    if raw is None or (isinstance(raw, float)) or not str(raw).strip():
        return NameParts(raw="", normalized="", core="", brand="", industry="")
    raw = str(raw)
    text = basic_normalize(raw).strip()
    text = _MASK.sub("*", text)

    channel = ""
    for prefix in channel_prefixes:
        if text.startswith(prefix):
            rest = text[len(prefix):]
            stripped = rest.lstrip(" -_:/|·—")
            if stripped != rest or not rest:  # only a prefix followed by a separator
                channel, text = prefix, stripped
                break

    digits = [re.sub(r"\D", "", m) for m in _ACCOUNT_RUN.findall(text)]
    account_digits = max(digits, key=len) if digits else ""
    if digits:
        text = _ACCOUNT_RUN.sub(" ", text)

    regions: list[str] = []
    legal: list[str] = []

    def bracket(match: re.Match) -> str:
        inner = _NOT_NAME_CHAR.sub("", match.group(1))
        region_words = _is_region_text(inner)
        if region_words:
            regions.extend(region_words)
            return ""
        if inner and _LEGAL_FORM.match(inner):
            legal.append(inner)
            return ""
        return inner

    previous = None if "(" in text else text  # no bracket: nothing to take apart
    while previous != text:  # nested brackets
        previous, text = text, _BRACKETED.sub(bracket, text)
    text = text.replace("(", "").replace(")", "")
    normalized = _NOT_NAME_CHAR.sub("", text)
    work = normalized

    vocab = vocabulary()
    # Legal forms and branches from the end: 某某科技有限公司上海分公司 -> 某某科技 (+上海, 分公司).
    while True:
        suffix = _longest_suffix(work, vocab.legal_suffixes, vocab.max_legal_len)
        if not suffix or len(work) == len(suffix):
            break
        legal.insert(0, suffix)
        work = work[: -len(suffix)]
        if suffix in vocab.branch_suffixes:
            place = _longest_suffix(work, vocab.places, vocab.max_place_len)
            if place and len(work) - len(place) >= _MIN_BRAND_CHARS:
                regions.append(place)
                work = work[: -len(place)]

    # Region prefixes: 浙江省杭州市某某 -> [浙江省, 杭州市] + 某某.
    while True:
        place = _longest_prefix(work, vocab.places, vocab.max_place_len)
        if not place or len(work) - len(place) < _MIN_BRAND_CHARS:
            break
        regions.append(place)
        work = work[len(place):]

    # Industry words from the end: 某某信息科技 -> 某某 + 信息科技.
    industry = ""
    while True:
        word = _longest_suffix(work, vocab.industry_words, vocab.max_industry_len)
        if not word or len(work) - len(word) < _MIN_BRAND_CHARS:
            break
        industry = word + industry
        work = work[: -len(word)]

    # A region written between brand and industry: 某某北京科技 -> 某某 + 北京.
    if industry:
        place = _longest_suffix(work, vocab.places, vocab.max_place_len)
        if place and len(work) - len(place) >= _MIN_BRAND_CHARS:
            regions.append(place)
            work = work[: -len(place)]

    brand = work
    canonical_regions = tuple(dict.fromkeys(canonical_region(r) for r in regions))
    return NameParts(
        raw=raw,
        normalized=normalized,
        core=brand + industry,
        brand=brand,
        industry=industry,
        regions=canonical_regions,
        legal_form="".join(legal),
        channel=channel,
        account_digits=account_digits,
        masked="*" in normalized,
    )


def region_codes(regions: tuple[str, ...]) -> list[frozenset[str]]:
    places = vocabulary().places
    return [places.get(r, frozenset()) | places.get(r + "市", frozenset()) | places.get(r + "省", frozenset())
            for r in regions]


def _code_related(a: str, b: str) -> bool:
    """Same place, or one contains the other (province XX, prefecture XXXX, county XXXXXX)."""
    if a == "000000000000" or b == "000000000000":
        return True
    for digits in (2, 4, 6):
        a_prefix, b_prefix = a[:digits], b[:digits]
        a_rest, b_rest = a[digits:], b[digits:]
        if a_prefix != b_prefix:
            return False
        if set(a_rest) == {"0"} or set(b_rest) == {"0"}:
            return True
    return a == b


@lru_cache(maxsize=200_000)
def regions_compatible(left: tuple[str, ...], right: tuple[str, ...]) -> bool:
    """False only when both names state regions and some pair of them cannot be the same place."""
    if not left or not right:
        return True
    left_codes = [c for c in region_codes(left) if c]
    right_codes = [c for c in region_codes(right) if c]
    for lc in left_codes:
        for rc in right_codes:
            if not any(_code_related(a, b) for a in lc for b in rc):
                return False
    return True
