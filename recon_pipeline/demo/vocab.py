"""Closed vocabulary of the demo generator and the ways a bank writes a customer's name.

Every word the generator may print is listed here, so the traditional-character map below
covers the whole vocabulary (no conversion library needed at generation time, and the output
stays byte-for-byte stable whatever is installed). Characters whose traditional form is
ambiguous (众, 恒, 发, 台 ...) are simply kept out of brand names.
"""

from __future__ import annotations

from dataclasses import dataclass

# code, city, full administrative prefix, bank-style abbreviation, credit-code area, weight
REGIONS: tuple[tuple[str, str, str, str, str, float], ...] = (
    ("SH", "上海", "上海市", "沪", "310104", 0.12),
    ("BJ", "北京", "北京市", "京", "110105", 0.12),
    ("SZ", "深圳", "广东省深圳市", "深", "440300", 0.10),
    ("GZ", "广州", "广东省广州市", "穗", "440106", 0.08),
    ("HZ", "杭州", "浙江省杭州市", "杭", "330106", 0.08),
    ("CD", "成都", "四川省成都市", "蓉", "510107", 0.07),
    ("NJ", "南京", "江苏省南京市", "宁", "320106", 0.06),
    ("WH", "武汉", "湖北省武汉市", "汉", "420106", 0.06),
    ("SU", "苏州", "江苏省苏州市", "苏", "320505", 0.06),
    ("TJ", "天津", "天津市", "津", "120116", 0.05),
    ("CQ", "重庆", "重庆市", "渝", "500112", 0.05),
    ("XM", "厦门", "福建省厦门市", "厦", "350203", 0.04),
    ("QD", "青岛", "山东省青岛市", "青", "370202", 0.03),
    ("CS", "长沙", "湖南省长沙市", "长", "430102", 0.03),
    ("ZZ", "郑州", "河南省郑州市", "郑", "410105", 0.03),
    ("NB", "宁波", "浙江省宁波市", "甬", "330203", 0.02),
)

# industry word in the name, industry (CRM field), VAT rate in percent
INDUSTRY_WORDS: tuple[tuple[str, str, int], ...] = (
    ("科技", "信息技术", 6),
    ("信息科技", "信息技术", 6),
    ("网络科技", "信息技术", 6),
    ("软件", "软件服务", 6),
    ("电子", "电子制造", 13),
    ("电子科技", "电子制造", 13),
    ("贸易", "批发零售", 13),
    ("国际贸易", "批发零售", 13),
    ("实业", "制造业", 13),
    ("机械设备", "制造业", 13),
    ("医药", "医药", 13),
    ("医药科技", "医药", 13),
    ("物流", "物流", 9),
    ("环保科技", "环保", 6),
    ("建设工程", "建筑", 9),
    ("新能源", "能源", 13),
    ("供应链管理", "供应链", 6),
    ("食品", "食品", 13),
    ("纺织", "纺织", 13),
)
# Same brand, another industry word: the confusable pairs of the contract's example.
INDUSTRY_CONFUSABLE = {"科技": "信息科技", "电子": "电子科技", "贸易": "国际贸易", "医药": "医药科技", "实业": "机械设备"}
# Industry words no customer uses: unrelated payers that share a customer's brand.
NON_CUSTOMER_WORDS = ("物业管理", "餐饮管理", "人力资源", "广告传媒", "酒店管理")

LEGAL_FORMS: tuple[tuple[str, float], ...] = (
    ("有限公司", 0.68),
    ("股份有限公司", 0.14),
    ("有限责任公司", 0.12),
    ("集团有限公司", 0.06),
)

# Brand characters: common in registered names and unambiguous in traditional script.
BRAND_CHARS = (
    "华信中达泰瑞鑫宏盛远通联创新金源宇嘉博天海龙兴汇隆丰东明正安诚昌凯腾飞辰星晨阳光德润祥和美佳富永"
    "晟锦荣茂鼎卓越立合思维睿智云帆航益康坤泽蓝峰豪骏俊铭致乐欣"
)
BRAND_CHARS = "".join(dict.fromkeys(BRAND_CHARS))  # keep order, drop repeats

# Simplified -> traditional for every convertible character of the vocabulary above.
S2T = str.maketrans({
    "华": "華", "达": "達", "远": "遠", "联": "聯", "创": "創", "龙": "龍", "兴": "興", "汇": "匯",
    "丰": "豐", "东": "東", "诚": "誠", "凯": "凱", "腾": "騰", "飞": "飛", "阳": "陽", "润": "潤",
    "锦": "錦", "荣": "榮", "维": "維", "云": "雲", "泽": "澤", "蓝": "藍", "骏": "駿", "铭": "銘",
    "宁": "寧", "乐": "樂", "网": "網", "络": "絡", "电": "電", "软": "軟", "贸": "貿",
    "实": "實", "业": "業", "机": "機", "设": "設", "备": "備", "医": "醫", "药": "藥",
    "环": "環", "应": "應", "链": "鏈", "纺": "紡", "织": "織", "际": "際", "国": "國",
    "责": "責", "团": "團", "广": "廣", "汉": "漢", "苏": "蘇", "庆": "慶", "厦": "廈", "门": "門",
    "岛": "島", "长": "長", "郑": "鄭", "务": "務", "饮": "飲", "资": "資", "传": "傳",
})

