"""Generated stand-ins for the real datasets, so every test runs on a bare clone.

The real Twitter2015 and CMNER files and the 25 CMNER images are not in the
repository. The tests check properties of the code (masks, caches, formats,
training), not of those particular files, so they run on posts and pictures
generated here: deterministic for a seed, shaped like the real data where a
test relies on the shape (Twitter tokens with hashtags, mentions, URLs and
numbers, several BERT pieces per rare word; Weibo posts one character per
token, some longer than ACN's and UMT's length limits; 25 images over six
posts, the largest with nine, named ``<post>_<suffix>.jpg``). Checks about the
real files themselves stay in the tests' real-data layer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xlingual.data.formats import write_samples
from xlingual.data.datasets import get_dataset
from xlingual.data.sample import Sample

_PEOPLE = ["Barack Obama", "Taylor Swift", "LeBron James", "Angela Merkel", "Lionel Messi", "Emma Watson", "Elon Musk", "Serena Williams"]
_PLACES = ["Paris", "New York", "London", "Beijing", "Los Angeles", "Tokyo", "Chicago", "Texas"]
_ORGS = ["NBA", "Apple", "Google", "United Nations", "BBC News", "Microsoft", "FIFA", "Red Cross"]
_MISC = ["iPhone", "Super Bowl", "World Cup", "Grammys", "Olympics", "Oscars", "Christmas", "Android"]
_WORDS = ("the a of to in and is for on with at by from about after this that new great big today tomorrow last "
          "night game show watch love win lose team fans city people world life best time year day week live "
          "unbelievable extraordinary reconsidering photobombing").split()
_ODD = ["RT", ":", "!", "?", "...", "#breaking", "#news", "@user_1", "@fan_page", "http://t.co/x1y2", "2015", "#Paris", "lol", "omg", "&amp;"]

_ZH_PEOPLE = ["刘德华", "周杰伦", "王菲", "姚明", "马云", "李娜", "成龙", "杨幂"]
_ZH_PLACES = ["北京", "上海", "广州", "成都", "杭州", "香港", "深圳", "西安"]
_ZH_ORGS = ["中国银行", "清华大学", "腾讯", "新华社", "阿里巴巴", "国家队", "央视", "华为"]
_ZH_MISC = ["春节", "奥运会", "微博", "世界杯", "中秋节", "双十一", "好声音", "王者荣耀"]
_ZH_COMMON = "今天 我们 一个 有意思 想法 到底 还是 大家 看见 朋友 开心 不错 的 了 是 在 很 说".split()
_ZH_TOPICS = [
    "旅游 酒店 景点 机票 海边 风景 拍照 假期".split(),
    "吃饭 好吃 火锅 餐厅 味道 早餐 奶茶 甜点".split(),
    "科技 手机 电脑 控制 人类 软件 网络 数据".split(),
    "电影 音乐 演唱会 明星 剧情 歌曲 票房 综艺".split(),
    "工作 周末 加班 老板 会议 工资 同事 上班".split(),
]
"""Words, not loose characters, drawn mostly from the post's topic: as in real posts, a word's characters
occur together and in the same company (旅游 is the only word with 旅 or 游)."""
_ZH_PUNCT = "，。！？：、"

_EN_ENTITIES = {"PER": _PEOPLE, "LOC": _PLACES, "ORG": _ORGS, "MISC": _MISC}
_ZH_ENTITIES = {"PER": _ZH_PEOPLE, "LOC": _ZH_PLACES, "ORG": _ZH_ORGS, "MISC": _ZH_MISC}

IMAGE_POSTS: tuple[tuple[str, int], ...] = (
    ("L364I3366", 9), ("L4x7aaJ4n", 1), ("L5SRzy4Ez", 1), ("L6uS1qHJM", 1), ("Laxnkk6GQ", 9), ("LwHJyuvjT", 4),
)
"""Post ids and image counts as in the 25 CMNER images shipped with the real data (25 images, 6 posts)."""


def _entity_tokens(rng: random.Random, names: dict[str, list[str]], chars: bool) -> tuple[list[str], list[str]]:
    etype = rng.choice(sorted(names))
    name = rng.choice(names[etype])
    tokens = list(name) if chars else name.split()
    return tokens, [f"B-{etype}"] + [f"I-{etype}"] * (len(tokens) - 1)


def generated_tweets(n: int, seed: int = 0, id_start: int = 700000) -> list[Sample]:
    """``n`` English posts in Twitter2015 style: 10 to 35 tokens, mostly one or two entities, some none."""
    rng = random.Random(seed)
    posts = []
    for i in range(n):
        tokens: list[str] = []
        labels: list[str] = []
        length = rng.randint(10, 35)
        entities = 0 if i % 7 == 6 else rng.choice((1, 1, 1, 2, 2, 3))
        while len(tokens) < length or entities:
            if entities and rng.random() < 0.3:
                more, tags = _entity_tokens(rng, _EN_ENTITIES, chars=False)
                entities -= 1
            else:
                more, tags = [rng.choice(_ODD if rng.random() < 0.3 else _WORDS)], ["O"]
            tokens += more
            labels += tags
        posts.append(Sample(id=str(id_start + i), tokens=tokens, labels=labels, lang="en"))
    return posts


def generated_weibo_posts(n: int, seed: int = 0, ids: Sequence[str] = ()) -> list[Sample]:
    """``n`` Chinese posts in CMNER style, one character per token, 8 to 140 characters (every fifth one over 70).

    ``ids`` names the first posts (e.g. the posts that own images); the rest get ``Lgen00001``-style ids.
    """
    rng = random.Random(seed)
    posts = []
    for i in range(n):
        tokens: list[str] = []
        labels: list[str] = []
        length = rng.randint(71, 140) if i % 5 == 4 else rng.randint(8, 60)
        topic = _ZH_TOPICS[rng.randrange(len(_ZH_TOPICS))]
        entities = 0 if i % 6 == 5 else rng.randint(1, 3)
        while len(tokens) < length or entities:
            if entities and rng.random() < 0.15:
                more, tags = _entity_tokens(rng, _ZH_ENTITIES, chars=True)
                entities -= 1
            else:
                roll = rng.random()
                more = list(rng.choice(_ZH_PUNCT) if roll < 0.1 else rng.choice(topic) if roll < 0.7 else rng.choice(_ZH_COMMON))
                tags = ["O"] * len(more)
            tokens += more
            labels += tags
        post_id = ids[i] if i < len(ids) else f"Lgen{i:05d}"
        posts.append(Sample(id=post_id, tokens=tokens, labels=labels, lang="zh"))
    return posts


def retyped(samples: Sequence[Sample], names: dict[str, str]) -> list[Sample]:
    """Copies of ``samples`` whose entities of the types in ``names`` carry the new names (``{"MISC": "PRODUCT"}``).

    A dataset of other entity types (an open label set), with the shapes of the generated or sample data.
    """
    def rename(label: str) -> str:
        prefix, sep, etype = label.partition("-")
        return f"{prefix}-{names[etype]}" if sep and etype in names else label

    return [Sample(s.id, list(s.tokens), [rename(label) for label in s.labels], list(s.images), s.lang, dict(s.meta)) for s in samples]


def write_images(folder: str | Path, names: Sequence[str], seed: int = 0, size: tuple[int, int] = (96, 72)) -> Path:
    """Write one distinct small JPEG per name (random blocks of colour), as a stand-in for real photos."""
    import numpy as np
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        rng = np.random.default_rng([seed, index])
        blocks = rng.integers(0, 256, size=(size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        pixels = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8)) + rng.integers(0, 24, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name, format="JPEG", quality=90)
    return folder


def image_names(posts: Sequence[tuple[str, int]] = IMAGE_POSTS, seed: int = 0) -> list[str]:
    """``<post>_<7 characters>.jpg`` names, ``count`` per post, sorted."""
    rng = random.Random(seed)
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    return sorted(f"{post}_{''.join(rng.choice(alphabet) for _ in range(7))}.jpg" for post, count in posts for _ in range(count))


@dataclass(frozen=True)
class GeneratedData:
    """A data directory in the layout of ``xl data download`` holding generated posts and images."""

    root: Path
    tweets: dict[str, list[Sample]]
    weibo: dict[str, list[Sample]]

    @property
    def cmner_images(self) -> Path:
        return get_dataset("cmner").images_path(self.root)


def write_generated_data_dir(root: str | Path, seed: int = 0, tweets: int = 60, weibo: int = 60) -> GeneratedData:
    """Twitter2015 and CMNER splits (train gets ``tweets``/``weibo`` posts, dev and test a third each) and CMNER images.

    The six image-owning posts of :data:`IMAGE_POSTS` open the CMNER train split; the other posts have no image.
    """
    root = Path(root)
    sizes = {"train": 1.0, "dev": 1 / 3, "test": 1 / 3}
    twitter, cmner = get_dataset("twitter2015"), get_dataset("cmner")  # the layout of 'xl data download' is the registry's
    tweet_splits: dict[str, list[Sample]] = {}
    weibo_splits: dict[str, list[Sample]] = {}
    for offset, (split, share) in enumerate(sizes.items()):
        tweet_splits[split] = generated_tweets(max(1, round(tweets * share)), seed=seed * 10 + offset, id_start=700000 + 10000 * offset)
        ids = [post for post, _ in IMAGE_POSTS] if split == "train" else ()
        weibo_splits[split] = generated_weibo_posts(max(1, round(weibo * share)), seed=seed * 10 + offset, ids=ids)
        if split != "train":  # ids unique across splits
            weibo_splits[split] = [Sample(id=f"{s.id}{split[0]}", tokens=s.tokens, labels=s.labels, lang="zh") for s in weibo_splits[split]]
        write_samples(twitter.split_path(root, split), tweet_splits[split], "twitter")
        write_samples(cmner.split_path(root, split), weibo_splits[split], "cmner")
    write_images(cmner.images_path(root), image_names(seed=seed), seed=seed)
    return GeneratedData(root=root, tweets=tweet_splits, weibo=weibo_splits)
