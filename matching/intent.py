"""Words that say what a searcher wants to do with a thing rather than what is claimed about it:
watch or download it, get there, buy it, sign up, look something up, learn how (「<show> 全集
在线」, 「<place> 门票 价格」, 「<school> 录取分数线」).

Why (issue 17, docs/decisions/0048): an everyday search that names a place, brand or person a
rumor also names is explained by that rumor as well as a real search is; what sets it apart is
that its other words ask for a service the rumor cannot give. A text's intent word that the
rumor does not hold is an unmet need, charged inside the one score (``ScoreParams.intent_cost``);
an intent word the rumor itself holds (a rumor about a fake 查询 入口) costs nothing.

The list is general knowledge of how people search (navigational, transactional and how-to
words, the categories search engines' query classifiers use), written for the language and not
for rows of the judged sets. Words asking whether something is true (真的吗, 辟谣, 是否) are
deliberately absent: they ask about the claim. Entries are matched as the word grams ``cut``
makes of each entry standing alone, on both sides folded like every other text.
"""

from __future__ import annotations

from functools import cache

import numpy as np

WORDS = """
在线 全集 下载 观看 在线观看 播放 回放 直播 高清 字幕 网盘 种子 百度云 迅雷 全文 歌词 电子版
txt 剧情 演员表 主题曲 片尾曲 更新 第几集 大结局 完整版 视频 新剧 节目单
官网 官方网站 入口 网址 登录 登陆 注册 客户端 app 下载地址 地址 电话 客服 联系方式 位置 地图
怎么走 路线 导航 营业时间 开放时间 几点 时刻表 班次 末班车 首班车 停车场 停车
价格 多少钱 报价 价目表 门票 票价 优惠 团购 预订 预约 购买 购票 订票 充值 缴费 收费
办理 报名 加盟 代理 批发 招聘 兼职 实习 租房 二手 售后 维修 维修点 保修 包邮 团购
怎么 怎样 如何 做法 教程 攻略 技巧 方法 步骤 流程 条件 材料 手续 说明书 用法 用量 多久
什么时候 时间 天气 预报 路况 分数线 录取分数线 查询 推荐 哪家 哪里 好吃 正宗 费用 学费 汇率
自驾 一日游 景点 酒店 住宿 美食 小吃 食谱 菜谱 配置 参数 设置 安装 破解 激活 壁纸 图片大全
"""


def words() -> list[str]:
    """The intent words, in the order written, each once."""
    return list(dict.fromkeys(WORDS.split()))


@cache
def intent_ids() -> np.ndarray:
    """Sorted gram ids of the intent words (the word grams ``batch_grams`` gives each word
    standing alone; a word jieba splits contributes its parts that are words)."""
    from matching.grams import PAIR_BIT, WORD_BASE, batch_grams

    _, grams, _ = batch_grams(words())
    wordish = grams[(grams >= WORD_BASE) & (grams < PAIR_BIT)]
    return np.unique(wordish)
