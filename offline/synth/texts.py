"""Chinese text templates for the synthetic world: rumor claims, their noisy reposts, ordinary
background posts and debunk headlines.

Everything draws from a numpy Generator handed in by the caller, so a text depends only on the
stream it was given. Background posts are assembled column-wise with pyarrow (no loop per post);
rumor texts are few and built one by one.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# ---------------------------------------------------------------------------------------------
# Slot values shared by claims, posts and publishers.

CITIES: tuple[str, ...] = (
    "北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "西安", "南京", "重庆",
    "天津", "苏州", "长沙", "郑州", "青岛", "沈阳", "大连", "厦门", "昆明", "合肥",
    "济南", "福州", "南昌", "贵阳", "南宁", "哈尔滨", "长春", "石家庄", "太原", "兰州",
    "宁波", "无锡", "佛山", "东莞", "温州", "珠海", "洛阳", "徐州", "扬州", "绍兴",
)  # fmt: skip

SLOTS: dict[str, tuple[str, ...]] = {
    "place": (
        "万达广场", "火车站", "人民广场", "中心医院", "万象城", "体育中心", "汽车站",
        "大学城", "步行街", "机场", "会展中心", "人民公园", "客运站", "科技园",
    ),
    "district": ("城东", "城西", "开发区", "新区", "老城区", "高新区", "江北", "南湖片区"),
    "date": ("明天", "后天", "本周六", "下周一", "下个月", "10月8日", "11月1日", "月底", "国庆后"),
    "line": tuple(str(i) for i in range(1, 13)),
    "mag": ("6.5", "7.0", "7.2", "7.8", "8.0"),
    "river": ("长江", "珠江", "嘉陵江", "黄河", "汉江", "钱塘江", "湘江", "闽江"),
    "drink": ("板蓝根", "陈醋", "淡盐水", "白酒", "姜汤", "绿豆汤", "蒲公英茶"),
    "food": ("西红柿", "螃蟹", "柿子", "香蕉", "鸡蛋", "豆腐", "菠菜", "虾", "牛奶", "西瓜"),
    "food2": ("红薯", "啤酒", "蜂蜜", "酸奶", "土豆", "黄瓜", "橘子", "海带"),
    "amount": ("500", "1000", "2000", "5000"),
    "n": ("三", "五", "七", "十"),
    "subject": ("数学", "语文", "英语", "物理", "化学"),
}  # fmt: skip

# (template, key phrases). Key phrases may name slots; after filling they must occur in the
# claim, and become its keywords together with the city.
CLAIM_TEMPLATES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "policy": (
        ("{city}将于{date}起实行单双号限行，违者罚款两千元", ("单双号限行", "罚款")),
        ("{date}起{city}暂停办理公积金提取业务，要取的赶紧去", ("公积金提取",)),
        ("国家出台新规，{date}起退休年龄统一延迟到七十岁", ("退休年龄", "七十岁")),
        ("{city}所有小学{date}起改为每周上四天课", ("每周上四天课", "小学")),
        ("{date}起微信转账超过{amount}元要交手续费和个人所得税", ("微信转账", "手续费")),
    ),
    "emergency": (
        ("{city}{place}发生爆炸，已经死了好几十个人，大家千万别过去", ("爆炸", "{place}")),
        ("{city}地铁{line}号线发生踩踏事故，现场一片混乱", ("踩踏事故", "地铁{line}号线")),
        ("{city}{place}突发大火，浓烟有毒，附近居民赶紧关窗", ("大火", "浓烟有毒")),
        ("{city}化工厂泄漏，{district}的人{date}之前都不要出门", ("化工厂泄漏", "{district}")),
        ("{city}{place}大楼倒塌，里面还有几百人没出来", ("大楼倒塌", "{place}")),
    ),
    "disaster": (
        ("{city}{date}晚上将发生{mag}级地震，请大家做好准备", ("地震", "{mag}级")),
        ("{city}{river}大堤决口，洪水两小时后进城，赶紧往高处跑", ("大堤决口", "洪水")),
        ("内部消息：{date}有超强台风正面登陆{city}，全城停工停课", ("超强台风", "停工停课")),
        ("{city}{district}出现大面积地面塌陷，已经陷下去好几辆车", ("地面塌陷",)),
        ("{city}水库出现裂缝随时可能溃坝，下游的人快撤离", ("溃坝", "水库")),
    ),
    "epidemic": (
        ("{city}出现新型传染病，{place}已经被封控，医院全满了", ("新型传染病", "封控")),
        ("喝{drink}可以预防流感，医生都在偷偷喝", ("预防流感", "{drink}")),
        ("{city}{place}有人感染不明病毒，已经死亡多人", ("不明病毒", "{place}")),
        ("打完疫苗后{n}天内不能吃{food}，否则会有生命危险", ("疫苗", "{food}")),
        ("{city}{date}起全市中小学停课，因为流感大爆发", ("流感大爆发", "停课")),
    ),
    "public_safety": (
        ("{city}有人贩子开白色面包车在{place}附近抢小孩，家长看好孩子", ("人贩子", "白色面包车")),
        ("{city}{district}自来水被人投毒，千万不要喝", ("投毒", "自来水")),
        ("{city}{place}出现持刀歹徒，已经伤了好几个人", ("持刀歹徒", "{place}")),
        ("有人冒充燃气公司上门检查，进门就用迷药，{city}已经有人中招", ("迷药", "燃气公司")),
        ("{city}扫{place}门口贴的二维码领鸡蛋，其实是盗刷银行卡", ("二维码", "盗刷银行卡")),
    ),
    "livelihood": (
        ("{city}{date}起全城停水三天，大家赶紧储水", ("停水三天", "储水")),
        ("{food}和{food2}一起吃会中毒，已经有人进医院了", ("一起吃会中毒", "{food}")),
        ("{city}{date}起燃气费上涨一倍，以后做饭都用不起了", ("燃气费", "上涨一倍")),
        ("{city}超市卖的{food}都是用药水泡过的，吃了会致癌", ("致癌", "药水")),
        ("{city}{date}起全市停电检修，冰箱里的东西赶紧处理", ("停电检修",)),
    ),
    "economy": (
        ("{city}商业银行即将倒闭，存款只能取出五万，赶紧去取钱", ("商业银行", "倒闭")),
        ("{city}房价下个月要暴跌一半，现在买房就是接盘", ("房价", "暴跌一半")),
        ("{date}起纸币全部停用，只能用数字人民币", ("纸币全部停用", "数字人民币")),
        ("{city}{n}家大型企业同时裁员，下月要失业好几万人", ("裁员", "失业")),
        ("{city}农商行的理财产品全部爆雷，钱都取不出来了", ("理财产品", "爆雷")),
    ),
    "other": (
        ("{city}动物园的老虎跑出来了，正在{place}附近游荡", ("老虎跑出来", "动物园")),
        ("{city}{place}晚上有人看到不明飞行物，专家说是外星人", ("不明飞行物", "外星人")),
        ("{city}高考{subject}试题提前泄露，答案已经在网上传开", ("试题提前泄露", "{subject}")),
        ("手机充电时接电话会爆炸，{city}已经有人被炸伤", ("充电时接电话", "爆炸")),
        ("{city}{date}要进行全城消杀，晚上不要开窗", ("全城消杀", "不要开窗")),
    ),
}

# Word swaps that keep a claim's meaning: used for known variants and for noisy reposts.
SYNONYMS: dict[str, str] = {
    "赶紧": "赶快",
    "大家": "各位",
    "千万": "一定",
    "已经": "已",
    "明天": "明日",
    "所有": "全部",
    "不要": "别",
    "附近": "周边",
    "全城": "全市",
    "好几": "十几",
    "孩子": "小孩",
    "出门": "外出",
    "死了": "死亡了",
    "罚款": "罚钱",
    "取钱": "取款",
    "马上": "立刻",
    "下个月": "下月",
    "医院": "各大医院",
    "起": "开始",
    "超市卖的": "菜市场的",
}

CLAIM_LEADS: tuple[str, ...] = ("听说", "据说", "刚刚得到消息，", "朋友在那边上班说", "紧急通知：")
CLAIM_TAILS: tuple[str, ...] = ("，请互相转告", "！！", "，转给家人朋友", "，消息可靠", "。")

PREFIXES: tuple[str, ...] = (
    "转发：", "转：", "真的假的？", "大家注意！", "紧急扩散！", "刚看到的，", "群里都在传：",
    "【紧急通知】", "速看！", "家人们，", "扩散周知：", "【重要提醒】",
)  # fmt: skip
SUFFIXES: tuple[str, ...] = (
    "真的假的？", "转给家人！", "求辟谣", "大家注意安全", "有知道的吗？", "太可怕了",
    "扩散！！", "宁可信其有", "看到的都转一下", "有没有本地的说说",
)  # fmt: skip
EMOJI_CODES: tuple[str, ...] = (
    "[泪]", "[怒]", "[doge]", "[吃惊]", "[允悲]", "[二哈]", "[心]", "[费解]", "[抓狂]", "[衰]",
    "[笑cry]", "[跪了]",
)  # fmt: skip
REPOST_COMMENTS: tuple[str, ...] = (
    "转发微博", "真的吗", "太吓人了", "已转", "求证", "[怒]", "卧槽", "注意安全", "关注",
    "这个是真的吗？", "转需",
)  # fmt: skip
QUOTE_TEMPLATES: tuple[str, ...] = (
    "今天在家族群里看到有人说“{claim}”，我不太信，有没有{city}本地的朋友说说到底怎么回事？",
    "我妈刚转给我一条消息：{claim}。这种东西到底谁在传啊，有没有官方说法？",
    "刷到好多人在说{claim}，问了一圈也没人说得清楚，先转了，大家自己判断吧。",
    "同事早上在群里发：“{claim}”，搞得办公室人心惶惶，有懂的人来说说吗",
    "{claim}——这是今天朋友圈传得最多的一条，宁可信其有不可信其无，出门还是小心点。",
)
NAME_HEADS: tuple[str, ...] = (
    "快乐的", "爱吃鱼的", "不想上班的", "北漂", "沪上", "蓉城", "佛系", "熬夜的", "暴躁",
    "温柔的", "追风的", "江南", "",
)  # fmt: skip
NAME_TAILS: tuple[str, ...] = (
    "小王", "猫咪", "老李", "阿强", "大橘", "打工人", "小仙女", "胖虎", "柠檬精", "吃货",
    "大叔", "阿姨", "小张同学",
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Background posts: opener + hashtag + body + comment + tail + emoji, the body by topic.

BACKGROUND_BODIES: dict[str, tuple[str, ...]] = {
    "daily": (
        "今天又加班到九点，地铁上人还是很多",
        "周末在家大扫除，翻出了好多小时候的照片",
        "早上闹钟响了三次才起床",
        "楼下新开了一家面包店，排队的人好多",
        "终于把拖了一个月的快递拆了",
        "下班路上看到很美的晚霞",
        "今天搬家，累到不想说话",
        "和老同学约了吃饭，聊到很晚才回家",
    ),
    "food": (
        "中午吃了一碗牛肉面，汤头很香",
        "自己在家做了红烧肉，第一次就成功了",
        "这家火锅店的毛肚真的绝了",
        "周末去夜市吃了烤串和臭豆腐",
        "试着做了戚风蛋糕，结果塌了",
        "早餐是豆浆油条，还是老味道好",
        "新出的奶茶有点太甜了",
        "妈妈包的饺子永远是最好吃的",
    ),
    "sports": (
        "昨晚的比赛太精彩了，加时赛才分出胜负",
        "今天跑了十公里，配速比上周快了一点",
        "小区篮球场终于修好了",
        "国足这场踢得还不错",
        "坚持游泳一个月，感觉体力好多了",
        "周末去爬山，山顶的风景值得",
        "羽毛球馆周末根本订不到场地",
        "马拉松报名又没抽中",
    ),
    "weather": (
        "今天降温了，出门记得加衣服",
        "又下雨了，这周就没见过太阳",
        "今天空气质量不错，天特别蓝",
        "热得不想出门，空调开了一整天",
        "早上起了大雾，高速好像封了",
        "秋天终于来了，桂花都开了",
        "刮了一晚上的风，阳台上的花盆倒了",
        "今年冬天来得特别早",
    ),
    "tech": (
        "新手机到了，拍照效果比旧的好太多",
        "电脑又蓝屏了，资料差点没保存",
        "试了一下最新的AI写作工具，挺好用",
        "家里的路由器换了之后网速快多了",
        "系统更新以后耗电好快",
        "耳机降噪效果真的不错",
        "终于学会了用表格做数据透视",
        "智能手表提醒我该站起来活动了",
    ),
    "travel": (
        "国庆去了一趟西湖，人山人海",
        "第一次坐夜班高铁，体验还行",
        "在古镇住了两晚，很安静",
        "这次旅行最喜欢的是海边的日落",
        "机票又涨价了，还是坐火车吧",
        "自驾去了草原，路上风景很美",
        "酒店早餐比想象中丰富",
        "攻略做了一周，结果下雨全打乱了",
    ),
    "pets": (
        "我家猫今天又把杯子推到地上了",
        "带狗狗去打疫苗，它全程在发抖",
        "新买的猫爬架，猫主子根本不看一眼",
        "狗狗学会了握手，太聪明了",
        "仓鼠晚上跑轮的声音好吵",
        "猫咪最近胖了两斤",
        "给狗洗完澡它就去草地上打滚",
        "楼下的流浪猫生了一窝小猫",
    ),
    "work": (
        "开了一上午的会，什么都没定下来",
        "项目终于上线了，团队辛苦了",
        "周报写了一个小时",
        "新来的实习生很靠谱",
        "今天面试了三个人，都挺优秀",
        "年终总结又要开始写了",
        "领导说下周要出差",
        "远程办公效率好像更高一点",
    ),
    "study": (
        "考研倒计时一百天，加油",
        "图书馆的座位早上七点就没了",
        "英语四级终于过了",
        "孩子的作业我都看不懂了",
        "报了一个书法班，练字真能静心",
        "今天背了五十个单词",
        "期末考试周，咖啡续命",
        "论文终于改完第三稿了",
    ),
    "entertainment": (
        "新上映的电影还不错，特效很好",
        "追的剧终于完结了，结局有点仓促",
        "演唱会门票秒没",
        "最近单曲循环一首老歌",
        "综艺节目越来越无聊了",
        "周末把一部纪录片看完了，很受触动",
        "这部小说改编的剧还原度挺高",
        "游戏新版本更新了，又要熬夜了",
    ),
}
BACKGROUND_HASHTAGS: dict[str, str] = {
    "daily": "#日常#",
    "food": "#今日美食#",
    "sports": "#运动打卡#",
    "weather": "#天气#",
    "tech": "#数码#",
    "travel": "#旅行#",
    "pets": "#萌宠#",
    "work": "#打工人#",
    "study": "#学习打卡#",
    "entertainment": "#追剧#",
}
BACKGROUND_OPENERS: tuple[str, ...] = (
    "", "", "", "哈哈，", "唉，", "记录一下：", "说真的，", "分享一下，", "今天的小确幸：",
    "emmm，",
)  # fmt: skip
BACKGROUND_COMMENTS: tuple[str, ...] = (
    "", "，开心", "，有点累", "，值得", "，下次还来", "，你们呢？", "，好想休息",
    "，生活就是这样", "，太真实了", "，希望明天更好", "，推荐给大家", "，懂的都懂",
)  # fmt: skip
BACKGROUND_TAILS: tuple[str, ...] = ("", "", "。", "！", "~", "。。。", "！！", "？")
BACKGROUND_EMOJI: tuple[str, ...] = ("", "", "", "[心]", "[哈哈]", "[doge]", "[赞]", "[太开心]")

# ---------------------------------------------------------------------------------------------
# Debunk publishers and headlines.

NATIONAL_OFFICIAL: dict[str, tuple[str, ...]] = {
    "policy": ("国务院新闻办公室", "人力资源和社会保障部", "交通运输部"),
    "emergency": ("应急管理部", "公安部"),
    "disaster": ("应急管理部", "中国地震台网", "中国气象局"),
    "epidemic": ("国家卫生健康委员会", "国家疾病预防控制局"),
    "public_safety": ("公安部", "国家反诈中心"),
    "livelihood": ("国家市场监督管理总局", "国家卫生健康委员会"),
    "economy": ("中国人民银行", "国家金融监督管理总局"),
    "other": ("国务院新闻办公室", "教育部"),
}
CITY_OFFICIAL: dict[str, tuple[str, ...]] = {
    "policy": ("{city}市人民政府新闻办公室", "{city}市交通运输局"),
    "emergency": ("{city}市公安局", "{city}市应急管理局", "{city}市消防救援支队"),
    "disaster": ("{city}市应急管理局", "{city}市气象局", "{city}市水务局"),
    "epidemic": ("{city}市卫生健康委员会", "{city}市疾病预防控制中心"),
    "public_safety": ("{city}市公安局", "{city}警方"),
    "livelihood": ("{city}市市场监督管理局", "{city}市水务集团"),
    "economy": ("{city}市地方金融管理局", "{city}市住房和城乡建设局"),
    "other": ("{city}市人民政府新闻办公室", "{city}市教育局"),
}
PUBLISHERS: dict[str, tuple[str, ...]] = {
    "platform": ("微博辟谣", "中国互联网联合辟谣平台", "抖音辟谣", "微信辟谣助手"),
    "fact_checker": ("科普中国", "丁香医生", "较真", "果壳"),
    "media": ("新华社", "人民日报", "澎湃新闻", "央视新闻", "中国新闻网"),
}
HEADLINES: tuple[str, ...] = (
    "辟谣：{short}？不实！",
    "{publisher}：网传“{short}”系谣言",
    "网传{short}？假的！",
    "关于网传“{short}”的情况说明",
    "真相来了：{short}不实",
    "谣言粉碎机：{short}？别信",
)
HEADLINE_EN = "Fact check: the viral claim “{short}” is false"


def pick(rng: np.random.Generator, seq: tuple[str, ...] | list[str]) -> str:
    """One element of ``seq``, drawn from ``rng``."""
    return seq[int(rng.integers(len(seq)))]


def make_claim(category: str, rng: np.random.Generator) -> tuple[str, list[str], str]:
    """A claim of ``category``: (text, keywords that occur in it, its city or "")."""
    template, keys = CLAIM_TEMPLATES[category][int(rng.integers(len(CLAIM_TEMPLATES[category])))]
    values = {name: pick(rng, options) for name, options in SLOTS.items()}
    city = pick(rng, CITIES) if "{city}" in template else ""
    claim = template.format(city=city, **values)
    keywords = [k.format(**values) for k in keys]
    if city:
        keywords.insert(0, city)
    return claim, [k for k in dict.fromkeys(keywords) if k in claim], city


def _swap_synonyms(text: str, rng: np.random.Generator, p: float) -> str:
    """Replace each known word with its synonym with probability ``p``."""
    for word, other in SYNONYMS.items():
        if word in text and rng.random() < p:
            text = text.replace(word, other, 1)
    return text


def _edit_chars(text: str, rng: np.random.Generator) -> str:
    """One small character edit: drop, double or swap neighbours (a typo or an evasion)."""
    if len(text) < 4:
        return text
    i = int(rng.integers(1, len(text) - 1))
    kind = int(rng.integers(3))
    if kind == 0:
        return text[:i] + text[i + 1 :]
    if kind == 1:
        return text[: i + 1] + text[i:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _punctuate(text: str, rng: np.random.Generator) -> str:
    """Change the punctuation: commas to spaces or ASCII, a shouted ending."""
    kind = int(rng.integers(3))
    if kind == 0:
        text = text.replace("，", " ")
    elif kind == 1:
        text = text.replace("，", ",")
    return text.rstrip("。！!") + pick(rng, ("！！！", "!!", "。", "？？", ""))


def known_variants(claim: str, rng: np.random.Generator, k: int) -> list[str]:
    """``k`` distinct rewordings of ``claim`` (synonyms, leads, tails, punctuation)."""
    out: list[str] = []
    for _ in range(20 * k):
        v = _swap_synonyms(claim, rng, 0.6)
        if rng.random() < 0.5:
            v = pick(rng, CLAIM_LEADS) + v
        if rng.random() < 0.5:
            v = v.rstrip("。！") + pick(rng, CLAIM_TAILS)
        if rng.random() < 0.3:
            v = _punctuate(v, rng)
        if v != claim and v not in out:
            out.append(v)
        if len(out) == k:
            break
    return out


def username(rng: np.random.Generator) -> str:
    """A made-up screen name like 爱吃鱼的猫咪 or 北漂小王2023."""
    name = pick(rng, NAME_HEADS) + pick(rng, NAME_TAILS)
    if rng.random() < 0.4:
        name += str(int(rng.integers(1, 2025)))
    return name


def short_url(rng: np.random.Generator) -> str:
    """A t.cn short link such as http://t.cn/A6x8YzQ."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "http://t.cn/A6" + "".join(alphabet[int(i)] for i in rng.integers(len(alphabet), size=5))


