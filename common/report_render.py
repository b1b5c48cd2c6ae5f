"""Rendering a report: a list of blocks (heading, text, table, image) written as Markdown
and as a self-contained HTML page, so the two formats always say the same thing."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Block:
    kind: str  # "h1", "h2", "text", "table", "image"
    content: Any
    caption: str = ""


def render_markdown(blocks: list[Block], base: Path) -> str:
    lines = []
    for block in blocks:
        if block.kind == "h1":
            lines += [f"# {block.content}", ""]
        elif block.kind == "h2":
            lines += [f"## {block.content}", ""]
        elif block.kind == "text":
            lines += [block.content, ""]
        elif block.kind == "image":
            lines += [f"![{Path(block.content).stem}]({block.content.relative_to(base).as_posix()})",
                      "", f"*{block.caption}*", ""]
        elif block.kind == "table":
            header, *rows = block.content
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


PAGE_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:0 auto;padding:1em;color:#222;"
    "line-height:1.4;overflow-wrap:break-word}"
    ".scroll{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "font-size:13px;vertical-align:top}th{background:#f3f3f3}"
    "img{max-width:100%;height:auto}figure{margin:1em 0}"
    "figcaption{font-size:12px;color:#555}")


def render_html(blocks: list[Block], title: str) -> str:
    """A page that reads on a phone: the viewport is the screen's, wide tables scroll in
    their own box, figures scale down; each caption is written once, under its figure."""
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head><body>"]
    for block in blocks:
        if block.kind in ("h1", "h2"):
            parts.append(f"<{block.kind}>{html.escape(block.content)}</{block.kind}>")
        elif block.kind == "text":
            parts.append(f"<p>{html.escape(block.content)}</p>")
        elif block.kind == "image":
            data = base64.b64encode(Path(block.content).read_bytes()).decode("ascii")
            alt = html.escape(Path(block.content).stem.replace("_", " "))
            parts.append(f"<figure><img alt='{alt}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
        elif block.kind == "table":
            header, *rows = block.content
            parts.append("<div class='scroll'><table><tr>"
                         + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
            for row in rows:
                parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
            parts.append("</table></div>")
    parts.append("</body></html>")
    return "\n".join(parts)
