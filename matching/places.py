"""Place names (provinces, large cities, countries): a text's place the rumor's text never
mentions is an unmet part of the query, which ``ScoreParams.place_weight`` can charge like an
unmet intent word (off by default: measured and not adopted, docs/decisions/0057).

Why (issue 17, docs/decisions/0057): 「英国 旅游 签证 材料」 is explained word for word by a rumor
about Thailand's visa rules except for 英国, the one word saying which visa is wanted; a real
search for a rumor names the rumor's own place. The list is general knowledge (China's
provinces and their capitals and other large cities, the countries and capitals Chinese
searches name most), written for the language and not for judged rows; 中国 is left out (the
home country is context, not a constraint). A text's places are its words (as ``cut`` makes
them); a document holds a place when its normalised text or its keywords contain the name
anywhere (「汕头市」 holds 汕头), so a rumor is charged only for a place it never mentions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

import numpy as np

NAMES = """
北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东
海南 四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门
石家庄 太原 沈阳 大连 长春 哈尔滨 南京 苏州 无锡 杭州 宁波 温州 合肥 福州 厦门 泉州 南昌 济南 青岛
郑州 洛阳 武汉 长沙 广州 深圳 东莞 佛山 汕头 珠海 海口 三亚 成都 贵阳 昆明 西安 兰州 西宁 银川
乌鲁木齐 拉萨 呼和浩特 南宁 桂林 台北 高雄
美国 英国 法国 德国 日本 韩国 朝鲜 俄罗斯 印度 泰国 越南 新加坡 马来西亚 印尼 菲律宾 澳大利亚
新西兰 加拿大 巴西 阿根廷 墨西哥 意大利 西班牙 葡萄牙 荷兰 瑞士 瑞典 挪威 芬兰 丹麦 希腊 土耳其
埃及 南非 以色列 伊朗 伊拉克 巴基斯坦 阿富汗 缅甸 柬埔寨 蒙古 迪拜 欧洲 非洲 伦敦 巴黎 纽约 东京
首尔
"""

# What else a document's mention of a place says it mentions (decision 0062): a city is in its
# province, and 美方 / 美军 … name 美国 (a rumor about 美方 answers a search naming 美国).
PROVINCE_OF = """
石家庄 河北 太原 山西 沈阳 辽宁 大连 辽宁 长春 吉林 哈尔滨 黑龙江 南京 江苏 苏州 江苏 无锡 江苏
杭州 浙江 宁波 浙江 温州 浙江 合肥 安徽 福州 福建 厦门 福建 泉州 福建 南昌 江西 济南 山东 青岛 山东
郑州 河南 洛阳 河南 武汉 湖北 长沙 湖南 广州 广东 深圳 广东 东莞 广东 佛山 广东 汕头 广东 珠海 广东
海口 海南 三亚 海南 成都 四川 贵阳 贵州 昆明 云南 西安 陕西 兰州 甘肃 西宁 青海 银川 宁夏
乌鲁木齐 新疆 拉萨 西藏 呼和浩特 内蒙古 南宁 广西 桂林 广西 台北 台湾 高雄 台湾
美方 美国 美军 美国 美媒 美国 日方 日本 日军 日本 日媒 日本 英方 英国 韩方 韩国 俄方 俄罗斯
法方 法国 德方 德国 泰方 泰国 伦敦 英国 巴黎 法国 纽约 美国 东京 日本 首尔 韩国
"""
WORDS_PER_MASK = 64


def names() -> list[str]:
    """The place names, in the order written, each once."""
    return list(dict.fromkeys(NAMES.split()))


@cache
def folds() -> dict[str, tuple[str, ...]]:
    """Each mention a document may hold and the places it stands for (itself when a place)."""
    out: dict[str, list[str]] = {name: [name] for name in names()}
    pairs = PROVINCE_OF.split()
    for mention, place in zip(pairs[::2], pairs[1::2], strict=True):
        out.setdefault(mention, []).append(place)
    return {k: tuple(dict.fromkeys(v)) for k, v in out.items()}


@cache
def place_grams() -> tuple[np.ndarray, np.ndarray]:
    """Sorted word-gram ids of the places and each one's place number (its bit in a mask)."""
    from matching.grams import PAIR_BIT, WORD_BASE, batch_grams

    owner, grams, _ = batch_grams(names())
    word = (grams >= WORD_BASE) & (grams < PAIR_BIT)
    gram, at = np.unique(grams[word], return_index=True)
    return gram, owner[word][at].astype(np.int64)


def mask_width() -> int:
    """uint64 words per place mask."""
    return -(-len(names()) // WORDS_PER_MASK)


def _set_bits(masks: np.ndarray, row: np.ndarray, place: np.ndarray) -> None:
    """Set bit ``place`` of mask ``row`` for every pair (in place)."""
    bit = np.left_shift(np.uint64(1), (place % WORDS_PER_MASK).astype(np.uint64))
    np.bitwise_or.at(masks, (row, place // WORDS_PER_MASK), bit)


def text_masks(owner: np.ndarray, grams: np.ndarray, n_texts: int) -> np.ndarray:
    """(texts, width) uint64: the places each text names as a word."""
    gram, place = place_grams()
    masks = np.zeros((n_texts, mask_width()), dtype=np.uint64)
    at = np.minimum(np.searchsorted(gram, grams), len(gram) - 1)
    hit = np.flatnonzero(gram[at] == grams)
    if len(hit):
        _set_bits(masks, owner[hit].astype(np.int64), place[at[hit]])
    return masks


def document_masks(texts: Sequence[str], fold: bool = True) -> np.ndarray:
    """(documents, width) uint64: the places each document's normalised text contains and,
    with ``fold``, the places those mentions stand for (``folds``: a city's province)."""
    from matching.grams import text_block

    block, starts = text_block(texts)
    number = {name: i for i, name in enumerate(names())}
    stands = folds() if fold else {name: (name,) for name in names()}
    pattern = re.compile("|".join(sorted(map(re.escape, stands), key=len, reverse=True)))
    rows, places = [], []
    for m in pattern.finditer(block):
        for place in stands[m.group()]:
            rows.append(m.start())
            places.append(number[place])
    masks = np.zeros((len(texts), mask_width()), dtype=np.uint64)
    if rows:
        doc = np.searchsorted(starts, np.asarray(rows), side="right") - 1
        _set_bits(masks, doc, np.asarray(places, dtype=np.int64))
    return masks


def unmet(text_mask: np.ndarray, doc_mask: np.ndarray) -> np.ndarray:
    """Per cell: how many of the text's places the document does not contain."""
    return np.bitwise_count(text_mask & ~doc_mask).sum(axis=1).astype(float)