def noisy_variant(text: str, rng: np.random.Generator, city: str = "") -> str:
    """A repost of ``text`` as it appears on a platform: commentary, emoji codes, links,
    mentions, ``//@`` chains, punctuation, typos and synonyms, or a long post quoting it."""
    if rng.random() < 0.35:
        text = _swap_synonyms(text, rng, 0.5)
    if rng.random() < 0.25:
        text = _edit_chars(text, rng)
    if rng.random() < 0.3:
        text = _punctuate(text, rng)
    if rng.random() < 0.12:
        return pick(rng, QUOTE_TEMPLATES).format(claim=text, city=city or pick(rng, CITIES))
    if rng.random() < 0.35:
        text = pick(rng, PREFIXES) + text
    if rng.random() < 0.3:
        text = text + pick(rng, SUFFIXES)
    if rng.random() < 0.35:
        text = text + "".join(pick(rng, EMOJI_CODES) for _ in range(int(rng.integers(1, 4))))
    if rng.random() < 0.25:
        text = text + " " + short_url(rng)
    if rng.random() < 0.2:
        text = "@" + username(rng) + " " + text
    if rng.random() < 0.3:
        hops = int(rng.integers(1, 4))
        chain = "".join(f"//@{username(rng)}:{pick(rng, REPOST_COMMENTS)}" for _ in range(hops))
        text = pick(rng, REPOST_COMMENTS) + chain + "//@" + username(rng) + ": " + text
    return text


