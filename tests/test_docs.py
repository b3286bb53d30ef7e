"""The docs cannot drift: the Redis key page lists exactly the keys of feature_store/keys.py, and
every relative link in README.md, CHANGELOG.md and docs/ points at a file (and heading) that
exists."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from feature_store import keys

ROOT = Path(__file__).resolve().parents[1]
KEY_PAGE = ROOT / "docs" / "contracts" / "redis-keys.md"

# How a parameter of a key function is written in a key pattern.
PLACEHOLDERS = {
    "version": "<version>",
    "user_id": "<user_id>",
    "day": "<YYYYMMDD>",
    "event_id": "<event_id>",
    "rumor_id": "<rumor_id>",
    "batch_id": "<batch_id>",
}
SAMPLES = {"version": "VERSIONx0", "user_id": "USERx0", "day": "20260101", "event_id": "EVTx0",
           "rumor_id": "RUMORx0", "batch_id": "BATCHx0"}  # fmt: skip


def _docstring_keys() -> set[str]:
    """The keys of the layout list in the module docstring: ``- ``dbk:...`` ...``."""
    return set(re.findall(r"^- ``(dbk:[^`]+)``", keys.__doc__ or "", flags=re.M))


def _code_keys() -> set[str]:
    """The keys the module's constants and key functions build, as patterns."""
    found = {
        value.decode()
        for name, value in vars(keys).items()
        if name.isupper()
        and isinstance(value, bytes)
        and value.startswith(keys.PREFIX)
        and value != keys.PREFIX
    }
    for name, fn in vars(keys).items():
        if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != keys.__name__:
            continue
        params = list(inspect.signature(fn).parameters)
        # Prefixes and SCAN patterns are parts of keys; feed_keys returns tuples of the above.
        if name.endswith(("_prefix", "_pattern")) or not params or set(params) - set(SAMPLES):
            continue
        value = fn(*(SAMPLES[p] for p in params))
        if not isinstance(value, bytes):
            continue
        key = value.decode()
        for p in params:
            key = key.replace(SAMPLES[p], PLACEHOLDERS[p])
        found.add(key)
    return found


def _page_keys() -> set[str]:
    """The key patterns in the first column of the page's tables."""
    return set(re.findall(r"^\|\s*`(dbk:[^`]+)`\s*\|", KEY_PAGE.read_text(), flags=re.M))


def test_the_module_docstring_and_the_code_name_the_same_keys() -> None:
    assert _docstring_keys() == _code_keys()


def test_the_key_page_lists_every_key_of_the_module_and_no_other() -> None:
    module = _docstring_keys() | _code_keys()
    page = _page_keys()
    assert module, "no keys found in feature_store/keys.py"
    assert not module - page, f"keys missing from {KEY_PAGE.name}: {sorted(module - page)}"
    assert not page - module, f"keys on {KEY_PAGE.name} that keys.py lacks: {sorted(page - module)}"


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]


_FENCE = re.compile(r"^```.*?^```", flags=re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _relative_links(path: Path) -> list[str]:
    text = _CODE.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))
    out = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I) or target.startswith("#"):
            continue  # http:, https:, mailto:, ... and anchors within the page
        out.append(target)
    return out


def _anchors(path: Path) -> set[str]:
    """The heading anchors GitHub gives a Markdown page (lower case, punctuation dropped,
    spaces to dashes, repeats numbered)."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n, candidate = 0, slug
        while candidate in out:
            n += 1
            candidate = f"{slug}-{n}"
        out.add(candidate)
    return out


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_an_existing_file(page: Path) -> None:
    assert page.exists(), f"{page.relative_to(ROOT)} is missing"
    broken = []
    for target in _relative_links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve()
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_the_docs_have_links_to_check() -> None:
    assert len(_relative_links(ROOT / "README.md")) >= 10
