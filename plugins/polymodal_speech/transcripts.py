"""Word and character error rates (torchmetrics) after one normaliser for every backend and
report: Whisper's English text normaliser (in transformers), which lower-cases, drops
punctuation and hyphens, spells out titles ("Mr." -> "mister") and writes numbers one way
("twenty five" and "25" both become "25"), on the reference and the hypothesis alike."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def _normaliser() -> Any:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    # The British -> American spelling table is a separate download in Whisper: left empty.
    return EnglishTextNormalizer({})


def normalise(text: str) -> str:
    return " ".join(_normaliser()(text).split())


def transcript_scores(references: list[str], hypotheses: list[str],
                      names: list[str] | None = None) -> dict[str, Any]:
    """Overall WER and CER (errors over all reference words / characters) and each file's,
    after ``normalise``."""
    from torchmetrics.functional.text import char_error_rate, word_error_rate

    refs = [normalise(t) for t in references]
    hyps = [normalise(t) for t in hypotheses]
    names = names or [str(i + 1) for i in range(len(refs))]

    def rate(metric: Any, hyp: list[str] | str, ref: list[str] | str) -> float:
        if not "".join(ref):  # nothing was said: any word heard is all error
            return 0.0 if not "".join(hyp) else 1.0
        return round(float(metric(hyp, ref)), 4)

    per_file = [{"file": Path(name).name, "wer": rate(word_error_rate, h, r),
                 "cer": rate(char_error_rate, h, r), "words": len(r.split()),
                 "reference": r, "hypothesis": h}
                for name, r, h in zip(names, refs, hyps, strict=True)]
    return {"wer": rate(word_error_rate, hyps, refs), "cer": rate(char_error_rate, hyps, refs),
            "words": sum(len(r.split()) for r in refs), "n": len(refs), "per_file": per_file}
