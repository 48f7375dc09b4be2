"""One report renderer: Markdown (markdown-it-py, CommonMark + tables) into a Jinja2 page.

Every report of bondml (the pipeline report, the deployment analysis) is written as Markdown and
rendered here into one self-contained HTML file: images referenced by relative path are embedded
as base64 ``data:`` URIs, so ``report.html`` can be mailed or moved alone.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Folder of bondml's Jinja2 templates (package data).
TEMPLATES = Path(__file__).with_name("templates")


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              autoescape=jinja2.select_autoescape(["html", "j2"]))


def data_uri(path: str | Path) -> str:
    """The file as a ``data:<mime>;base64,...`` URI."""
    p = Path(path)
    mime = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
    return f"data:{mime};base64," + base64.b64encode(p.read_bytes()).decode("ascii")


def markdown_html(md: str, base_dir: str | Path | None = None, embed: bool = True) -> str:
    """Markdown -> HTML fragment (CommonMark with tables); images under ``base_dir`` embedded."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    base = Path(base_dir) if base_dir is not None else None
    default_image = parser.renderer.rules["image"]

    def image(_self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
        tok = tokens[idx]
        src = str(tok.attrGet("src") or "")
        if embed and base is not None and "://" not in src and not src.startswith("data:"):
            f = (base / src).resolve()
            if f.is_file():
                tok.attrSet("src", data_uri(f))
        return default_image(tokens, idx, options, env)

    parser.add_render_rule("image", image)
    return parser.render(md)


def render_page(md: str, title: str, base_dir: str | Path | None = None, footer: str = "",
                template: str = "report.html.j2") -> str:
    """A whole HTML page from Markdown through the Jinja2 ``template`` (one file, images embedded)."""
    body = markdown_html(md, base_dir)
    return _environment().get_template(template).render(title=title, body=body, footer=footer)


__all__ = ["TEMPLATES", "data_uri", "markdown_html", "render_page"]
