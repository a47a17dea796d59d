"""Company names reduce to the same core however the payer writes them, and confusable
companies (same brand, other industry word or region) keep apart."""

import pytest

from recon_pipeline.matching.names import parse_company_name, regions_compatible


@pytest.mark.parametrize(
    "written",
    [
        "北京某某科技有限公司",
        "北京某某科技",
        "北京市某某科技有限公司",
        "某某科技(北京)有限公司",
        "某某科技（北京）有限公司",
        "【北京】某某科技有限公司",
        "北京某某科技有限責任公司",  # traditional characters
        "北京 某某 科技 有限公司",
        "支付宝－北京某某科技有限公司",
        "财付通-北京某某科技有限公司",
        "北京某某科技有限公司6222021234567890123",
        "北京某某科技有限公司上海分公司",
    ],
)
def test_variants_of_one_name_share_the_core(written):
    parts = parse_company_name(written)
    assert parts.core == "某某科技"
    assert parts.brand == "某某"
    assert parts.industry == "科技"


def test_traditional_and_fullwidth_names_normalize():
    assert parse_company_name("華為技術有限公司").core == "华为技术"
    assert parse_company_name("ＡＢＣ科技（深圳）有限公司").core == "abc科技"
    assert parse_company_name("ＡＢＣ科技（深圳）有限公司").regions == ("深圳",)


def test_province_and_city_prefixes_are_regions_not_brand():
    parts = parse_company_name("浙江省杭州市阿里巴巴网络技术有限公司")
    assert parts.brand == "阿里巴巴"
    assert parts.regions == ("浙江", "杭州")
    assert parts.legal_form == "有限公司"


def test_industry_word_is_kept_apart_so_confusables_differ():
    tech = parse_company_name("北京某某科技有限公司")
    info_tech = parse_company_name("北京某某信息科技有限公司")
    assert tech.brand == info_tech.brand == "某某"
    assert (tech.industry, info_tech.industry) == ("科技", "信息科技")
    assert tech.core != info_tech.core


def test_channel_prefix_and_account_digits_are_recorded():
    parts = parse_company_name("支付宝－杭州某某贸易有限公司")
    assert parts.channel == "支付宝" and parts.core == "某某贸易"
    with_account = parse_company_name("北京某某科技有限公司 6222 0212 3456 7890")
    assert with_account.account_digits == "6222021234567890"


def test_masked_name_keeps_a_pattern():
    parts = parse_company_name("中***融科技有限公司")
    assert parts.masked
    assert parts.mask_pattern().match("中关村金融科技")
    assert not parts.mask_pattern().match("中关村金融信息")


def test_person_name_and_empty_values():
    assert parse_company_name("张三").core == "张三"
    assert parse_company_name(None).is_empty
    assert parse_company_name("   ").is_empty


def test_region_compatibility_follows_the_administrative_hierarchy():
    assert regions_compatible(("浙江", "杭州"), ("杭州",))
    assert regions_compatible(("深圳",), ("广东",))
    assert regions_compatible((), ("北京",))
    assert not regions_compatible(("北京",), ("上海",))
    assert not regions_compatible(("杭州",), ("宁波",))


def test_a_branch_keeps_its_branch_apart_from_the_head_offices_core():
    branch = parse_company_name("江苏恒瑞精密机械有限公司苏州分公司")
    head = parse_company_name("江苏恒瑞精密机械有限公司")
    assert branch.core == head.core and branch.branch == "苏州分公司" and head.branch == ""
    assert branch.full_key != head.full_key
    assert parse_company_name("江苏恒瑞精密机械有限公司苏州市分公司").branch == "苏州分公司"
    assert parse_company_name("招商银行股份有限公司深圳分行").branch == "深圳分行"


def test_the_full_key_folds_only_width_script_case_and_punctuation():
    assert parse_company_name("华信科技（北京）有限公司").full_key == parse_company_name("华信科技(北京)有限公司").full_key
    assert parse_company_name("北京華信科技有限公司").full_key == "北京华信科技有限公司"
    assert parse_company_name("华信科技(北京)有限公司").full_key != parse_company_name("北京华信科技有限公司").full_key


@pytest.mark.parametrize("written", ["KONG FUNG TRADING (HK) CO., LIMITED", "Kong Fung Trading (HK) Co., Ltd.",
                                     "KONG FUNG TRADING CO LTD", "KONG FUNG TRADING (HONG KONG) COMPANY LIMITED",
                                     "KONG FUNG TRADING (HK) CO., LIMI"])
def test_latin_legal_forms_punctuation_and_places_are_not_the_core(written):
    parts = parse_company_name(written)
    assert parts.core == "kongfungtrading" and parts.latin
    assert parts.regions in ((), ("香港",))


def test_latin_places_in_pinyin_and_legal_words_of_other_countries():
    shanghai = parse_company_name("SHANGHAI JINCHENG LOGISTICS CO., LTD.")
    assert (shanghai.core, shanghai.regions) == ("jinchenglogistics", ("上海",))
    assert parse_company_name("ACME Technik GmbH").core == "acmetechnik"
    assert parse_company_name("Acme Corp.").core == parse_company_name("ACME CORPORATION").core == "acme"
    # No brand/industry split in Latin: a shorter name is not the same company.
    assert parse_company_name("Global Tech").core != parse_company_name("Global Technologies Ltd").core


def test_persons_are_told_from_companies():
    from recon_pipeline.matching.names import looks_like_person

    for person in ("陈建国", "欧阳子涵", "买买提·艾力", "ZHANG SAN"):
        assert looks_like_person(parse_company_name(person)), person
    for company in ("中关村金融", "陈建国贸易有限公司", "北京华信", "KONG FUNG TRADING CO LTD", "华信科技有限公司苏州分公司"):
        assert not looks_like_person(parse_company_name(company)), company
