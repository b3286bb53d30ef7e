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

WORDS_PER_MASK = 64


def names() -> list[str]:
    """The place names, in the order written, each once."""
    return list(dict.fromkeys(NAMES.split()))


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


def document_masks(texts: Sequence[str]) -> np.ndarray:
    """(documents, width) uint64: the places each document's normalised text contains."""
    from matching.grams import text_block

    block, starts = text_block(texts)
    number = {name: i for i, name in enumerate(names())}
    pattern = re.compile("|".join(sorted(map(re.escape, number), key=len, reverse=True)))
    rows, places = [], []
    for m in pattern.finditer(block):
        rows.append(m.start())
        places.append(number[m.group()])
    masks = np.zeros((len(texts), mask_width()), dtype=np.uint64)
    if rows:
        doc = np.searchsorted(starts, np.asarray(rows), side="right") - 1
        _set_bits(masks, doc, np.asarray(places, dtype=np.int64))
    return masks


def unmet(text_mask: np.ndarray, doc_mask: np.ndarray) -> np.ndarray:
    """Per cell: how many of the text's places the document does not contain."""
    return np.bitwise_count(text_mask & ~doc_mask).sum(axis=1).astype(float)
