"""A small table of general-language equivalents in Chinese, folded onto one form before
gramming: abbreviations and full names (红会 = 红十字会, 工行 = 工商银行), foreign and Chinese
names (samsung = 三星, wechat = 微信), other transliterations and variant spellings
(阿斯匹林 = 阿司匹林), everyday synonyms (提款机 = 取款机, 五折 = 半价).

Why (issue 17): a query that names a rumor's subject by another name shares none of its grams
with the rumor. The table is general knowledge (what a dictionary of abbreviations or a brand
list says), written for the language, not for rows of the judged sets, and applied to library
documents and texts alike, so either side may use either form. A rumor's own nicknames and
aliases belong in its ``aliases`` (the rumor contract), not here.

Entries are matched as jieba token sequences (the variant as ``cut`` splits it standing alone),
so 工行 inside 施工行为 (施工 / 行为) is left alone; the replacement's tokens are the canonical
form as ``cut`` splits it.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from matching.chinese import cut
from matching.foldtable import fold_exact

SLICE = 4096  # tokens per C-level call (see grams.SLICE)
TABLE = """
红会=红十字会 中国红会=中国红十字会 工行=工商银行 中国工商银行=工商银行 icbc=工商银行
建行=建设银行 中国建设银行=建设银行 ccb=建设银行 农行=农业银行 中国农业银行=农业银行
中行=中国银行 招行=招商银行 交行=交通银行 邮储=邮政储蓄 央行=人民银行 中国人民银行=人民银行
人行=人民银行 央视=中央电视台 cctv=中央电视台 发改委=发展改革委 国务院办公厅=国办
卫计委=卫生计生委 食药监=食品药品监督管理局 药监局=食品药品监督管理局 工信部=工业和信息化部
人社部=人力资源和社会保障部 交警=交通警察 民警=警察 消协=消费者协会 证监会=证券监督管理委员会
银监会=银行业监督管理委员会 保监会=保险监督管理委员会 足协=足球协会 奥委会=奥林匹克委员会
世卫=世界卫生组织 世卫组织=世界卫生组织 北大=北京大学 清华=清华大学 复旦=复旦大学 招办=招生办
招生办公室=招生办 社保=社会保险 医保=医疗保险 公积金=住房公积金 驾照=驾驶证 驾驶执照=驾驶证
高铁=高速铁路 动车组=动车 atm=取款机 提款机=取款机 自动取款机=取款机 柜员机=取款机 wechat=微信
weixin=微信 weibo=微博 新浪微博=微博 tencent=腾讯 阿里=阿里巴巴 alibaba=阿里巴巴 淘宝网=淘宝
taobao=淘宝 alipay=支付宝 baidu=百度 apple=苹果 苹果公司=苹果 samsung=三星 三星电子=三星
sony=索尼 新力=索尼 nokia=诺基亚 microsoft=微软 google=谷歌 谷哥=谷歌 facebook=脸书 脸谱网=脸书
twitter=推特 kfc=肯德基 mcdonald=麦当劳 starbucks=星巴克 cocacola=可口可乐 pepsi=百事可乐
nestle=雀巢 unilever=联合利华 lenovo=联想 huawei=华为 xiaomi=小米 foxconn=富士康 walmart=沃尔玛
carrefour=家乐福 ikea=宜家 nike=耐克 adidas=阿迪达斯 toyota=丰田 honda=本田 bmw=宝马 benz=奔驰
梅赛德斯=奔驰 volkswagen=大众 boeing=波音 airbus=空客 空中客车=空客 马航=马来西亚航空 美帝=美国
米国=美国 北韩=朝鲜 南韩=韩国 钓鱼台=钓鱼岛 香港特区=香港 帝都=北京 魔都=上海 羊城=广州
鹏城=深圳 蓉城=成都 维c=维生素c 维他命c=维生素c 维他命=维生素 阿斯匹林=阿司匹林
阿斯匹灵=阿司匹林 扑热息痛=对乙酰氨基酚 心梗=心肌梗死 心肌梗塞=心肌梗死 脑梗=脑梗死
脑梗塞=脑梗死 艾滋=艾滋病 aids=艾滋病 爱滋病=艾滋病 hiv=艾滋病毒 非典=sars 乙肝=乙型肝炎
甲流=甲型流感 禁药=兴奋剂 潲水油=地沟油 泔水油=地沟油 gmo=转基因 移动电话=手机 计算机=电脑
笔记本电脑=笔记本 因特网=互联网 wifi=无线网 wi-fi=无线网 无线网络=无线网 bluetooth=蓝牙 cd=光碟
光盘=光碟 dvd=光碟 优盘=u盘 sms=短信 五折=半价 对折=半价 rmb=人民币 美金=美元 美刀=美元
港币=港元 日圆=日元 欧币=欧元 个税=个人所得税 退休金=养老金 城管局=城管 10086=中国移动客服
中移动=中国移动 移动公司=中国移动 联通=中国联通 电信=中国电信 中石化=中国石化 中石油=中国石油
奥运=奥运会 春晚=春节联欢晚会 三一五=3.15 双十一=双11 光棍节=双11 圣诞=圣诞节 duke=杜克
harvard=哈佛 yale=耶鲁 stanford=斯坦福 obama=奥巴马 putin=普京 安倍=安倍晋三
"""


def groups() -> list[list[str]]:
    """The table's equivalence classes (pairs sharing a form are one class), folded, in the
    order their first form is written."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for item in TABLE.split():
        a, b = (fold_exact(x) for x in item.split("="))
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra
    out: dict[str, list[str]] = {}
    for x in parent:
        out.setdefault(root(x), []).append(x)
    return list(out.values())


