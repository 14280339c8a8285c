"""The formats NLP users already have, as records:

- CoNLL-2003 style (``.conll``): ``token ... tag`` per line (the tag is the last column,
  BIO or IOB1), a blank line between sentences, ``-DOCSTART-`` lines skipped ->
  ``{"text", "tokens", "entities"}`` (tokens joined by spaces; spans in characters);
- JSONL with character spans: ``{"text", "entities": [{"start", "end", "label"}]}``;
- SQuAD v1.1 / v2.0 JSON (``{"data": [{"paragraphs": [{"context", "qas": [...]}]}]}``) ->
  one record per question ``{"id", "context", "question", "answers", "is_impossible"}``.
"""

from __future__ import annotations

from pathlib import Path

from polymodal.plugin import DataError, Record


def read_text_file(path: str | Path) -> str:
    """A UTF-8 text file, or a one-line error naming the file (missing, empty, not UTF-8)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"data file is empty: {path}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None


def spans_from_tags(tokens: list[str], tags: list[str]) -> tuple[str, list[Record]]:
    """Space-joined text and character spans of BIO/IOB1 tags (an I- after another type or
    after O opens a span, as IOB1 and CoNLL's own evaluation do)."""
    text, starts = "", []
    for token in tokens:
        starts.append(len(text) + (1 if text else 0))
        text = f"{text} {token}" if text else token
    entities: list[Record] = []
    for i, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        end = starts[i] + len(tokens[i])
        if prefix == "I" and entities and entities[-1]["label"] == label \
                and entities[-1]["last"] == i - 1:
            entities[-1]["end"], entities[-1]["last"] = end, i
        elif prefix in ("B", "I"):
            entities.append({"start": starts[i], "end": end, "label": label, "last": i})
    return text, [{k: v for k, v in e.items() if k != "last"} for e in entities]


def read_conll(path: str | Path) -> list[Record]:
    content = read_text_file(path)
    records: list[Record] = []
    tokens: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if tokens:
            text, entities = spans_from_tags(tokens, tags)
            records.append({"text": text, "tokens": list(tokens), "entities": entities})
            tokens.clear()
            tags.clear()

    for lineno, line in enumerate(content.splitlines(), start=1):
        parts = line.split()
        if not parts:
            flush()
            continue
        if parts[0] == "-DOCSTART-":
            continue
        if len(parts) < 2:
            raise DataError(f"{path}:{lineno}: expected 'token ... tag', got {line.strip()!r}")
        tag = parts[-1]
        if tag != "O" and (tag[:2] not in ("B-", "I-") or len(tag) < 3):
            raise DataError(f"{path}:{lineno}: tag {tag!r} is not O, B-TYPE or I-TYPE")
        tokens.append(parts[0])
        tags.append(tag)
    flush()
    if not records:
        raise DataError(f"data file has no sentences: {path}")
    return records


def write_conll(records: list[Record], path: str | Path) -> None:
    """Records with ``text`` and character ``entities`` as a CoNLL file (words and
    punctuation marks as tokens)."""
    import re

    lines = []
    for record in records:
        for match in re.finditer(r"\w+(?:['\-.]\w+)*|[^\w\s]", record["text"]):
            token, start = match.group(), match.start()
            tag = "O"
            for e in record["entities"]:
                if e["start"] <= start < e["end"]:
                    tag = ("B-" if start == e["start"] else "I-") + e["label"]
            lines.append(f"{token} {tag}")
        lines.append("")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def entity_records(records: list[Record]) -> list[Record]:
    """Records with ``text`` + ``entities``; ``tokens`` + ``tags`` ones are converted."""
    out = []
    for record in records:
        if "text" not in record and "tokens" in record and "tags" in record:
            text, entities = spans_from_tags(list(record["tokens"]), list(record["tags"]))
            record = {**record, "text": text, "entities": entities}
        out.append(record)
    return out


def qa_records(records: list[Record]) -> list[Record]:
    """SQuAD articles (``paragraphs``) flattened to one record per question; records that
    are already flat (``context`` + ``question``) pass through."""
    if not any("paragraphs" in r for r in records):
        return records
    flat = []
    for article in records:
        for paragraph in article.get("paragraphs") or []:
            context = paragraph.get("context")
            for qa in paragraph.get("qas") or []:
                flat.append({"id": qa.get("id"), "context": context,
                             "question": qa.get("question"),
                             "answers": [{"text": a.get("text"),
                                          "answer_start": a.get("answer_start")}
                                         for a in qa.get("answers") or []],
                             "is_impossible": bool(qa.get("is_impossible", False))})
    if not flat:
        raise DataError("the SQuAD file has no questions")
    return flat
