"""Referring expressions over the object scenes: phrases that pick out exactly one object of
a scene, for phrase grounding. The grammar:

- ``the {colour} {shape}`` where no other object has that colour and shape;
- ``the {size} {colour} {shape}`` where the colour and shape alone are not enough but the
  size makes it unique;
- ``the {shape} {relation} the {shape}`` (and ``the {colour} shape {relation} the
  {shape}``): the anchor is the only object of its shape, and the target the only one of
  its description in that relation to it (relations compare centres, as in the captions).

A phrase is kept only when exactly one object fits it, so it can be grounded from the
picture alone; an image without the phrase leaves a guess among the objects."""

from __future__ import annotations

import random

from polymodal_vision.scenes import RELATIONS, Shape, holds


def _only(shapes: list[Shape], fits: list[bool]) -> Shape | None:
    """The one shape whose ``fits`` is true, or None when none or several are."""
    matching = [s for s, ok in zip(shapes, fits, strict=True) if ok]
    return matching[0] if len(matching) == 1 else None


def referring_phrases(shapes: list[Shape]) -> list[tuple[str, int]]:
    """Every phrase of the grammar that picks out one object: (phrase, its index)."""
    found: list[tuple[str, int]] = []
    for index, target in enumerate(shapes):
        look = [(s.kind, s.color) == (target.kind, target.color) for s in shapes]
        if _only(shapes, look) is target:
            found.append((f"the {target.color} {target.kind}", index))
        elif _only(shapes, [(s.kind, s.color, s.size) == (target.kind, target.color,
                                                          target.size) for s in shapes]
                   ) is target:
            found.append((f"the {target.size} {target.color} {target.kind}", index))
        for anchor in shapes:
            if anchor.kind == target.kind or _only(
                    shapes, [s.kind == anchor.kind for s in shapes]) is not anchor:
                continue
            for relation in RELATIONS:
                if not holds(target, anchor, relation):
                    continue
                related = [s is not anchor and holds(s, anchor, relation) for s in shapes]
                same_kind = [r and s.kind == target.kind for r, s in zip(related, shapes,
                                                                         strict=True)]
                if _only(shapes, same_kind) is target:
                    found.append((f"the {target.kind} {relation} the {anchor.kind}", index))
                same_colour = [r and s.color == target.color
                               for r, s in zip(related, shapes, strict=True)]
                if _only(shapes, same_colour) is target:
                    found.append((f"the {target.color} shape {relation} the {anchor.kind}",
                                  index))
    return found


def sample_phrases(shapes: list[Shape], rng: random.Random, count: int
                   ) -> list[tuple[str, int]]:
    """Up to ``count`` phrases of one scene, relation phrases and plain ones alike (a
    relation phrase is drawn first where the scene has one, so the grammar's relation form
    is not crowded out by the more frequent plain descriptions)."""
    phrases = referring_phrases(shapes)
    relational = [p for p in phrases if any(f" {r} the " in p[0] for r in RELATIONS)]
    plain = [p for p in phrases if p not in relational]
    chosen: list[tuple[str, int]] = []
    if relational:
        chosen.append(rng.choice(relational))
    rest = [p for p in plain + relational if p not in chosen]
    rng.shuffle(rest)
    return (chosen + rest)[:count]
