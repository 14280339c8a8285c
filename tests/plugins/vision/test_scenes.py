"""The synthetic scene generator: captions follow the grammar, answers are true of the
drawn scene, files are deterministic for a seed."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from polymodal_vision.scenes import (
    COLORS,
    RELATIONS,
    SHAPES,
    SIZES,
    _place,
    generate,
    holds,
    questions,
)

OBJECT = rf"(?:{'|'.join(SIZES)}) (?:{'|'.join(COLORS)}) (?:{'|'.join(SHAPES)})"
CAPTION = re.compile(rf"^a {OBJECT}(?: (?:{'|'.join(RELATIONS)}) a {OBJECT})?$")


def test_captions_and_questions(tmp_path: Path) -> None:
    files = generate(tmp_path, 60, seed=3)
    captions = [json.loads(line) for line in files["captions"].read_text().splitlines()]
    assert len(captions) == 60
    assert all(CAPTION.match(c["caption"]) for c in captions)
    qa = [json.loads(line) for line in files["questions"].read_text().splitlines()]
    answers = {"yes", "no", "1", "2", "3", *COLORS, *SHAPES}
    assert {q["answer"] for q in qa} <= answers
    assert all(Path(q["image"]).is_file() for q in qa)
    again = generate(tmp_path / "again", 60, seed=3)
    assert again["captions"].read_text().replace(str(tmp_path / "again"), str(tmp_path)) == \
        files["captions"].read_text()


def test_answers_are_true_of_the_scene() -> None:
    rng = random.Random(7)
    yes = no = 0
    for _ in range(300):
        shapes = _place(rng, rng.choice((1, 2, 3)), 64)
        assert len({s.kind for s in shapes}) == len(shapes)  # shapes and colours unique
        assert len({s.color for s in shapes}) == len(shapes)
        by_kind = {s.kind: s for s in shapes}
        by_color = {s.color: s for s in shapes}
        for question, answer in questions(shapes, rng):
            if question.startswith("what color is the "):
                assert by_kind[question.split()[-1].rstrip("?")].color == answer
            elif question.startswith("what shape is the "):
                assert by_color[question.split()[4]].kind == answer
            elif question.startswith("how many"):
                assert answer == str(len(shapes))
            else:
                match = re.match(rf"is the (\w+) ({'|'.join(RELATIONS)}) the (\w+)\?", question)
                assert match
                a, rel, b = by_kind[match[1]], match[2], by_kind[match[3]]
                assert (answer == "yes") == holds(a, b, rel)
                yes += answer == "yes"
                no += answer == "no"
    assert yes == no  # one yes and one no question per scene with two or more shapes


def test_a_caption_depends_on_the_picture_not_the_drawing_order() -> None:
    from polymodal_vision.scenes import caption

    rng = random.Random(11)
    for _ in range(100):
        shapes = _place(rng, rng.choice((2, 3)), 64)
        assert caption(shapes) == caption(list(reversed(shapes)))
        assert " right of " not in caption(shapes)  # the left shape is named first
