"""The default lexicon shipped with qixin: forbidden words per category and the default allow-list.

This is seed data for a fresh installation — staff manage the live lexicon through the admin API
and may replace all of it.  Words are chosen to catch the *promotional* use of each forbidden
category (``股票推荐``, ``低息贷款``) rather than every mention of the topic, so that ordinary
notifications (``您的保单已生效``, ``本期贷款应还…``) are not refused; categories whose mere mention
is refused by the contracts (gambling, pornography, fraud) have broad words.

:data:`DEFAULT_ALLOW` lists known false positives: phrases that contain a forbidden word in a
legitimate context (public-service warnings against gambling or fraud, 反洗钱 notices from banks,
the national immigration administration …).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Final

from qixin.domain.compliance.lexicon import Lexicon, LexiconEntry

__all__ = ["DEFAULT_ALLOW", "DEFAULT_WORDS", "default_entries", "default_lexicon"]

DEFAULT_WORDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "stocks": (
            "股票推荐",
            "内幕消息",
            "牛股",
            "荐股",
            "涨停板",
            "炒股群",
            "股票配资",
            "黑马股",
            "主力资金内幕",
        ),
        "immigration": ("移民", "移民咨询", "投资移民", "海外身份", "绿卡办理", "移民中介"),
        "real_estate": (
            "楼盘",
            "零首付",
            "首付低至",
            "售楼处",
            "现房发售",
            "学区房",
            "房源推荐",
            "买房送",
            "样板间",
        ),
        "education": ("培训班", "补习班", "招生", "学历提升", "包过", "辅导班", "考证培训", "试听课"),
        "recruitment": ("招聘", "高薪诚聘", "招工", "兼职日结", "在家兼职", "急招", "月入过万"),
        "lottery": ("彩票", "六合彩", "时时彩", "福彩", "双色球", "特码", "必中号码", "彩票预测"),
        "rebate": ("返利", "返现", "佣金返还", "高额返佣", "充值返现", "购物返利"),
        "loan": ("网贷", "低息贷款", "无抵押贷款", "快速放款", "黑户可贷", "秒批", "借款秒到", "套现"),
        "debt_collection": ("催收", "欠款不还", "上门催收", "通讯录催收", "爆通讯录", "暴力催收", "债务追讨"),
        "investment": (
            "理财产品",
            "稳赚不赔",
            "高收益理财",
            "保本保息",
            "原始股",
            "数字货币",
            "虚拟币",
            "外汇平台",
        ),
        "gambling": (
            "赌博",
            "gamble",
            "casino",
            "博彩",
            "赌场",
            "百家乐",
            "赌球",
            "网上娱乐城",
            "老虎机",
            "棋牌充值",
            "下注",
        ),
        "prize": ("中奖", "恭喜您中奖", "幸运观众", "领取奖品", "抽奖", "中大奖", "获奖名单"),
        "one_yuan": ("一元购", "1元购", "一元夺宝", "一元抢", "1元抢购", "一元秒杀"),
        "counterfeit": ("高仿", "复刻", "原单货", "a货", "假货", "精仿", "超a货"),
        "medical": ("包治", "根治", "祖传秘方", "无痛人流", "男科", "性病", "特效药", "医院优惠"),
        "cosmetic_surgery": ("整形", "隆胸", "割双眼皮", "隆鼻", "抽脂", "玻尿酸", "微整形"),
        "beauty": ("美容院", "美白祛斑", "祛痘", "皮肤管理", "美容套餐", "嫩肤"),
        "club": ("会所", "私人会所", "商务会所", "养生会所", "高端会所"),
        "bar": ("酒吧", "夜场", "清吧", "夜店", "酒吧卡座", "ktv包厢"),
        "foot_massage": ("足浴", "足疗", "洗脚城", "按摩spa", "推油", "上门按摩"),
        "violence": ("砍死", "杀人", "打死你", "血洗", "雇凶", "炸药"),
        "threat": ("后果自负", "小心你的家人", "等着瞧", "弄死你", "让你好看", "不还钱就"),
        "pornography": ("色情", "裸聊", "约炮", "援交", "一夜情", "成人视频", "小姐上门", "黄色网站"),
        "fur": ("皮草", "貂皮", "貂绒大衣", "狐狸毛", "皮草特卖"),
        "exam_help": ("代考", "替考", "枪手", "考试答案", "包过代考", "论文代写", "考试作弊"),
        "trademark": ("商标注册", "注册商标", "商标代理", "商标申请", "专利申请代理"),
        "add_contact": ("加微信", "加qq", "加qq群", "加群", "加v", "加vx", "加我微信", "微信号", "扫码进群"),
        "personal_data": (
            "个人信息出售",
            "数据出售",
            "客户资料出售",
            "精准客户资料",
            "手机号码数据",
            "车主信息",
            "名单出售",
        ),
        "sms_channel": ("短信群发", "短信通道", "群发短信", "短信平台代理", "106通道", "营销短信代发"),
        "decoration": (
            "装修报价",
            "装修公司",
            "建材特卖",
            "家具特卖",
            "家具促销",
            "瓷砖特价",
            "全屋定制",
            "整装套餐",
        ),
        "game": ("游戏充值", "新服开启", "新区开服", "游戏币", "私服", "首充", "手游"),
        "exhibition": ("展会", "博览会", "展销会", "参展", "展位预定", "交易会"),
        "website_promotion": ("网站推广", "网站优化", "seo优化", "百度排名", "网站建设", "网站制作"),
        "coupon": ("优惠券", "代金券", "满减券", "领券", "折扣券", "红包券"),
        "card": ("办卡", "办信用卡", "信用卡代办", "大额信用卡", "快速提额", "信用卡套现"),
        "insurance": ("保险推荐", "买保险", "保险产品", "重疾险特惠", "意外险特惠", "保险优惠", "保险理财"),
        "alcohol": ("白酒", "红酒", "茅台", "五粮液", "酒水特价", "洋酒", "酒类"),
        "user_acquisition": ("拉新", "新人专享", "邀请好友", "老用户回归", "回归礼包", "下载app", "注册就送"),
        "court_summons": ("法院传票", "传票", "开庭通知", "判决书", "起诉通知", "强制执行通知", "立案通知"),
        "political": ("法轮功", "台独", "藏独", "疆独", "颠覆国家政权", "六四事件", "反共"),
        "fraud": ("刷单", "安全账户", "涉嫌洗钱", "洗钱", "冒充公检法", "解冻费", "代开发票", "资金冻结"),
    }
)

DEFAULT_ALLOW: Final[tuple[str, ...]] = (
    "国家移民管理局",
    "移民管理局",
    "反洗钱",
    "远离赌博",
    "拒绝赌博",
    "禁止赌博",
    "严禁赌博",
    "打击赌博",
    "举报赌博",
    "赌博违法",
    "所谓安全账户",
    "所谓的安全账户",
    "谨防刷单",
    "警惕刷单",
    "防范刷单",
    "谨防中奖",
    "中奖诈骗",
    "代考生",
    "招生考试院",
    "加vip",
)


def default_entries() -> list[LexiconEntry]:
    """The shipped words as lexicon entries."""
    return [LexiconEntry(word, category) for category, words in DEFAULT_WORDS.items() for word in words]


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The shipped lexicon, compiled once (version 0)."""
    return Lexicon(default_entries(), DEFAULT_ALLOW, version=0)
