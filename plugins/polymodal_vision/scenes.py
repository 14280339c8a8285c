"""Synthetic scenes: the embedded image+text data. 1-3 shapes (circle, square, triangle) in
four colours and two sizes on a plain background, each shape and colour at most once per
scene, with captions and questions from a small grammar:

- caption: ``a {size} {color} {shape}`` or ``a {size} {color} {shape} {relation} a {size}
  {color} {shape}`` (the two leftmost shapes, left one first, and the relation between
  them: left of, above, below);
- questions: ``what color is the {shape}?`` -> colour; ``what shape is the {color}
  object?`` -> shape; ``is the {shape} {relation} the {shape}?`` -> yes/no; ``how many
  shapes are there?`` -> 1/2/3.

Written as PNG files plus JSONL manifests ``{"image", "caption"}`` and
``{"image", "question", "answer"}``; deterministic for a seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHAPES = ("circle", "square", "triangle")
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
          "yellow": (230, 200, 30)}
SIZES = ("small", "large")
RELATIONS = ("left of", "right of", "above", "below")
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


@dataclass
class Shape:
    kind: str
    color: str
    size: str
    x: float  # centre, pixels
    y: float
    radius: float

    def words(self) -> str:
        return f"{self.size} {self.color} {self.kind}"


def relation(a: Shape, b: Shape) -> str:
    """Where ``a`` is from ``b``, along the axis where they are further apart."""
    dx, dy = a.x - b.x, a.y - b.y
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def holds(a: Shape, b: Shape, rel: str) -> bool:
    return {"left of": a.x < b.x, "right of": a.x > b.x, "above": a.y < b.y,
            "below": a.y > b.y}[rel]


def _place(rng: random.Random, count: int, size: int) -> list[Shape]:
    kinds = rng.sample(SHAPES, count)
    colors = rng.sample(list(COLORS), count)
    shapes: list[Shape] = []
    for kind, color in zip(kinds, colors, strict=True):
        for _ in range(200):
            label = rng.choice(SIZES)
            radius = size * (0.16 if label == "large" else 0.09)
            x = rng.uniform(radius + 1, size - radius - 1)
            y = rng.uniform(radius + 1, size - radius - 1)
            # Apart enough not to overlap, and clearly apart on the relation axis.
            if all(((x - s.x) ** 2 + (y - s.y) ** 2) ** 0.5 > radius + s.radius + 2
                   and max(abs(x - s.x), abs(y - s.y)) > 0.5 * (radius + s.radius)
                   for s in shapes):
                shapes.append(Shape(kind, color, label, x, y, radius))
                break
        else:
            return _place(rng, count, size)
    return shapes


def draw(shapes: list[Shape], size: int, background: tuple[int, int, int]) -> Any:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(image)
    for s in shapes:
        draw_shape(pen, s, COLORS[s.color])
    return image


def draw_shape(pen: Any, s: Shape, fill: Any) -> None:
    """One shape with a PIL ``ImageDraw`` pen, filled with ``fill`` (a colour, or a class
    index on a mask)."""
    box = (s.x - s.radius, s.y - s.radius, s.x + s.radius, s.y + s.radius)
    if s.kind == "circle":
        pen.ellipse(box, fill=fill)
    elif s.kind == "square":
        pen.rectangle(box, fill=fill)
    else:
        pen.polygon([(s.x, s.y - s.radius), (s.x - s.radius, s.y + s.radius),
                     (s.x + s.radius, s.y + s.radius)], fill=fill)


def caption(shapes: list[Shape]) -> str:
    """The one shape, or the two leftmost shapes, left one first: a caption is a function of
    the picture (not of the order the shapes were drawn in), so it can be predicted."""
    if len(shapes) == 1:
        return f"a {shapes[0].words()}"
    a, b = sorted(shapes, key=lambda s: s.x)[:2]
    return f"a {a.words()} {relation(a, b)} a {b.words()}"


def questions(shapes: list[Shape], rng: random.Random) -> list[tuple[str, str]]:
    """Every colour and shape question the scene allows, two relation questions about a
    random pair (one whose answer is yes, one whose answer is no, so the family's answer
    prior is 50/50), and the count."""
    pairs: list[tuple[str, str]] = []
    for target in shapes:
        pairs.append((f"what color is the {target.kind}?", target.color))
        pairs.append((f"what shape is the {target.color} object?", target.kind))
    if len(shapes) >= 2:
        for ask_true in (True, False):
            a, b = rng.sample(shapes, 2)
            rel = relation(a, b) if ask_true else rng.choice(RELATIONS)
            if not ask_true and holds(a, b, rel):
                # Shapes never share a centre coordinate, so the opposite does not hold.
                rel = OPPOSITE[rel]
            pairs.append((f"is the {a.kind} {rel} the {b.kind}?",
                          "yes" if holds(a, b, rel) else "no"))
    pairs.append(("how many shapes are there?", str(len(shapes))))
    rng.shuffle(pairs)
    return pairs


def generate(out_dir: str | Path, count: int, *, size: int = 64, seed: int = 0,
             prefix: str = "scene", max_shapes: int = 3) -> dict[str, Path]:
    """``count`` scenes of 1 to ``max_shapes`` shapes into ``out_dir``: PNGs,
    ``captions.jsonl``, ``questions.jsonl``."""
    if not 1 <= max_shapes <= len(SHAPES):
        raise ValueError(f"max_shapes must be from 1 to {len(SHAPES)}")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    captions, qa = [], []
    for index in range(count):
        shapes = _place(rng, rng.choice(range(1, max_shapes + 1)), size)
        shade = rng.randint(225, 250)
        path = (out / "images" / f"{prefix}-{index:05d}.png").resolve()
        draw(shapes, size, (shade, shade, shade)).save(path)
        captions.append({"image": str(path), "caption": caption(shapes)})
        qa += [{"image": str(path), "question": q, "answer": a}
               for q, a in questions(shapes, rng)]
    files = {"captions": out / "captions.jsonl", "questions": out / "questions.jsonl"}
    for key, rows in (("captions", captions), ("questions", qa)):  # each whole or absent
        partial = files[key].with_suffix(".partial")
        partial.write_text("".join(json.dumps(r) + "\n" for r in rows))
        partial.replace(files[key])
    return files
