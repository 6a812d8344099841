"""A small pure-Python PNG chart: the delivery funnel and sends over time, with a 5×7 pixel font.

No plotting dependency: the report needs two simple plots, which a canvas of RGB bytes, zlib and
a few dozen glyphs draw in a few milliseconds.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from datetime import datetime

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
INK: Color = (40, 40, 48)
GRID: Color = (225, 228, 235)
COLORS: dict[str, Color] = {
    "Total": (120, 130, 150),
    "Sent": (54, 123, 245),
    "Delivered": (46, 182, 125),
    "Read": (30, 140, 90),
    "Responded": (236, 178, 46),
    "Failed": (224, 30, 90),
}

_FONT = {
    "A": "01110100011000111111100011000110001",
    "B": "11110100011000111110100011000111110",
    "C": "01110100011000010000100001000101110",
    "D": "11110100011000110001100011000111110",
    "E": "11111100001000011110100001000011111",
    "F": "11111100001000011110100001000010000",
    "G": "01110100011000010111100011000101111",
    "H": "10001100011000111111100011000110001",
    "I": "01110001000010000100001000010001110",
    "J": "00111000100001000010000101001001100",
    "K": "10001100101010011000101001001010001",
    "L": "10000100001000010000100001000011111",
    "M": "10001110111010110101100011000110001",
    "N": "10001100011100110101100111000110001",
    "O": "01110100011000110001100011000101110",
    "P": "11110100011000111110100001000010000",
    "Q": "01110100011000110001101011001001101",
    "R": "11110100011000111110101001001010001",
    "S": "01111100001000001110000010000111110",
    "T": "11111001000010000100001000010000100",
    "U": "10001100011000110001100011000101110",
    "V": "10001100011000110001100010101000100",
    "W": "10001100011000110101101011010101010",
    "X": "10001100010101000100010101000110001",
    "Y": "10001100010101000100001000010000100",
    "Z": "11111000010001000100010001000011111",
    "0": "01110100011001110101110011000101110",
    "1": "00100011000010000100001000010001110",
    "2": "01110100010000100010001000100011111",
    "3": "11111000100010000010000011000101110",
    "4": "00010001100101010010111110001000010",
    "5": "11111100001111000001000011000101110",
    "6": "00110010001000011110100011000101110",
    "7": "11111000010001000100010000100001000",
    "8": "01110100011000101110100011000101110",
    "9": "01110100011000101111000010001001100",
    " ": "00000000000000000000000000000000000",
    ".": "00000000000000000000000000110001100",
    ",": "00000000000000000000001100010001000",
    ":": "00000011000110000000011000110000000",
    "%": "11000110010001000100010001001100011",
    "-": "00000000000000011111000000000000000",
    "/": "00000000010001000100010001000000000",
    "(": "00010001000100001000010000010000010",
    ")": "01000001000001000010000100010001000",
    "+": "00000001000010011111001000010000000",
}


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(WHITE * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, self.width), min(y + h, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        row = bytes(color) * (x1 - x0)
        for yy in range(y0, y1):
            start = (yy * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, thick: int = 2) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            x = x0 + (x1 - x0) * i // steps
            y = y0 + (y1 - y0) * i // steps
            self.rect(x, y, thick, thick, color)

    def text(self, x: int, y: int, text: str, color: Color = INK, scale: int = 2) -> int:
        """Draw `text` (upper-cased) with its top-left at (x, y); returns the width drawn."""
        cx = x
        for char in text.upper():
            glyph = _FONT.get(char, _FONT[" "])
            for row in range(7):
                for col in range(5):
                    if glyph[row * 5 + col] == "1":
                        self.rect(cx + col * scale, y + row * scale, scale, scale, color)
            cx += 6 * scale
        return cx - x

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * self.width * 3 : (y + 1) * self.width * 3])
            for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return (
                struct.pack(">I", len(data))
                + kind
                + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
            )

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )


def report_chart(
    title: str,
    funnel: Sequence[tuple[str, int]],
    sent_times: Sequence[datetime],
    delivered_times: Sequence[datetime] = (),
) -> bytes:
    """The delivery funnel (left) and cumulative sent / delivered over time (right) as a PNG."""
    canvas = Canvas(960, 420)
    canvas.text(20, 16, title[:70], scale=2)
    _funnel(canvas, funnel, 20, 60, 440, 330)
    _timeline(canvas, sent_times, delivered_times, 500, 60, 440, 330)
    return canvas.png()


def _funnel(
    canvas: Canvas, funnel: Sequence[tuple[str, int]], x: int, y: int, w: int, h: int
) -> None:
    canvas.text(x, y, "DELIVERY FUNNEL", scale=2)
    top = max((v for _, v in funnel), default=0) or 1
    bar_h = max(18, (h - 40) // max(len(funnel), 1) - 10)
    label_w = 120
    for i, (label, value) in enumerate(funnel):
        by = y + 36 + i * (bar_h + 10)
        canvas.text(x, by + bar_h // 2 - 7, label, scale=2)
        length = int((w - label_w - 90) * value / top)
        canvas.rect(x + label_w, by, max(length, 1), bar_h, COLORS.get(label, INK))
        canvas.text(x + label_w + length + 8, by + bar_h // 2 - 7, f"{value:,}", scale=2)


def _timeline(
    canvas: Canvas,
    sent: Sequence[datetime],
    delivered: Sequence[datetime],
    x: int,
    y: int,
    w: int,
    h: int,
) -> None:
    canvas.text(x, y, "PROGRESS OVER TIME", scale=2)
    px, py, pw, ph = x + 10, y + 40, w - 20, h - 80
    canvas.rect(px, py + ph, pw, 2, INK)
    canvas.rect(px, py, 2, ph, INK)
    for i in range(1, 5):
        canvas.rect(px + 2, py + ph - ph * i // 4, pw - 2, 1, GRID)
    times = sorted(sent)
    if not times:
        canvas.text(px + 20, py + ph // 2, "NOTHING SENT YET", scale=2)
        return
    start, end = times[0], max([times[-1], *delivered]) if delivered else times[-1]
    span = max((end - start).total_seconds(), 1.0)
    total = len(times)
    for series, color in ((sorted(delivered), COLORS["Delivered"]), (times, COLORS["Sent"])):
        if not series:
            continue
        last = (px, py + ph)
        step = max(1, len(series) // 300)
        for i in range(0, len(series), step):
            nx = px + int(pw * (series[i] - start).total_seconds() / span)
            ny = py + ph - int(ph * (i + 1) / total)
            canvas.line(last[0], last[1], nx, ny, color)
            last = (nx, ny)
        canvas.line(
            last[0],
            last[1],
            px + int(pw * (series[-1] - start).total_seconds() / span),
            py + ph - int(ph * len(series) / total),
            color,
        )
    canvas.text(px, py + ph + 10, start.strftime("%H:%M:%S"), scale=2)
    label = end.strftime("%H:%M:%S")
    canvas.text(px + pw - len(label) * 12, py + ph + 10, label, scale=2)
    canvas.text(px + 10, py - 22, f"{total:,} SENT", COLORS["Sent"], scale=2)
    canvas.text(px + 200, py - 22, f"{len(delivered):,} DELIVERED", COLORS["Delivered"], scale=2)
