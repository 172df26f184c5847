"""Writes the content-classifier corpus: qixin/domain/data/corpus/classifier_corpus.jsonl.

The corpus is written for qixin (no text is taken from elsewhere).  Each violating text is composed
from a category's *hooks* (the claim that makes it forbidden), phrased either with a word of the
shipped lexicon (``kw``) or without any (``free``: meaning, not listed words), framed by openers,
calls to action and closings shared by all advertising, and in part disguised by an evasion
(spaces or symbols between characters, full-width letters, traditional characters, zero-width
characters, homophones of 微信/QQ).  Legitimate texts are the look-alikes: bank bills and repayment
reminders, insurance policy notices, delivery and pickup codes, government and school notices,
order confirmations, appointments, verification codes, marketing with a proper unsubscribe.

Every row: ``{"text", "label", "promo", "split", "kind"}`` — ``label`` is a category code of
``qixin.domain.compliance.CATEGORIES`` or ``legit``; ``promo`` is 1 for promotional intent;
``split`` is ``train`` or ``heldout`` (fixed: a hash of the text, about 20 % held out);
``kind`` says how the row was made (``kw``, ``free``, ``evasion`` or the legitimate kind).

    .venv/bin/python bench/make_classifier_corpus.py   # deterministic: same output every run
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from qixin.domain.compliance import default_lexicon

OUT = Path(__file__).resolve().parents[1] / "qixin" / "domain" / "data" / "corpus" / "classifier_corpus.jsonl"
HELDOUT_PERCENT = 20

SHOPS = ("鑫达", "恒通", "华夏优选", "金辉", "盛世", "佳和", "瑞丰", "同福", "博远", "永利", "聚鑫", "安泰")
PHONES = ("138{n4}{n4}", "1{n2}{n4}{n4}", "400-{n3}-{n4}", "0755-{n4}{n4}")
URLS = ("http://t.cn/{code}", "www.{w}{n3}.com", "{w}.top/{code}", "https://{w}.cc/{n4}")
WORDS = ("vip", "go", "win", "hk", "best", "fast", "ok")

AD_OPENERS = (
    "",
    "亲，",
    "老板您好，",
    "您好，",
    "尊敬的客户：",
    "好消息！",
    "重磅！",
    "机会难得，",
    "朋友您好，",
    "限时福利：",
)
AD_ACTIONS = (
    "详询{phone}",
    "点击{url}了解",
    "回复1立即咨询",
    "名额有限，先到先得",
    "速来咨询{phone}",
    "仅限今日，错过不再有",
    "戳{url}马上了解",
    "致电{phone}预约",
    "私信客服了解详情",
    "今天报名还有惊喜",
)
AD_CLOSINGS = ("", "回T退订", "拒收请回复R", "退订回TD", "", "。")

# category: (promotional?, keyword hooks, keyword-free hooks)
CATEGORY_HOOKS: dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]] = {
    "stocks": (
        1,
        ("每日股票推荐，跟着老师抓牛股", "内幕消息，明天涨停板", "专业荐股团队带你翻倍", "黑马股提前布局"),
        (
            "老师每天盘前给代码，跟上主升浪",
            "A股短线操作指导，本周三只票平均涨了百分之四十",
            "主力已经进场，这只票下周要拉升",
            "免费进盘友交流室，每天收盘后点评个股",
            "跟着导师买入，月收益跑赢大盘十倍",
        ),
    ),
    "immigration": (
        1,
        ("投资移民专场说明会", "海外身份快速办理", "移民中介一站式服务", "绿卡办理成功率高"),
        (
            "三个月拿到欧洲永居，子女免费读公立学校",
            "购房即可获得他国长期居留权，全家一起走",
            "加拿大枫叶卡，美国EB5，一对一规划",
            "护照加急办理，免签一百多个国家",
            "不用考语言，半年落地海外定居",
        ),
    ),
    "real_estate": (
        1,
        ("地铁口精装楼盘，首付低至10万", "零首付买房，售楼处热线", "学区房房源推荐", "现房发售，买房送车位"),
        (
            "市中心两房特价，总价八十万起，手续全包",
            "开发商直售，小户型低总价，送精装修",
            "临湖洋房最后十套，看房即送家电",
            "公寓年租金回报百分之八，可落户",
            "新盘开盘当天认购享九八折",
        ),
    ),
    "education": (
        1,
        ("暑期辅导班火热招生", "学历提升，本科包过", "考证培训，试听课免费", "补习班一对一提分"),
        (
            "名师小班授课，数学一个月提高三十分",
            "在职也能拿全日制文凭，不用到校上课",
            "零基础学会计，三个月拿证上岗",
            "少儿编程体验课，前五十名免学费",
            "考研冲刺营，保证过线不过退费",
        ),
    ),
    "recruitment": (
        1,
        ("高薪诚聘，在家兼职", "急招打字员，兼职日结", "招聘主播，月入过万", "工厂招工包吃住"),
        (
            "手机就能做，每天两小时，日收入三五百",
            "宝妈学生都能干，动动手指当天结钱",
            "岗位空缺，无需经验，底薪八千加提成",
            "线上点赞任务，一单一结，多劳多得",
            "诚招代理，轻松上手，时间自由",
        ),
    ),
    "lottery": (
        1,
        ("彩票预测必中号码", "双色球内部推荐", "时时彩稳赢计划", "六合彩特码包中"),
        (
            "专家团队精准计算下一期号码，跟投即中",
            "今晚开奖号码提前透露，准确率九成",
            "大乐透追号计划，一个月中两次二等奖",
            "每期只需十块钱，跟着导师买号码",
            "开奖走势分析群，已有会员命中头奖",
        ),
    ),
    "rebate": (
        1,
        ("购物返利，每单都返现", "充值返现百分之二十", "高额返佣等你来拿", "佣金返还天天到账"),
        (
            "下单后截图给客服，当场退回一半货款",
            "邀请朋友消费，你拿提成他拿好处",
            "每买一笔退你百分之三十，无上限",
            "先付款后返还，本金加奖励一起到账",
            "自购省钱，分享赚钱，一部手机就能做",
        ),
    ),
    "loan": (
        1,
        ("低息贷款，快速放款", "无抵押贷款，黑户可贷", "网贷秒批，借款秒到", "信用卡套现，当天到账"),
        (
            "凭身份证就能借五万，不看征信",
            "急用钱找我们，十分钟审核马上到账",
            "额度最高二十万，月息低至三厘",
            "逾期也能办，不查流水不押车",
            "手机申请，无需担保，放款快",
        ),
    ),
    "debt_collection": (
        0,
        ("你的欠款不还，将安排上门催收", "已进入通讯录催收流程", "暴力催收前最后通知", "债务追讨公司受委托处理"),
        (
            "你在平台的借款已逾期三十天，今天不处理就联系你的家人和同事",
            "再不还款我们就把你的情况发给你所有联系人",
            "明天会有人到你单位找你谈还款的事",
            "你的欠款已经转给我们处理，今天下午五点前必须结清",
            "你老赖的身份马上在你们小区公示",
        ),
    ),
    "investment": (
        1,
        ("高收益理财产品，稳赚不赔", "保本保息，年化百分之十五", "数字货币投资，虚拟币翻倍", "原始股认购最后机会"),
        (
            "每天收益百分之二，随存随取，本金安全",
            "投一万一个月拿回一万三，已有上千人在做",
            "跟着分析师炒黄金，周收益百分之二十",
            "私募内部份额开放，起投五万年化十八",
            "区块链项目早期入场，一年增值十倍",
        ),
    ),
    "gambling": (
        1,
        ("网上娱乐城注册送彩金", "百家乐真人在线", "赌球平台充值优惠", "老虎机天天送"),
        (
            "足球比赛竞猜，一比一点九赔率，提款秒到",
            "真人荷官在线发牌，首存一百送一百",
            "每晚开局，押大押小，十分钟一把",
            "牌局二十四小时不打烊，输了还返水",
            "世界杯竞猜平台上线，注册即送五十元体验金",
        ),
    ),
    "prize": (
        1,
        ("恭喜您中奖，请领取奖品", "您被抽为幸运观众", "获奖名单已公布，您中大奖", "抽奖活动您获得一等奖"),
        (
            "您的手机号被系统抽中，获得现金八千元和笔记本电脑",
            "节目组通知您获得二等奖，请尽快办理领取手续",
            "您已获得价值五千元的大礼包，逾期视为放弃",
            "本次活动您排名第三，奖金将在缴纳手续费后发放",
            "您被选为年度幸运用户，点击填写地址领取奖励",
        ),
    ),
    "one_yuan": (
        1,
        ("一元购iPhone", "1元抢购名牌包", "一元夺宝天天开", "一元秒杀限量"),
        (
            "只要一块钱，手机电脑任你挑",
            "花一块钱试手气，拿走最新款平板",
            "一块钱起拍，全场商品先到先得",
            "付一元参与，满员即开奖送大牌",
            "一块钱抢茅台，每天十点开抢",
        ),
    ),
    "counterfeit": (
        1,
        ("高仿名表超A货", "原单货清仓", "精仿大牌包包", "复刻奢侈品一比一"),
        (
            "大牌同款一比一做工，专柜验不出来",
            "工厂直出名牌鞋，价格只要正品十分之一",
            "和正品一模一样的手表，带全套盒子和证书",
            "外贸尾单大牌衣服，吊牌齐全，三折出",
            "名牌包同厂同料，朋友圈代购渠道",
        ),
    ),
    "medical": (
        1,
        ("祖传秘方包治百病", "男科专家根治", "无痛人流医院优惠", "特效药三天见效"),
        (
            "老中医家传方子，糖尿病高血压吃三个疗程停药",
            "专治各种疑难杂症，不手术不打针",
            "前列腺问题一次调理彻底解决",
            "民营医院专家坐诊，挂号免费检查半价",
            "癌症晚期也有希望，纯中药调理",
        ),
    ),
    "cosmetic_surgery": (
        1,
        ("整形医院周年庆", "割双眼皮特价", "隆鼻隆胸分期付款", "玻尿酸微整形体验"),
        (
            "韩国专家团队做眼睛鼻子，术后一周自然",
            "脸部填充打针瘦脸，三十分钟变美",
            "吸脂塑形，一次瘦十斤，不反弹",
            "下巴假体加自体脂肪填充，打造精致五官",
            "私密紧致手术，恢复快无疤痕",
        ),
    ),
    "beauty": (
        1,
        ("美容院新店开业", "美白祛斑套餐", "皮肤管理首次体验", "美容套餐买十送五"),
        (
            "光子嫩肤一次十九块九，让皮肤白里透红",
            "脸上的斑点痘印一次清除，不满意退款",
            "做脸加肩颈护理，会员卡充一千送一千",
            "小气泡清洁加补水，新客只要九块九",
            "头皮养护防脱发，体验价三十八元",
        ),
    ),
    "club": (
        1,
        ("高端会所盛大开业", "私人会所商务接待", "养生会所新人特惠", "商务会所包间预定"),
        (
            "顶级私密场所，专为成功人士打造，服务周到",
            "市中心独栋私宅，提供专属接待和贵宾服务",
            "会员制休闲空间，美女服务员全程陪同",
            "专属管家服务，私密性高，只接熟客介绍",
            "老板谈生意的好去处，环境私密，随叫随到",
        ),
    ),
    "bar": (
        1,
        ("酒吧今晚派对", "夜场卡座预定", "夜店周末狂欢", "酒吧卡座买一送一"),
        (
            "今晚DJ驻场，美女调酒师，订台送香槟",
            "周末电音之夜，开台送果盘和啤酒一打",
            "女士免费入场，男士消费满额送酒",
            "驻唱乐队现场演出，订位享八折",
            "凌晨两点前入场，啤酒第二打半价",
        ),
    ),
    "foot_massage": (
        1,
        ("足浴中心新店开业", "足疗按摩套餐", "上门按摩服务", "洗脚城会员特惠"),
        (
            "泡脚加全身推拿，一百二十分钟只要九十八",
            "技师上门服务，酒店家里都可以，二十四小时",
            "中药泡脚肩颈放松，办卡送十次",
            "夜间休闲放松，技师年轻手法好",
            "足部护理加精油推背，首次到店半价",
        ),
    ),
    "violence": (
        0,
        ("信不信我砍死你", "我要杀人了", "出五万雇凶", "血洗你们公司"),
        (
            "再让我看到你，我就带人把你腿打断",
            "今晚带几个兄弟去你店里砸场子",
            "我已经准备好刀了，你等着",
            "你要是敢报警，我让你在医院躺半年",
            "把你家的门窗全砸了，一个不留",
        ),
    ),
    "threat": (
        0,
        ("后果自负", "小心你的家人", "你等着瞧", "不还钱就让你好看"),
        (
            "我知道你女儿在哪个学校上学，你自己掂量",
            "你的照片和住址我都有了，别逼我",
            "今天不给个说法，明天你的丑事全网都知道",
            "我们的人已经在你家楼下了",
            "识相的赶紧处理，不然有你受的",
        ),
    ),
    "pornography": (
        1,
        ("成人视频免费看", "裸聊一对一", "小姐上门服务", "一夜情同城交友"),
        (
            "同城寂寞美女在线陪聊，视频私密不收费",
            "附近的人约见面，学生妹少妇任你选",
            "夜间福利资源，高清无码每天更新",
            "深夜私密直播间，主播尺度大",
            "酒店上门陪伴服务，照片真实，先见面后付款",
        ),
    ),
    "fur": (
        1,
        ("皮草特卖会", "貂皮大衣清仓", "貂绒大衣三折", "狐狸毛领外套"),
        (
            "整貂水貂外套，工厂价三千八，原价两万",
            "真毛领羽绒服，海宁直供",
            "水貂整皮长款外套，过季清仓",
            "獭兔毛外套，冬季新款上市",
            "整张狐狸皮披肩，限量二十件",
        ),
    ),
    "exam_help": (
        1,
        ("代考驾照科目一", "考试答案提前发", "论文代写包过", "枪手替考四六级"),
        (
            "四六级考前拿到真题和解析，保证过",
            "毕业论文一条龙，查重率保证低于百分之十",
            "会计职称考试，有人帮你进考场",
            "耳机考试设备，实时传送标准答案",
            "考试前一晚发题，不过全额退款",
        ),
    ),
    "trademark": (
        1,
        ("商标注册加急办理", "商标代理一站式", "注册商标低价", "专利申请代理"),
        (
            "品牌名字再不保护就被别人抢注了，三天受理",
            "公司名称和商品名保护，官费加服务费一千二",
            "知识产权申报，包下证，不成功全退",
            "品牌logo申报保护，全类别检索免费",
            "新公司开业，品牌保护早申请早安心",
        ),
    ),
    "add_contact": (
        1,
        ("加微信领资料", "加我微信送礼品", "扫码进群免费领", "加QQ群交流"),
        (
            "添加V信{n4}了解详情",
            "加薇信号{n4}进交流圈",
            "私聊扣扣{n4}{n4}领福利",
            "搜索威信号{w}{n4}，通过后发你资料",
            "进我们的交流圈子，每天分享干货，加V：{w}{n4}",
        ),
    ),
    "personal_data": (
        1,
        ("精准客户资料出售", "车主信息名单出售", "手机号码数据批发", "个人信息出售"),
        (
            "各行业客户电话表格，按城市按年龄筛选",
            "新楼盘业主联系方式，姓名电话门牌号齐全",
            "贷款意向客户名单，当天更新，按条计费",
            "宝妈群体手机号，可按区县提取",
            "最新注册公司老板电话，一千条只要一百元",
        ),
    ),
    "sms_channel": (
        1,
        ("短信群发平台", "106通道稳定", "营销短信代发", "短信通道代理招商"),
        (
            "三网合一发信接口，到达率百分之九十九，三分钱一条",
            "批量发送手机消息，不限内容，秒到",
            "企业推广发信服务，签名自定义，价格全网最低",
            "验证码接口和广告通道都有，量大从优",
            "一次可发十万条，支持链接，当天开户",
        ),
    ),
    "decoration": (
        1,
        ("装修公司免费量房", "建材特卖会", "全屋定制套餐", "瓷砖特价清仓"),
        (
            "新房精装一口价，八万八全包，送设计",
            "地板卫浴厨柜工厂直销，今天下单立减两千",
            "旧房翻新，免费上门设计出方案",
            "沙发床垫餐桌椅，周末展厅五折",
            "木门衣柜一站式，交定金送智能锁",
        ),
    ),
    "game": (
        1,
        ("手游新区开服", "游戏充值五折", "私服上线送元宝", "首充送神装"),
        (
            "经典传奇重开，上线送满级坐骑，一刀九九九",
            "新版本今日开放，登录即领十连抽",
            "仙侠大作公测，创角就送VIP十",
            "兄弟们回来战斗，沙城争霸今晚八点",
            "冲榜活动开启，前一百名送限定皮肤",
        ),
    ),
    "exhibition": (
        1,
        ("国际博览会诚邀参展", "展位预定火热进行", "交易会免费领票", "家居展销会开幕"),
        (
            "本月十八日国际会展中心，三千家企业齐聚，免费领门票",
            "行业年度盛会，现场订货享底价",
            "春季车展开幕，现场订车送大礼",
            "名品汇聚三天，到场即送精美礼品",
            "采购商对接大会报名中，摊位所剩不多",
        ),
    ),
    "website_promotion": (
        1,
        ("网站建设三天上线", "SEO优化百度排名", "网站推广效果好", "网站制作包排名"),
        (
            "让你的公司搜索排第一页，不上首页不收费",
            "企业官网加小程序，一年只要九百九",
            "关键词霸屏，客户主动找上门",
            "搜索引擎首页展示，按天付费",
            "做个官网接单，模板多，当天上线",
        ),
    ),
    "coupon": (
        1,
        ("领券立减五十", "优惠券限时领取", "满减券天天发", "代金券免费送"),
        (
            "点击领取无门槛红包，下单直接抵扣",
            "外卖天天抵扣十元，点开就能拿",
            "送你一张满一百减六十的券，今天有效",
            "专属抵扣券已到账，超市购物直接用",
            "全场通用立减金，限量一千张",
        ),
    ),
    "card": (
        1,
        ("大额信用卡代办", "办信用卡当天下卡", "快速提额包通过", "信用卡代办不看征信"),
        (
            "白户也能下卡，额度五万起",
            "帮你申请银行卡片，征信差也能批",
            "内部渠道额度提升，三天见效",
            "免费办理各大银行卡，专人上门",
            "黑白户都能下卡，不成功不收费",
        ),
    ),
    "insurance": (
        1,
        ("重疾险特惠", "保险产品推荐", "买保险送体检", "意外险特惠一元起"),
        (
            "一年三百块，保额五十万，大病都能赔",
            "给孩子一份保障，每天一杯奶茶钱",
            "百万医疗保障限时开放，六十岁也能投",
            "分红型年金，每年返还，养老无忧",
            "今天投保首月一分钱，病了就赔",
        ),
    ),
    "alcohol": (
        1,
        ("茅台五粮液特价", "红酒整箱批发", "白酒团购价", "洋酒酒水特价"),
        (
            "五十三度酱香，厂家直供，整箱六瓶八百八",
            "法国进口干红，买一箱送一箱",
            "原浆高粱酿造，十年陈酿特惠",
            "飞天年份货，婚宴用酒团购价",
            "威士忌白兰地批发，节日送礼首选",
        ),
    ),
    "user_acquisition": (
        1,
        ("邀请好友注册就送", "老用户回归礼包", "下载APP领现金", "新人专享福利"),
        (
            "好久没见到你了，回来登录就送二十元",
            "你的账户还有未领取奖励，回来看看吧",
            "推荐朋友使用，每成功一位奖励五十",
            "重新登录即可领取七天会员",
            "装上我们的软件，首次打开领红包",
        ),
    ),
    "court_summons": (
        0,
        ("法院传票", "开庭通知", "立案通知，请及时处理", "强制执行通知"),
        (
            "你涉及一起民事纠纷，人民法院将于三日后缺席审理，请速联系办案人员",
            "你的案件已进入审理程序，请按一号键查询",
            "你未按时出庭，本院将冻结你名下所有财产",
            "你被起诉了，案号已生成，请今天联系书记员",
            "你的诉讼材料已送达，逾期不处理将列为失信人员",
        ),
    ),
}

# Hooks promoted to "with evasion" texts: homophones and split spellings that normalisation
# does not fold; the model has to learn them from the corpus.
EVASION_SEPARATORS = (" ", ".", "-", "*", "\u200b", "/", "_", "·")

LEGIT_TEMPLATES: dict[str, tuple[int, tuple[str, ...]]] = {
    "bank_bill": (
        0,
        (
            "【{bank}】您尾号{n4}的信用卡本期账单金额{amount}元，最低还款{small}元，到期还款日{m}月{d}日。",
            "【{bank}】尊敬的客户，您的贷款本期应还{amount}元，还款日{m}月{d}日，请确保尾号{n4}账户余额充足。",
            "【{bank}】您的房贷第{k}期应还款{amount}元将于{m}月{d}日自动扣款，请提前存入足额资金。",
            "【{bank}】温馨提示：您尾号{n4}的信用卡账单已逾期，请尽快还款以免影响个人征信，如已还款请忽略。",
            "【{bank}】您尾号{n4}的账户{m}月{d}日{h}:{mi}消费{amount}元，可用额度{amount}元。",
            "【{bank}】您的个人消费贷款已于{m}月{d}日结清，感谢您的信任。",
            "【{bank}】您申请的分期还款已办理成功，共{k}期，每期{small}元，首期{m}月{d}日扣款。",
            "【{bank}】您尾号{n4}账户{m}月{d}日转入{amount}元，余额{amount}元。",
            "【{bank}】您的信用卡于{m}月{d}日还款{amount}元已入账，当前欠款{small}元。",
            "【{bank}】根据反洗钱相关规定，请于{m}月{d}日前通过手机银行更新您的身份证件有效期。",
            "【{bank}】您的信用卡年费{small}元将于{m}月{d}日收取，当年刷卡满六次可减免。",
            "【{bank}】您尾号{n4}的借记卡将于{m}月到期，新卡已寄往您预留的地址。",
        ),
    ),
    "insurance_notice": (
        0,
        (
            "【{ins}】尊敬的{name}，您的保单{order}已于{m}月{d}日生效，保障期限一年，电子保单已发送至邮箱。",
            "【{ins}】您的保单{order}续期保费{amount}元将于{m}月{d}日从尾号{n4}账户扣缴，请保持余额充足。",
            "【{ins}】您提交的理赔申请已审核通过，赔款{amount}元将于三个工作日内到账。",
            "【{ins}】您的车险将于{m}月{d}日到期，如需续保可登录官方应用办理，已续保请忽略。",
            "【{ins}】尊敬的客户，您的保单{order}已进入宽限期，请在{m}月{d}日前缴费以免保单失效。",
            "【{ins}】您的理赔材料已收到，案件号{order}，我们将在五个工作日内完成审核。",
            "【{ins}】您好，您的保单{order}受益人信息变更已完成。",
            "【{ins}】您的保单{order}本年度红利{small}元已计入保单账户。",
            "【{ins}】尊敬的{name}，您补充的健康告知材料已收到，核保结果将另行通知。",
        ),
    ),
    "delivery": (
        0,
        (
            "【{exp}】您的快递已到{place}，取件码{n4}，请于今日{h}点前领取。",
            "【{exp}】取件码{code}，您的包裹已存放在{place}快递柜，超过二十四小时将收取保管费。",
            "【{exp}】您的包裹{order}正在派送中，快递员电话{phone}，请保持电话畅通。",
            "【{exp}】您的快件{order}已签收，签收人：{place}前台，如有疑问请联系快递员。",
            "【{exp}】您寄出的包裹{order}已揽收，预计{m}月{d}日送达。",
            "【{exp}】您有一个包裹在{place}驿站，凭取件码{n4}领取，营业时间8:00-21:00。",
            "【{exp}】您的快件因地址不详无法派送，请回电{phone}确认地址。",
        ),
    ),
    "gov_notice": (
        0,
        (
            "【{gov}】您预约的{m}月{d}日上午业务办理，请携带身份证原件到服务大厅{k}号窗口。",
            "【{gov}】提醒：本市{m}月{d}日起调整社保缴费基数，详情请登录官网查询。",
            "【{gov}】您的居住证已办理完成，请于工作日到所在街道领取。",
            "【{gov}】暴雨橙色预警：预计今天夜间有强降雨，请减少外出，注意安全。",
            "【{gov}】反诈提醒：公检法机关不会通过电话要求转账，请勿向所谓安全账户汇款。",
            "【{gov}】您的车辆{m}月{d}日在{place}路段违停，请及时处理。",
            "【{gov}】您申请的出入境证件已制作完成，请凭回执到国家移民管理局服务窗口领取。",
            "【{gov}】{m}月{d}日起开展全民健康体检，六十五岁以上老人可携身份证到社区卫生中心免费体检。",
            "【{gov}】远离赌博，珍爱家庭，发现赌博违法线索请拨打110举报。",
            "【{gov}】您的个人所得税年度汇算已完成，退税{small}元将退至您的银行账户。",
            "【{gov}】您的住房公积金本月缴存{small}元，账户余额{amount}元。",
            "【{gov}】您的城乡居民医保{m}月{d}日已缴费{small}元，保障期至明年底。",
        ),
    ),
    "school_notice": (
        0,
        (
            "【{school}】家长您好，{m}月{d}日下午{h}点召开家长会，请准时到{k}年级教室参加。",
            "【{school}】通知：因天气原因，明天全校停课一天，请家长做好孩子看护。",
            "【{school}】您的孩子{name}本周作业已全部完成，期中考试安排在{m}月{d}日。",
            "【{school}】新学期报到时间为{m}月{d}日，请携带户口本和疫苗接种证。",
            "【{school}】您好，您报名的{m}月{d}日英语四级考试准考证已可打印，请登录考试院网站。",
            "【{school}】提醒：学生放学时间调整为下午{h}点，请家长按时接送。",
            "【{school}】{name}同学，您的录取通知书已寄出，快递单号{order}。",
            "【{school}】{name}家长：本学期学杂费{amount}元请于{m}月{d}日前通过缴费平台缴纳。",
            "【{school}】本周五下午举行秋季运动会，请学生穿运动服到校。",
        ),
    ),
    "order": (
        0,
        (
            "【{shop}】您的订单{order}已支付成功，金额{amount}元，预计{m}月{d}日发货。",
            "【{shop}】您购买的商品已发货，物流单号{order}，可在订单详情查看物流进度。",
            "【{shop}】您的退款{amount}元已原路退回，请注意查收。",
            "【{shop}】您预订的{m}月{d}日{place}酒店已确认，入住人{name}，订单号{order}。",
            "【{shop}】您的外卖订单已送达，祝您用餐愉快。",
            "【{shop}】您的机票已出票，{m}月{d}日{h}:{mi}起飞，请提前两小时到达机场。",
            "【{shop}】您订购的沙发已安排{m}月{d}日送货上门，师傅电话{phone}。",
            "【{shop}】您的话费充值{small}元已到账，当前余额{amount}元。",
        ),
    ),
    "appointment": (
        0,
        (
            "【{hosp}】您已成功预约{m}月{d}日上午{name}医生门诊，就诊序号{k}，请提前二十分钟到院取号。",
            "【{hosp}】您的体检报告已出，请登录公众号查看或到服务台领取。",
            "【{hosp}】提醒：您明天{h}:{mi}的复诊预约，请携带既往病历。",
            "【{shop}】您预约的{m}月{d}日{h}:30上门维修已确认，师傅将提前联系您。",
            "【{shop}】您预约的汽车保养时间为{m}月{d}日{h}点，请准时到店。",
            "【{hosp}】您的孩子{m}月{d}日需接种第{k}剂疫苗，请按时到社区卫生服务中心。",
        ),
    ),
    "verification": (
        0,
        (
            "【{shop}】您的验证码为{code}，5分钟内有效，请勿泄露给他人。",
            "【{bank}】验证码{code}，您正在进行转账操作，切勿告知他人。",
            "【{shop}】登录验证码{code}，如非本人操作请忽略。",
            "【{shop}】您正在修改密码，验证码{code}，10分钟内有效。",
            "【{ins}】您正在办理保单查询，验证码{code}。",
        ),
    ),
    "service": (
        0,
        (
            "【{shop}】您的会员积分{amount}将于{m}月{d}日到期，可登录账户查看。",
            "【{shop}】您的密码已修改成功，如非本人操作请立即联系客服。",
            "【{shop}】您的账户于{m}月{d}日在新设备登录，如非本人操作请及时冻结。",
            "【{shop}】您的宽带将于{m}月{d}日到期，续费可在营业厅或线上办理。",
            "【{shop}】本小区{m}月{d}日{h}点至{h}点停水检修，请提前储水，物业服务中心。",
            "【{shop}】您的电费余额不足{small}元，请及时缴费以免停电。",
            "【{shop}】您提交的发票申请已开具，电子发票已发送至您的邮箱。",
            "【{shop}】您好，您投诉的问题已处理完毕，感谢您的反馈。",
            "【{shop}】{name}您好，您投递的岗位已通过初筛，请于{m}月{d}日{h}点到公司参加面试。",
            "【{shop}】尊敬的业主，您本季度物业费{amount}元请于{m}月{d}日前缴纳。",
        ),
    ),
    "marketing": (
        1,
        (
            "【{shop}】秋季新品上市，全场满299减50，会员再享九五折，欢迎到店选购。回T退订",
            "【{shop}】周末水果特卖，苹果每斤三块九，到店即享。拒收请回复R",
            "【{shop}】亲爱的会员，您的生日月到店消费享双倍积分。退订回TD",
            "【{shop}】新店开业，咖啡第二杯半价，活动至{m}月{d}日。回T退订",
            "【{shop}】夏季清仓，T恤短裤低至五折，线上线下同价。回T退订",
            "【{shop}】本周六亲子手工活动开放报名，会员免费参加。回T退订",
            "【{shop}】家电以旧换新，空调冰箱补贴最高五百元，详情到店咨询。退订回TD",
            "【{shop}】您关注的图书已降价，现价{small}元，可在应用内查看。回T退订",
            "【{shop}】火锅店{m}月{d}日新品上线，到店品尝享八八折。拒收请回复R",
            "【{shop}】健身房周年庆，年卡会员续费赠送两个月。回T退订",
            "【{shop}】春装上新，连衣裙满两件打九折，包邮。回T退订",
            "【{shop}】超市每周三会员日，生鲜蔬菜九折。回T退订",
            "【{shop}】{m}月{d}日店庆，全场服装八折，会员积分翻倍。回T退订",
            "【{shop}】新品蛋糕上市，{small}元起，可提前一天预订。回T退订",
            "【{shop}】您常买的洗衣液本周特价{small}元，到店即可购买。退订回TD",
            "【{shop}】周年庆，到店消费满{k}0元送环保袋一个。拒收请回复R",
        ),
    ),
}

BANKS = ("招商银行", "工商银行", "建设银行", "农业银行", "交通银行", "浦发银行", "兴业银行", "中国银行")
INSURERS = ("平安保险", "中国人寿", "太平洋保险", "泰康人寿", "人保财险", "新华保险")
EXPRESS = ("顺丰速运", "中通快递", "圆通速递", "京东物流", "菜鸟驿站", "韵达快递", "邮政EMS")
GOV = ("市人社局", "市公安局", "区政务服务中心", "市气象局", "市税务局", "交警支队", "市卫健委", "街道办")
SCHOOLS = ("实验小学", "第一中学", "育才中学", "市教育考试院", "师范大学", "阳光幼儿园")
HOSPITALS = ("市人民医院", "妇幼保健院", "中医院", "口腔医院", "社区卫生服务中心")
STORES = ("京东商城", "美团", "星巴克", "盒马鲜生", "优衣库", "携程旅行", "中国移动", "万科物业", "永辉超市")
PLACES = ("阳光小区东门", "科技园北门", "幸福里", "金色家园", "滨江花园", "人民路")
NAMES = ("张先生", "李女士", "王伟", "刘洋", "陈静", "赵磊", "孙丽")


def _fill(template: str, rng: random.Random) -> str:
    values = {
        "n2": f"{rng.randrange(30, 99)}",
        "n3": f"{rng.randrange(100, 999)}",
        "n4": f"{rng.randrange(1000, 9999)}",
        "code": f"{rng.randrange(100000, 999999)}",
        "order": f"{rng.randrange(10**11, 10**12)}",
        "amount": f"{rng.randrange(1, 50000)}.{rng.randrange(100):02d}",
        "small": f"{rng.randrange(10, 999)}.{rng.randrange(100):02d}",
        "m": str(rng.randrange(1, 13)),
        "d": str(rng.randrange(1, 29)),
        "h": str(rng.randrange(8, 21)),
        "mi": f"{rng.randrange(60):02d}",
        "k": str(rng.randrange(1, 30)),
        "w": rng.choice(WORDS),
        "bank": rng.choice(BANKS),
        "ins": rng.choice(INSURERS),
        "exp": rng.choice(EXPRESS),
        "gov": rng.choice(GOV),
        "school": rng.choice(SCHOOLS),
        "hosp": rng.choice(HOSPITALS),
        "shop": rng.choice(STORES),
        "place": rng.choice(PLACES),
        "name": rng.choice(NAMES),
    }
    values["phone"] = rng.choice(PHONES).format(**values)
    values["url"] = rng.choice(URLS).format(**values)
    out = template
    for _ in range(2):  # nested fields (a phone inside an action)
        out = out.format(**values) if "{" in out else out
    return out


def _evade(text: str, rng: random.Random) -> str:
    """Disguise ``text`` in one of the usual ways."""
    choice = rng.randrange(5)
    if choice == 0:  # separators between characters of a stretch
        sep = rng.choice(EVASION_SEPARATORS)
        start = rng.randrange(max(1, len(text) - 12))
        stretch = text[start : start + rng.randrange(6, 13)]
        return text[:start] + sep.join(stretch) + text[start + len(stretch) :]
    if choice == 1:  # full-width letters and digits
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    if choice == 2:  # traditional characters
        return _traditional(text)
    if choice == 3:  # zero-width characters everywhere
        return "\u200b".join(text)
    return "".join(c + (" " if rng.random() < 0.3 else "") for c in text)  # scattered spaces


_S2T = None


def _traditional(text: str) -> str:
    global _S2T
    if _S2T is None:
        import opencc

        _S2T = opencc.OpenCC("s2t")
    return str(_S2T.convert(text))


def _violation(category: str, hook: str, promo: int, rng: random.Random) -> str:
    shop = rng.choice(SHOPS)
    if promo:
        parts = [rng.choice(AD_OPENERS), hook]
        if rng.random() < 0.5:
            parts.append("，" + rng.choice(AD_ACTIONS))
        if rng.random() < 0.6:
            parts.append("，" + rng.choice(AD_ACTIONS))
        parts.append(rng.choice(AD_CLOSINGS))
        body = "".join(parts)
    else:
        tails = ("", "。", "，{phone}", "，最后通知。", "，别怪我没提醒你。", "，详情{phone}")
        body = rng.choice(("", "【通知】", "{name}：", "你好，")) + hook + rng.choice(tails)
    text = _fill(body, rng)
    if rng.random() < 0.5:
        text = f"【{shop}】" + text
    return text


def build() -> list[dict[str, object]]:
    rng = random.Random(20261201)
    lexicon = default_lexicon()
    rows: list[dict[str, object]] = []
    seen: set[str] = set()

    def add(text: str, label: str, promo: int, kind: str) -> None:
        if text in seen:
            return
        seen.add(text)
        digest = hashlib.sha256(text.encode()).digest()
        split = "heldout" if digest[0] * 100 // 256 < HELDOUT_PERCENT else "train"
        rows.append({"text": text, "label": label, "promo": promo, "split": split, "kind": kind})

    for category, (promo, kw_hooks, free_hooks) in CATEGORY_HOOKS.items():
        for kind, hooks, count in (("kw", kw_hooks, 20), ("free", free_hooks, 30)):
            for i in range(count):
                hook = hooks[i % len(hooks)]
                text = _violation(category, hook, promo, rng)
                add(text, category, promo, kind)
        for _ in range(14):
            hook = rng.choice(kw_hooks + free_hooks + free_hooks)
            add(_evade(_violation(category, hook, promo, rng), rng), category, promo, "evasion")

    for kind, (promo, templates) in LEGIT_TEMPLATES.items():
        for i in range(320):
            text = _fill(templates[i % len(templates)], rng)
            if rng.random() < 0.08:
                text = _evade(text, rng)
            add(text, "legit", promo, kind)

    # keyword-free check: a "free" text must not be caught by the shipped lexicon on its hook
    for row in rows:
        if row["kind"] == "free" and lexicon.check(str(row["text"])):
            row["kind"] = "free+kw"
    return rows


def main() -> None:
    rows = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    violating = sum(1 for row in rows if row["label"] != "legit")
    heldout = sum(1 for row in rows if row["split"] == "heldout")
    print(f"{OUT}: {len(rows)} texts, {violating} violating, {len(rows) - violating} legitimate, {heldout} held out")


if __name__ == "__main__":
    main()
