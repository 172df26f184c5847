"""Content-check throughput: ContentChecker.check_content with a 10,000-word lexicon, one core.

Builds a lexicon of the shipped default words plus generated words up to ``--words`` (default
10,000), generates ``--messages`` realistic Chinese messages of about 60 characters (clean
verification / notification / marketing texts and dirty ones using evasions: spaces, dots,
full-width, traditional characters, zero-width characters, special characters, links), and checks
them all, pinned to one CPU when the platform allows it.  Prints messages/s; the target is
>= 50,000 messages/s.  Also times the number-range detector on a 100,000-number batch.

    .venv/bin/python bench/bench_content_check.py [--messages 100000] [--words 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import time

from qixin.domain.compliance import (
    CATEGORIES,
    ContentChecker,
    Lexicon,
    LexiconEntry,
    default_entries,
    find_number_ranges,
)
from qixin.domain.compliance.default_lexicon import DEFAULT_ALLOW

# Common characters for generated lexicon words (3–4 characters each, random category).
_POOL = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说"
    "产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使"
    "点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明"
    "看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料"
)

_CLEAN = (
    "【{shop}】您的验证码为{code}，5分钟内有效，请勿泄露给他人。如非本人操作，请忽略本短信并及时修改登录密码。",
    "【{shop}】尊敬的客户，您尾号{n4}的账户于{m}月{d}日{h}:15转入人民币{amount}元，当前可用余额{amount}元，详询客服。",
    "【{shop}】您的订单{order}已发货，快递单号{order}，预计{m}月{d}日送达，请保持电话畅通，感谢您的支持。",
    "【{shop}】亲爱的会员，本周六全场商品满299减50，积分可抵现，会员再享九五折，欢迎到店选购。回T退订",
    "【{shop}】您预约的{m}月{d}日{h}:30维修服务已确认，师傅将提前联系您，如需改约请致电客服。",
    "【{shop}】您的取件码为{code}，请凭码到小区东门驿站领取包裹，营业时间8:00-21:00，逾期将退回寄件人。",
    "【{shop}】您本月账单已出，应还金额{amount}元，最后还款日{m}月{d}日，请按时还款以免影响信用。",
    "【{shop}】春季新品上市，会员专享九折，满额包邮，活动详情请见 https://m.{host}.cn/a/{code} 拒收请回复R",
)

_DIRTY = (
    "【{shop}】内部消息，明日涨停板牛股推荐，加 微 信 {code} 进群免费领取，名额有限，先到先得，速来！",
    "【{shop}】澳门线上娱乐城盛大开业，百.家.乐首充即送88元，日赚千元不是梦，详询客服。回T退订",
    "【{shop}】恭喜您中奖了！请点击 {host}.top/{code} 领取iPhone，逾期作废。",
    "【{shop}】無抵押貸款，低息網貸，黑户可贷，当天放款，详询{n4}。回T退订",
    "【{shop}】ｇａｍｂｌｅ ｃａｓｉｎｏ 在线注册即送彩金，充值返现，提款秒到账，7x24小时客服★★★",
    "【{shop}】高仿名表 超A货 一元购 限时抢购，全国包邮货到付款 ^_^ 详情请加Q\u200bQ群 {code}",
    "【{shop}】您的账户涉嫌洗钱，请立即将资金转入安全账户配合调查，否则后果自负。",
)

_SHOPS = ("顺丰速运", "招商银行", "美团", "京东商城", "某某科技", "平安好车主", "菜鸟驿站", "星巴克")


def build_lexicon(size: int, rng: random.Random) -> Lexicon:
    entries = default_entries()
    categories = list(CATEGORIES)
    seen = {entry.word for entry in entries}
    while len(entries) < size:
        word = "".join(rng.choice(_POOL) for _ in range(rng.choice((3, 4, 4))))
        if word not in seen:
            seen.add(word)
            entries.append(LexiconEntry(word, rng.choice(categories)))
    return Lexicon(entries, DEFAULT_ALLOW, version=1)


def build_messages(count: int, rng: random.Random, dirty_share: float) -> list[tuple[str, str]]:
    messages: list[tuple[str, str]] = []
    for _ in range(count):
        dirty = rng.random() < dirty_share
        pattern = rng.choice(_DIRTY if dirty else _CLEAN)
        text = pattern.format(
            shop=rng.choice(_SHOPS),
            code=rng.randrange(100000, 999999),
            n4=rng.randrange(1000, 9999),
            m=rng.randrange(1, 13),
            d=rng.randrange(1, 29),
            h=rng.randrange(8, 21),
            amount=f"{rng.randrange(1, 100000)}.{rng.randrange(100):02d}",
            order=rng.randrange(10**11, 10**12),
            host=rng.choice(("shop", "example", "brand")),
        )
        msg_type = "marketing" if ("退订" in text or "拒收" in text) else rng.choice(("verification", "notification"))
        messages.append((text, msg_type))
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--words", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dirty", type=float, default=0.3, help="share of dirty messages")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    rng = random.Random(42)
    started = time.perf_counter()
    lexicon = build_lexicon(args.words, rng)
    build_seconds = time.perf_counter() - started
    checker = ContentChecker(lexicon)
    messages = build_messages(args.messages, rng, args.dirty)
    average_length = sum(len(text) for text, _ in messages) / len(messages)
    check = checker.check_content
    for text, msg_type in messages[:1000]:  # warm-up: lazy tables, OpenCC
        check(text, msg_type, "allowlist", ("shop.cn",))

    best = 0.0
    refused = 0
    for _ in range(args.rounds):
        refused = 0
        started = time.perf_counter()
        for text, msg_type in messages:
            if check(text, msg_type, "allowlist", ("shop.cn",)):
                refused += 1
        elapsed = time.perf_counter() - started
        best = max(best, len(messages) / elapsed)

    numbers = [str(13_000_000_000 + rng.randrange(10**9)) for _ in range(100_000)]
    started = time.perf_counter()
    ranges = find_number_ranges(numbers)
    range_ms = (time.perf_counter() - started) * 1000

    print(f"lexicon: {len(lexicon)} words, compiled in {build_seconds * 1000:.0f} ms")
    print(
        f"messages: {len(messages)} (avg {average_length:.0f} chars), refused {refused} ({refused / len(messages):.0%})"
    )
    print(f"content check: {best:,.0f} messages/s on one core (best of {args.rounds}; target >= 50,000)")
    print(f"number-range check of 100,000 numbers: {range_ms:.0f} ms ({len(ranges)} ranges)")


if __name__ == "__main__":
    main()