SURNAMES = (("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
            ("赵", "zhao"), ("黄", "huang"), ("周", "zhou"), ("吴", "wu"), ("徐", "xu"), ("孙", "sun"),
            ("胡", "hu"), ("朱", "zhu"), ("高", "gao"), ("林", "lin"), ("何", "he"), ("郭", "guo"),
            ("马", "ma"), ("罗", "luo"), ("梁", "liang"), ("宋", "song"), ("郑", "zheng"), ("谢", "xie"),
            ("韩", "han"), ("唐", "tang"), ("冯", "feng"), ("于", "yu"), ("董", "dong"), ("萧", "xiao"))
GIVEN_NAMES = (("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("磊", "lei"),
               ("强", "qiang"), ("洋", "yang"), ("艳", "yan"), ("勇", "yong"), ("军", "jun"), ("杰", "jie"),
               ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀英", "xiuying"),
               ("丽", "li"), ("晨", "chen"), ("浩然", "haoran"), ("子涵", "zihan"), ("雨轩", "yuxuan"),
               ("思远", "siyuan"), ("建国", "jianguo"), ("海燕", "haiyan"), ("志强", "zhiqiang"),
               ("晓东", "xiaodong"), ("佳怡", "jiayi"), ("文博", "wenbo"), ("欣怡", "xinyi"))

# Brand characters as an English name spells them (pinyin, no tones), for English aliases.
BRAND_PINYIN = {
    "华": "hua", "信": "xin", "中": "zhong", "达": "da", "泰": "tai", "瑞": "rui", "鑫": "xin", "宏": "hong",
    "盛": "sheng", "远": "yuan", "通": "tong", "联": "lian", "创": "chuang", "新": "xin", "金": "jin", "源": "yuan",
    "宇": "yu", "嘉": "jia", "博": "bo", "天": "tian", "海": "hai", "龙": "long", "兴": "xing", "汇": "hui",
    "隆": "long", "丰": "feng", "东": "dong", "明": "ming", "正": "zheng", "安": "an", "诚": "cheng", "昌": "chang",
    "凯": "kai", "腾": "teng", "飞": "fei", "辰": "chen", "星": "xing", "晨": "chen", "阳": "yang", "光": "guang",
    "德": "de", "润": "run", "祥": "xiang", "和": "he", "美": "mei", "佳": "jia", "富": "fu", "永": "yong",
    "晟": "cheng", "锦": "jin", "荣": "rong", "茂": "mao", "鼎": "ding", "卓": "zhuo", "越": "yue", "立": "li",
    "合": "he", "思": "si", "维": "wei", "睿": "rui", "智": "zhi", "云": "yun", "帆": "fan", "航": "hang",
    "益": "yi", "康": "kang", "坤": "kun", "泽": "ze", "蓝": "lan", "峰": "feng", "豪": "hao", "骏": "jun",
    "俊": "jun", "铭": "ming", "致": "zhi", "乐": "le", "欣": "xin",
}
INDUSTRY_ENGLISH = {
    "科技": "TECHNOLOGY", "信息科技": "INFORMATION TECHNOLOGY", "网络科技": "NETWORK TECHNOLOGY",
    "软件": "SOFTWARE", "电子": "ELECTRONICS", "电子科技": "ELECTRONIC TECHNOLOGY", "贸易": "TRADING",
    "国际贸易": "INTERNATIONAL TRADING", "实业": "INDUSTRIAL", "机械设备": "MACHINERY", "医药": "PHARMACEUTICAL",
    "医药科技": "PHARMACEUTICAL TECHNOLOGY", "物流": "LOGISTICS", "环保科技": "ENVIRONMENTAL TECHNOLOGY",
    "建设工程": "CONSTRUCTION ENGINEERING", "新能源": "NEW ENERGY", "供应链管理": "SUPPLY CHAIN MANAGEMENT",
    "食品": "FOOD", "纺织": "TEXTILE",
}
# Payment intermediaries paying out on their merchants' behalf, with their settlement account.
PAYMENT_INTERMEDIARIES = (("支付宝（中国）网络技术有限公司", "2088101117955611"),
                          ("财付通支付科技有限公司", "1000059801000132"),
                          ("银联商务股份有限公司", "3100001507000015"))
# Memos saying a credit is not a payment for goods (deposits, bonds); and refunds of over-payments.
NON_SALES_WORDS = ("押金", "保证金", "退税", "补贴")
CUSTOMER_DEPOSIT_MEMOS = ("投标保证金", "履约保证金", "押金", "质量保证金")
GENERIC_MEMOS = ("货款", "服务费", "合同款", "采购款", "往来款", "支付货款", "项目款", "技术服务费", "")
CHANNEL_PREFIXES = (("支付宝－", "2088123456780001"), ("财付通－", "1000059801000132"))
FINANCE_STAFF = ("财务-李娜", "财务-王芳", "财务-陈静", "财务-赵敏")


@dataclass(frozen=True)
class CompanyName:
    """A generated registered name and its parts (what the bank variants are made from)."""

    region: str  # city, e.g. 北京
    region_full: str  # 北京市, 广东省深圳市
    brand: str
    word: str  # industry word
    legal_form: str
    style: str  # "prefix" (北京华信科技有限公司) or "bracket" (华信科技（北京）有限公司)
    bracket_fullwidth: bool = True
    branch: str = ""  # 苏州分公司: a branch of the company without it (another customer)

    @property
    def registered(self) -> str:
        if self.style == "bracket":
            left, right = ("（", "）") if self.bracket_fullwidth else ("(", ")")
            return f"{self.brand}{self.word}{left}{self.region}{right}{self.legal_form}{self.branch}"
        return f"{self.region}{self.brand}{self.word}{self.legal_form}{self.branch}"

    @property
    def short(self) -> str:
        """Short name without legal form: 北京华信科技 (北京华信科技苏州分公司 for a branch)."""
        return f"{self.region}{self.brand}{self.word}{self.branch}"

    @property
    def english(self) -> str:
        """An English name as a Hong Kong arm registers it: HUAXIN TECHNOLOGY (HK) CO., LIMITED."""
        brand = "".join(BRAND_PINYIN[ch] for ch in self.brand).upper()
        return f"{brand} {INDUSTRY_ENGLISH[self.word]} (HK) CO., LIMITED"


def region_variant(name: CompanyName, pick: int) -> str:
    """The region written another way: full admin prefix, bracketed, or dropped."""
    choices = [f"{name.region_full}{name.brand}{name.word}{name.legal_form}"]
    if name.style == "bracket":
        choices.append(f"{name.region}{name.brand}{name.word}{name.legal_form}")
    else:
        choices.append(f"{name.brand}{name.word}({name.region}){name.legal_form}")
    choices.append(f"{name.brand}{name.word}{name.legal_form}")
    return choices[pick % len(choices)]


def keeps_region_variant(name: CompanyName, pick: int) -> str:
    """Region variant that still names the region (for same-brand-other-region customers)."""
    return region_variant(name, pick % 2)


_TO_FULLWIDTH = {i: i + 0xFEE0 for i in range(0x21, 0x7F)}
_TO_FULLWIDTH[0x20] = 0x3000


def fullwidth_variant(name: CompanyName) -> str:
    """Width differences as bank portals show them: full-width ASCII/brackets, ideographic space."""
    if name.style == "bracket":
        if name.bracket_fullwidth:  # the registered form is already full width: show it half width
            return f"{name.brand}{name.word}({name.region}) {name.legal_form}"
        return name.registered.translate(_TO_FULLWIDTH)
    return f"{name.region}\u3000{name.brand}{name.word}{name.legal_form}"


def traditional(text: str) -> str:
    return text.translate(S2T)


def masked(name: CompanyName) -> str:
    """Bank privacy masking: first character, stars, the rest from the brand's last character."""
    full = name.registered
    if name.style == "bracket":
        return full[0] + "***" + full[len(name.brand) - 1:]
    keep_from = len(name.region) + len(name.brand) - 1
    return full[0] + "***" + full[keep_from:]


def latin_variant(english: str, pick: int) -> str:
    """An English name as bank systems print it: other legal-form spelling, case, no punctuation,
    the place unbracketed, cut at SWIFT's 35 characters."""
    base = english.removesuffix(" (HK) CO., LIMITED")
    cut = f"{base} (HK) CO., LIMITED"[:35]
    if len(cut) < len(f"{base} (HK) CO., LIM"):  # the cut would eat into the name itself
        cut = f"{base} (HK) CO., LTD."
    forms = (f"{base} (HK) CO., LTD.", f"{base.title()} (HK) Co., Ltd", f"{base} (HONG KONG) COMPANY LIMITED",
             f"{base} HK CO LTD", cut)
    return forms[pick % len(forms)]


def mask_account(account: str) -> str:
    return account[:4] + "****" + account[-4:]


def credit_code(area: str, body9: str) -> str:
    """A 统一社会信用代码 with a valid GB 32100-2015 check character ("91" = enterprise)."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    code17 = "91" + area + body9
    total = sum(alphabet.index(c) * w for c, w in zip(code17, weights))
    return code17 + alphabet[(31 - total % 31) % 31]
