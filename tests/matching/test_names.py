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
