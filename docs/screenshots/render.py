"""Markdown -> HTML the way GitHub renders a job summary.

cmark-gfm with GitHub's extensions (table, strikethrough, autolink, tagfilter,
tasklist); raw HTML kept (GitHub keeps <details>/<summary>); ```mermaid fences
come out as <pre lang="mermaid">, which render.mjs draws with mermaid.

usage: python render.py SUMMARY.md OUT.html [--open all|first-deploy|none]
"""

import argparse
import html
import re
import sys

import cmarkgfm
from cmarkgfm.cmark import Options

# The page render.mjs loads: github-markdown-css (light) and mermaid are added
# there from node_modules, so nothing here reaches the network.
PAGE = """<!doctype html>
<html lang="en" data-color-mode="light" data-light-theme="light">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
  body {{ margin: 0; background: #f6f8fa; }}
  .summary {{
    box-sizing: border-box; width: 960px; margin: 24px auto;
    background: #ffffff; border: 1px solid #d0d7de; border-radius: 6px;
  }}
  .summary > header {{
    padding: 12px 24px; border-bottom: 1px solid #d0d7de;
    font: 600 14px/20px -apple-system, BlinkMacSystemFont, "Segoe UI",
      "Noto Sans", Helvetica, Arial, sans-serif;
    color: #1f2328;
  }}
  .markdown-body {{ box-sizing: border-box; padding: 16px 24px 24px; }}
  .markdown-body pre[lang="mermaid"] {{ background: transparent; }}
  .markdown-body .mermaid {{ margin-bottom: 16px; }}
</style>
</head>
<body>
<div class="summary">
<header>{header}</header>
<article class="markdown-body">
{body}
</article>
</div>
</body>
</html>
"""


def to_html(md: str) -> str:
    # What GitHub uses for job summaries: GFM with raw HTML left in (its
    # sanitizer then keeps <details>/<summary>), code fences as <pre lang=…>.
    return cmarkgfm.github_flavored_markdown_to_html(
        md, options=Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_GITHUB_PRE_LANG
    )


def open_details(body: str, which: str) -> str:
    """Open the <details> blocks: all of them, the first deploy's, or none."""
    if which == "none":
        return body
    if which == "all":
        return re.sub(r"<details>", "<details open>", body)

    opened = False

    def first_deploy(m: re.Match) -> str:
        nonlocal opened
        if not opened and m.group(1).startswith("deploy "):
            opened = True
            return m.group(0).replace("<details>", "<details open>", 1)
        return m.group(0)

    return re.sub(r"<details>\s*<summary>([^<]*)", first_deploy, body)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("markdown")
    ap.add_argument("out")
    ap.add_argument("--open", choices=["all", "first-deploy", "none"], default="all")
    ap.add_argument("--header", default="expedite drill summary")
    a = ap.parse_args()
    with open(a.markdown, encoding="utf-8") as f:
        md = f.read()
    body = open_details(to_html(md), a.open)
    if "<details" in md and "<details" not in body:
        print("render.py: the <details> blocks were dropped", file=sys.stderr)
        return 1
    title = next((ln.lstrip("# ") for ln in md.splitlines() if ln.startswith("# ")), "")
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(
            PAGE.format(
                title=html.escape(title), header=html.escape(a.header), body=body
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
