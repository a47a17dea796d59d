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
- traditional -> simplified: `opencc` (`t2s`); full/half width: Unicode NFKC;
- place names in Latin script (`SHANGHAI XX TRADING CO., LTD.`, `XX (SHENZHEN) CO., LIMITED`):
  `pypinyin` readings of the same province and prefecture names, plus the exonyms pinyin does
  not give (Hong Kong, Macau, China).

Two things are kept beside the core so that they are never normalized away:
- `full_key`: the whole name as registered (legal form and branch included, only width, script,
  case, brackets and punctuation folded). An exact full name decides before any normalization.
- `branch`: the branch a name designates (`某某科技有限公司苏州分公司` -> `苏州分公司`). A branch
  has its own 统一社会信用代码: it is another customer than its head office.

Latin-script names (`XX TRADING (HK) CO., LIMITED`) are taken apart by words: legal-form words
(Co., Ltd., Limited, Inc., Corp., GmbH, ...) and place words are removed from the core, the rest
is joined without spaces (banks print them with and without). Latin names get no brand/industry
split: `Global Tech` is not `Global Technologies Ltd`.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import opencc
from pypinyin import lazy_pinyin

# Morphemes that make a suffix a legal form (the contract's "有限/责任/公司" generic words),
# used to pick the legal forms out of companynameparser's wider list of shop/business suffixes.
_LEGAL_FORM = re.compile(r"^(有限|责任|股份|公司|集团|合伙|普通|控股|总|分|子|支|第一)+$")
_BRANCH_FORM = re.compile(r"(分公司|支公司|分行|营业部|办事处|分部)$")
# Legal forms a branch name follows: 某某科技有限公司 | 苏州 | 分公司.
_HEAD_LEGAL_FORMS = ("有限责任公司", "股份有限公司", "有限公司", "公司", "集团")
_MAX_BRANCH_NAME = 12
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
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[0-9a-z*]+")
_MIDDLE_DOT = re.compile(r"[·•・‧]")
# Latin legal-form words, in the canonical spelling the full key uses (Limited -> ltd).
_LATIN_LEGAL = {
    "co": "co", "company": "co", "cos": "co", "ltd": "ltd", "limited": "ltd", "inc": "inc",
    "incorporated": "inc", "corp": "corp", "corporation": "corp", "llc": "llc", "plc": "plc", "lp": "lp",
    "llp": "llp", "gmbh": "gmbh", "mbh": "gmbh", "ag": "ag", "kg": "kg", "kgaa": "kgaa", "se": "se", "sa": "sa",
    "sas": "sas", "sarl": "sarl", "srl": "srl", "spa": "spa", "nv": "nv", "bv": "bv", "pte": "pte",
    "pty": "pty", "kk": "kk", "oy": "oy", "ab": "ab", "sdn": "sdn", "bhd": "bhd", "group": "group",
}
# Words whose truncation (SWIFT names are cut at 35 characters) still reads as a legal form.
_LATIN_TRUNCATABLE = ("limited", "company", "corporation", "incorporated")
# Places pinyin does not give the usual English name of.
_LATIN_EXONYMS = {"hk": "香港", "hongkong": "香港", "hksar": "香港", "kowloon": "香港", "macau": "澳门",
                  "macao": "澳门", "china": "中国", "prc": "中国", "taiwan": "台湾", "canton": "广州"}
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
    full_key: str = ""  # the whole name, folded but not reduced: compared before any normalization
    branch: str = ""  # 苏州分公司 for a branch, "" for a head office
    latin: bool = False  # written in Latin script

    @property
    def is_empty(self) -> bool:
        return not self.core.replace("*", "")

    def mask_pattern(self) -> re.Pattern | None:
        """For a masked name, a regex over a customer's core (each `*` hides one or more chars)."""
        if not self.masked:
            return None
        return masked_regex(self.core)

    def evidence(self) -> dict:
        out = {"raw": self.raw, "normalized": self.normalized, "core": self.core,
               "brand": self.brand, "industry": self.industry, "regions": list(self.regions)}
        if self.branch:
            out["branch"] = self.branch
        return out


