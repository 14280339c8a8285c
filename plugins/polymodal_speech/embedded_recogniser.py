"""The recogniser the ``asr-transcript`` encoder uses by default: the ``ctc`` backend of
``speech.asr`` trained once into the cache on an espeak-ng corpus of its own (seed 1: other
voices, speeds, pitches and noise than the embedded corpus of seed 0, training voices only).
So the transcripts of the embedded commands' training utterances are those of audio the
recogniser never heard, as the held-out voices' are: a model that reads them does not learn
to trust transcripts cleaner than it will meet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from polymodal.plugin import Record

CORPUS_SEED = 1


def recogniser_corpus(utterances: int) -> list[Record]:
    """``utterances`` espeak-ng commands and digit strings of training voices (seed 1)."""
    from polymodal.plugin import build_once, cache_dir
    from polymodal_speech.corpus import synthesize_corpus

    directory = cache_dir(f"speech-recogniser-corpus-v1-{utterances}")
    done = directory / "done.json"

    def build() -> None:
        synthesize_corpus(directory, utterances, 0, seed=CORPUS_SEED)
        done.write_text(json.dumps({"train": utterances, "seed": CORPUS_SEED}))

    build_once(directory, done, build)
    rows = [json.loads(line) for line in (directory / "train.jsonl").read_text().splitlines()]
    return [{"audio": str(directory / r["audio"]), "text": r["text"]} for r in rows]


def embedded_recogniser(utterances: int, epochs: int) -> Path:
    """The model directory of a ctc recogniser trained by the speech.asr lifecycle on
    ``recogniser_corpus(utterances)`` for ``epochs``, built once in the cache."""
    from polymodal.plugin import FitRequest, build_once, cache_dir
    from polymodal_speech.asr_fit import write_asr_model
    from polymodal_speech.asr_scenario import ASRSpec

    directory = cache_dir(f"speech-recogniser-v1-{utterances}-{epochs}")
    model, done = directory / "model", directory / "done.json"

    def build() -> None:
        records = recogniser_corpus(utterances)
        shutil.rmtree(model, ignore_errors=True)  # a build that stopped half way
        spec = ASRSpec.model_validate({"backend": "ctc", "name": "commands-recogniser",
                                       "train": {"epochs": epochs}})
        write_asr_model(FitRequest(spec=spec, train=records, test=None, out_dir=model,
                                   progress=False,
                                   source=f"espeak-ng corpus (seed {CORPUS_SEED})"))
        done.write_text(json.dumps({"utterances": utterances, "epochs": epochs}))

    build_once(directory, done, build)
    return model