def headline(short: str, publisher: str, rng: np.random.Generator, language: str = "zh") -> str:
    """A debunk title about the claim summarised as ``short``."""
    if language == "en":
        return HEADLINE_EN.format(short=short)
    return pick(rng, HEADLINES).format(short=short, publisher=publisher)


def claim_short(claim: str) -> str:
    """The longest clause of a claim, cut to 24 characters: the subject of a headline."""
    head = max(claim.replace("：", "，").split("，"), key=len)
    return head if len(head) <= 24 else head[:22] + "…"


def official_publisher(category: str, city: str, rng: np.random.Generator) -> str:
    """An official body fitting the category: the city's bureau when the claim names a city."""
    if city and rng.random() < 0.7:
        return pick(rng, CITY_OFFICIAL[category]).format(city=city)
    return pick(rng, NATIONAL_OFFICIAL[category])


def _flatten(groups: dict[str, tuple[str, ...]]) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """All strings of ``groups`` in one array, with each group's offset and length."""
    values = [s for g in groups.values() for s in g]
    lengths = np.array([len(g) for g in groups.values()], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return pa.array(values, pa.string()), offsets, lengths


_BODIES, _BODY_OFFSETS, _BODY_LENGTHS = _flatten(BACKGROUND_BODIES)
_HASHTAGS = pa.array(list(BACKGROUND_HASHTAGS.values()), pa.string())


def background_texts(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` ordinary posts, assembled column-wise from the templates (no loop per post)."""
    topic = rng.integers(len(BACKGROUND_BODIES), size=n)
    body = _BODY_OFFSETS[topic] + (rng.random(n) * _BODY_LENGTHS[topic]).astype(np.int64)
    hashtag = np.where(rng.random(n) < 0.25, topic, -1)
    parts = [
        _take(BACKGROUND_OPENERS, rng.integers(len(BACKGROUND_OPENERS), size=n)),
        pc.if_else(pa.array(hashtag >= 0), pc.take(_HASHTAGS, np.maximum(hashtag, 0)), ""),
        pc.take(_BODIES, body),
        _take(BACKGROUND_COMMENTS, rng.integers(len(BACKGROUND_COMMENTS), size=n)),
        _take(BACKGROUND_TAILS, rng.integers(len(BACKGROUND_TAILS), size=n)),
        _take(BACKGROUND_EMOJI, rng.integers(len(BACKGROUND_EMOJI), size=n)),
    ]
    return pc.binary_join_element_wise(*parts, "")


def _take(values: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    return pc.take(pa.array(values, pa.string()), idx)