@dataclass(frozen=True)
class _Vocabulary:
    places: dict[str, frozenset[str]]  # place word -> adcodes
    legal_suffixes: frozenset[str]  # legal forms and branch markers
    branch_suffixes: frozenset[str]
    industry_words: frozenset[str]
    max_place_len: int
    max_legal_len: int
    max_industry_len: int
    latin_places: dict[str, str]  # Latin place word -> the Chinese place word it reads


def _read_package_text(package: str, path: str) -> str:
    """A data file of an installed package, read without importing the package. Importing cpca
    runs pkg_resources, whose import leaves reference cycles through its frames; inside a run
    those frames' callers (the matching, with its whole context) stayed alive until the next
    full collection, which then walked all of it (7.6 s under the profiler at the end of a
    million-line day's matching)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the package {package} is not installed (pip install -e .)", name=package)
    return (Path(spec.submodule_search_locations[0]) / path).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def vocabulary() -> _Vocabulary:
    places: dict[str, set[str]] = {}
    latin_places: dict[str, str] = {}
    for row in csv.DictReader(_read_package_text("cpca", "resources/adcodes.csv").splitlines()):
        name, adcode = row["name"].strip(), row["adcode"].strip()
        if not name:
            continue
        places.setdefault(name, set()).add(adcode)
        # Provinces and prefecture-level cities are written without their suffix too
        # (北京, 杭州); counties only in full, since their short forms are common brand words.
        if adcode.endswith("00000000"):
            short = name
            for suffix in _ADMIN_SUFFIXES:
                if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                    short = name[: -len(suffix)]
                    places.setdefault(short, set()).add(adcode)
                    break
            if _CJK.fullmatch(short[:1] or "x") and len(short) <= 4:
                latin_places.setdefault("".join(lazy_pinyin(short)), short)
    places.setdefault("中国", set()).add("000000000000")
    latin_places.update(_LATIN_EXONYMS)
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
        latin_places=latin_places,
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


# Room for every distinct name of a run: a full run parses the payers twice (the lines' keys,
# then linking), and an LRU smaller than the distinct names misses on every second look. At 1M
# bank lines there are 511k distinct payers and 50k customers (the cache is cleared after a run).
@lru_cache(maxsize=2_000_000)
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

    if not _CJK.search(text) and re.search(r"[a-z]", text):
        return _parse_latin(raw, text, channel, account_digits)
    full_key = _NOT_NAME_CHAR.sub("", text)

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

    vocab = vocabulary()
    work, branch = _split_branch(normalized, legal)
    # Legal forms from the end: 某某科技有限公司 -> 某某科技 (+有限公司).
    while True:
        suffix = _longest_suffix(work, vocab.legal_suffixes, vocab.max_legal_len)
        if not suffix or len(work) == len(suffix):
            break
        legal.insert(0, suffix)
        work = work[: -len(suffix)]

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
        full_key=full_key,
        branch=branch,
    )


def _split_branch(name: str, legal: list[str]) -> tuple[str, str]:
    """(head office name, branch) of a name: 某某科技有限公司苏州分公司 -> (某某科技有限公司, 苏州分公司).

    The branch is what follows the head office's legal form up to a branch marker (分公司, 分行,
    营业部, ...); without a legal form before it, the place right before the marker
    (某某科技苏州分公司). Its place is written in its short form (苏州市分公司 -> 苏州分公司).
    """
    vocab = vocabulary()
    marker = _longest_suffix(name, vocab.branch_suffixes, vocab.max_legal_len)
    if not marker or len(name) - len(marker) < _MIN_BRAND_CHARS:
        return name, ""
    before = name[: -len(marker)]
    cut = max((before.rfind(form) + len(form) for form in _HEAD_LEGAL_FORMS if form in before), default=-1)
    if cut > 0 and len(before) - cut <= _MAX_BRANCH_NAME:
        head, branch_name = before[:cut], before[cut:]
    else:
        place = _longest_suffix(before, vocab.places, vocab.max_place_len)
        if place and len(before) - len(place) < _MIN_BRAND_CHARS:
            place = ""
        head, branch_name = before[: len(before) - len(place)], place
    legal.insert(0, marker)
    return head, canonical_region(branch_name) + marker


def _parse_latin(raw: str, text: str, channel: str, account_digits: str) -> NameParts:
    """A name in Latin script, word by word (see module docstring)."""
    places = vocabulary().latin_places
    text = re.sub(r"\bhong\s+kong\b", "hongkong", text.replace("&", " and ").replace(".", ""))
    text = re.sub(r"\bco\s*,?\s*ltd\b", "co ltd", text)
    regions: list[str] = []
    legal: list[str] = []
    kept_words: list[str] = []  # words of the name, brackets' contents in place

    # Bracketed words: a place `(HK)`, a legal form `(Pty)`, or part of the name.
    pieces = re.split(r"(\([^()]*\))", text)
    words: list[tuple[str, bool]] = []  # (word, inside brackets)
    for piece in pieces:
        inside = piece.startswith("(") and piece.endswith(")")
        for word in _LATIN_WORD.findall(piece):
            words.append((word, inside))
    core_words: list[str] = []
    for word, inside in words:
        kept_words.append(_LATIN_LEGAL.get(word, word))
        if inside and word in places:
            regions.append(places[word])
        elif inside and word in _LATIN_LEGAL:
            legal.append(_LATIN_LEGAL[word])
        else:
            core_words.append(word)
    # Legal-form words from the end (a truncated last word too: `CO., LIMI`).
    while core_words:
        last = core_words[-1]
        if last in _LATIN_LEGAL:
            legal.insert(0, _LATIN_LEGAL[last])
        elif len(last) >= 3 and len(core_words) > 1 and any(w.startswith(last) for w in _LATIN_TRUNCATABLE):
            legal.insert(0, last)
        else:
            break
        core_words.pop()
    # One place first or last: `SHANGHAI JINCHENG LOGISTICS`, `XX TRADING HONGKONG`; only with two
    # words left, since place names are brand words too (`JINCHENG LOGISTICS`: 晋城 or a brand).
    if len(core_words) > 2 and core_words[0] in places:
        regions.append(places[core_words.pop(0)])
    if len(core_words) > 2 and core_words[-1] in places:
        regions.append(places[core_words.pop()])
    core = "".join(core_words)
    return NameParts(
        raw=raw,
        normalized=" ".join(kept_words),
        core=core,
        brand=core,
        industry="",
        regions=tuple(dict.fromkeys(canonical_region(r) for r in regions)),
        legal_form=" ".join(legal),
        channel=channel,
        account_digits=account_digits,
        masked="*" in core,
        full_key="".join(kept_words),
        latin=True,
    )


_PERSON_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
_PERSON_NAME_WITH_DOT = re.compile(r"^[\u4e00-\u9fff]{3,10}$")  # 买买提·艾力 (the dot is removed)


def looks_like_person(parts: NameParts) -> bool:
    """A private person's name: 朱佳怡, 买买提·艾力, ZHANG SAN; never a company (no legal form,
    industry word, region or branch). Short brand names (华为) read the same: callers treat
    both as "not enough to know the company"."""
    if parts.legal_form or parts.industry or parts.regions or parts.branch or parts.masked or not parts.core:
        return False
    if parts.latin:
        words = parts.normalized.split()
        return 2 <= len(words) <= 3 and all(w.isalpha() for w in words)
    if _MIDDLE_DOT.search(parts.raw):
        return bool(_PERSON_NAME_WITH_DOT.match(parts.core))
    return bool(_PERSON_NAME.match(parts.core))


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
