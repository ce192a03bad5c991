"""Printable posters for building and place codes (一楼一码): A5 portrait PNG (148 × 210 mm at 150 dpi),
the community and the building in Chinese, the QR code, one line of instructions. Pillow draws them,
segno makes the code; Chinese needs a CJK font (Noto Sans CJK: ``apt-get install fonts-noto-cjk``)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

KNOWN_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
WIDTH, HEIGHT = 874, 1240  # A5 at 150 dpi
_UNSAFE = re.compile(r"[^\w\u4e00-\u9fff-]+")


class NoFont(Exception):
    """No font with Chinese glyphs on this machine."""


def find_cjk_font(configured: Path | None = None, known_fonts: tuple[str, ...] = KNOWN_FONTS) -> Path:
    """A font that has Chinese glyphs: ``OUTREACH_QR_FONT`` when set, else a known Noto CJK (or
    WenQuanYi …) path, else what fontconfig lists for ``:lang=zh`` (``fc-match`` alone falls back to a
    Latin font without saying so)."""
    if configured is not None:
        if configured.is_file():
            return configured
        raise NoFont
    for known in known_fonts:
        if Path(known).is_file():
            return Path(known)
    fc_list = shutil.which("fc-list")
    if fc_list is not None:
        try:
            listed = subprocess.run(
                [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listed = ""
        files = sorted(line.strip().rstrip(":") for line in listed.splitlines() if line.strip())
        preferred = [f for f in files if "CJK" in f or "SC" in f] or files
        for candidate in preferred:
            if Path(candidate).is_file():
                return Path(candidate)
    raise NoFont


def file_name(code: str, label: str) -> str:
    """``HPL-3号楼.png``: readable, and safe on every file system (no separators or spaces)."""
    return f"{code}-{_UNSAFE.sub('_', label).strip('_') or 'code'}.png"


@dataclass(frozen=True)
class Poster:
    community: str
    label: str  # 3号楼, 东门
    content: str  # what the QR code encodes
    hint: str  # one line of instructions
    footer: str  # small print: the code's scene, for the record


def render_png(poster: Poster, font_path: Path) -> bytes:
    import segno
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)

    def font(size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(str(font_path), size)

    def centred(text: str, top: int, size: int, fill: str = "black") -> None:
        face = font(size)
        while size > 16 and draw.textlength(text, font=face) > WIDTH - 80:
            size -= 4
            face = font(size)
        width = draw.textlength(text, font=face)
        draw.text(((WIDTH - width) / 2, top), text, font=face, fill=fill)

    draw.rectangle((0, 0, WIDTH, 150), fill="#1f6f43")
    centred(poster.community, 40, 64, fill="white")
    centred(poster.label, 190, 110)
    code = segno.make(poster.content, error="m", micro=False)
    modules = code.symbol_size(scale=1, border=4)[0]
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=max(1, 600 // modules), border=4)  # whole pixels per module
    buffer.seek(0)
    qr = Image.open(buffer).convert("RGB")
    image.paste(qr, ((WIDTH - qr.width) // 2, 360 + (600 - qr.height) // 2))
    centred(poster.hint, 1000, 40)
    centred(poster.footer, 1160, 22, fill="#777777")
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(150, 150), optimize=True)
    return out.getvalue()
