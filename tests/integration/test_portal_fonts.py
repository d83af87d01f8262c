"""A person can read the history page's Japanese: each character is drawn with its own
glyph, not as the empty box ("tofu") a browser draws when no font has it.

Headless Chromium screenshots, on the real history page, one character at a time in
boxes of the same size and the page's own fonts: distinct Japanese characters must give
distinct images, each unlike the image of a private-use character (U+E000, which no font
draws: a box) and unlike nothing at all. With no CJK font installed every one of them is
the same box and this test fails — Debian's ``fonts-noto-cjk``, which ``infra/setup.sh``
installs, makes it pass.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.integration.test_portal import ELEMENT
from tests.integration.test_portal_browser import alice_logged_in

# Characters the page shows, from different radicals: no two can share a glyph.
CHARACTERS = ["品", "川", "区", "照", "会", "記", "録", "あ", "な", "た"]
TOFU = "\ue000"  # a private-use character: no font draws it, so it is drawn as a box
BLANK = "\u3000"  # an ideographic space: nothing drawn

# Appended by WebDriver, not by the page (its CSP allows no inline script): one box per
# character, all the same size on whole pixels, in the page's own font stack.
STRIP = """
const strip = document.createElement('div');
strip.id = 'glyphs';
for (const [i, c] of arguments[0].entries()) {
  const box = document.createElement('span');
  box.id = 'glyph-' + i;
  box.textContent = c;
  box.style.cssText = 'display:inline-block;width:48px;height:48px;font-size:36px;' +
    'line-height:48px;text-align:center;vertical-align:top;overflow:hidden';
  strip.append(box);
}
document.querySelector('h1').after(strip);
"""


async def test_japanese_is_drawn_with_real_glyphs(tmp_path: Path) -> None:
    async with alice_logged_in(tmp_path) as (browser, _, _):
        assert "あなたの情報の提供等記録" in await browser.body_text()
        shown = [*CHARACTERS, TOFU, BLANK]
        await browser.call("POST", "/execute/sync", {"script": STRIP, "args": [shown]})
        images: dict[str, bytes] = {}
        for i, character in enumerate(shown):
            found = await browser.call(
                "POST", "/element", {"using": "css selector", "value": f"#glyph-{i}"}
            )
            png = await browser.call("GET", f"/element/{found[ELEMENT]}/screenshot")
            images[character] = base64.b64decode(png)
        await browser.screenshot(tmp_path / "glyphs.png")
        as_box = [c for c in CHARACTERS if images[c] == images[TOFU]]
        as_nothing = [c for c in CHARACTERS if images[c] == images[BLANK]]
        assert not as_box, f"drawn as empty boxes (is a CJK font installed?): {as_box}"
        assert not as_nothing, f"not drawn at all: {as_nothing}"
        distinct = {images[c] for c in CHARACTERS}
        assert len(distinct) == len(CHARACTERS), json.dumps(
            {c: hash(images[c]) for c in CHARACTERS}, ensure_ascii=False
        )