@cache
def rules() -> dict[str, list[tuple[tuple[str, ...], list[str]]]]:
    """First token -> (variant tokens, canonical tokens), longest variant first (built once).
    A class's canonical form is its shortest member (the first written of equal length): an
    abbreviation replaced by a longer form would add characters a text never held, and inflate
    the evidence of every text that uses it."""
    out: dict[str, list[tuple[tuple[str, ...], list[str]]]] = {}
    for members in groups():
        form = min(members, key=len)
        for variant in members:
            if variant != form:
                tokens = tuple(cut(variant))
                out.setdefault(tokens[0], []).append((tokens, cut(form)))
    for entries in out.values():
        entries.sort(key=lambda e: -len(e[0]))
    return out


def canonical(
    block: str, tokens: list[str], text_starts: np.ndarray
) -> tuple[str, list[str], np.ndarray]:
    """``block`` (its jieba ``tokens``, the texts starting at ``text_starts``) with every
    variant of the table replaced by its canonical form; unchanged when it holds none."""
    table = rules()
    found = np.zeros(len(tokens), dtype=bool)
    for lo in range(0, len(tokens), SLICE):  # slices: another thread may take the GIL between
        part = tokens[lo : lo + SLICE]
        found[lo : lo + len(part)] = np.fromiter(map(table.__contains__, part), bool, len(part))
    heads = np.flatnonzero(found)
    if len(heads) == 0:
        return block, tokens, text_starts
    out: list[str] = []
    shift_at: list[int] = []  # old offset after which the texts move by ``shift``
    shift: list[int] = []
    done = offset = 0
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    ends = np.cumsum(lengths)
    for i in heads.tolist():
        if i < done:
            continue
        for variant, form in table[tokens[i]]:
            n = len(variant)
            if tuple(tokens[i : i + n]) == variant:
                out += tokens[done:i]
                out += form
                done = i + n
                offset += sum(map(len, form)) - int(ends[i + n - 1] - ends[i] + lengths[i])
                shift_at.append(int(ends[i + n - 1]))
                shift.append(offset)
                break
    if not shift:
        return block, tokens, text_starts
    out += tokens[done:]
    moved = np.searchsorted(np.array(shift_at), text_starts, side="right")
    starts = text_starts + np.r_[0, np.array(shift)][moved]
    return "".join(out), out, starts
