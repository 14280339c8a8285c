"""speech.asr's ctc backend: characters in and out, the n-gram LM a proper ARPA model, word
times from the forced alignment; `polymodal demo speech.asr` trains it on the embedded
corpus (quick here; the full run, WER on held-out voices, is slow), and the model reloads,
evaluates on the held-out voices and transcribes with word times."""

from __future__ import annotations

import json
import math
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from polymodal.testing import run_cli

pytest.importorskip("soundfile")
pytest.importorskip("flashlight.lib.text")
if shutil.which("espeak-ng") is None:
    pytest.skip("espeak-ng is not installed", allow_module_level=True)

torch = pytest.importorskip("torch")

from polymodal_speech.ctc_model import TOKENS, encode_text, greedy_text  # noqa: E402


def test_characters_round_trip_and_greedy_decoding_collapses_repeats() -> None:
    ids = encode_text("Turn ON the  lights, please!")
    assert "".join(TOKENS[i] for i in ids) == "turn|on|the|lights|please"
    blank, space = 0, TOKENS.index("|")
    o, n = TOKENS.index("o"), TOKENS.index("n")
    # "o o n n _ n | o n": repeats collapse, a blank separates the two n's of "nn"
    assert greedy_text([o, o, n, n, blank, n, space, o, blank, n]) == "onn on"


def _arpa(path: Path) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]:
    logp: dict[tuple[str, ...], float] = {}
    backoff: dict[tuple[str, ...], float] = defaultdict(float)
    order = 0
    for line in path.read_text().splitlines():
        if line.startswith("\\"):  # \N-grams: opens a section, \end\ closes the model
            order = int(line[1]) if line.endswith("-grams:") else 0
        elif order and line.strip():
            fields = line.split("\t")
            gram = tuple(fields[1].split())
            assert len(gram) == order
            logp[gram] = float(fields[0])
            if len(fields) > 2:
                backoff[gram] = float(fields[2])
    return logp, backoff


def test_the_lm_is_a_normalised_backoff_model_that_prefers_seen_word_orders(
        tmp_path: Path) -> None:
    from polymodal_speech.ngram_lm import write_arpa

    sentences = [s.split() for s in ["turn on the lights", "turn off the lights",
                                     "lock the front door", "turn on the music"]]
    write_arpa(tmp_path / "lm.arpa", sentences, order=3)
    logp, backoff = _arpa(tmp_path / "lm.arpa")

    def prob(gram: tuple[str, ...]) -> float:
        if gram in logp:
            return 10 ** logp[gram]
        return 10 ** backoff[gram[:-1]] * prob(gram[1:])

    vocabulary = [g[0] for g in logp if len(g) == 1 and g[0] != "<s>"]
    for context in [("turn",), ("the",), ("turn", "on"), ("<s>", "turn"), ("door",)]:
        assert math.isclose(sum(prob((*context, w)) for w in vocabulary), 1.0,
                            rel_tol=1e-3), context
    assert prob(("turn", "on", "the")) > 10 * prob(("turn", "on", "door"))


def test_word_times_come_from_the_forced_alignment() -> None:
    from polymodal_speech.ctc_asr import word_times
    from polymodal_speech.ctc_model import FRAME_SECONDS

    # 60 frames: "on" at frames 10-14, a separator, "off" at 30-39, blanks elsewhere.
    path = ["-"] * 60
    path[10:12], path[12:15], path[20] = ["o"] * 2, ["n"] * 3, "|"
    path[30:33], path[33:36], path[36], path[37:40] = ["o"] * 3, ["f"] * 3, "-", ["f"] * 3
    log_probs = torch.full((60, len(TOKENS)), -20.0)
    for frame, token in enumerate(path):
        log_probs[frame, TOKENS.index(token)] = 0.0
    words = word_times(log_probs.log_softmax(-1), "on off")
    assert [w["word"] for w in words] == ["on", "off"]
    assert words[0]["start"] == pytest.approx(10 * FRAME_SECONDS)
    assert words[0]["end"] == pytest.approx(15 * FRAME_SECONDS)
    assert words[1]["start"] == pytest.approx(30 * FRAME_SECONDS)
    assert words[1]["end"] == pytest.approx(40 * FRAME_SECONDS)
    assert word_times(log_probs[:3], "on off") == []  # more characters than frames


def test_the_spec_gives_ctc_its_own_training_defaults() -> None:
    from pydantic import ValidationError

    from polymodal_speech.asr_scenario import ASRSpec

    assert ASRSpec().train.lr == 1e-5  # fine-tuning Whisper
    ctc = ASRSpec.model_validate({"backend": "ctc", "train": {"epochs": 2}})
    assert ctc.train.epochs == 2 and ctc.train.lr == 2e-3
    with pytest.raises(ValidationError, match="odd"):
        ASRSpec.model_validate({"backend": "ctc", "ctc": {"kernel": 12}})
    with pytest.raises(ValidationError, match="needs an LM"):
        ASRSpec.model_validate({"backend": "ctc", "lm_order": 0})
    assert ASRSpec.model_validate({"backend": "ctc", "lm_order": 0, "decoder": "beam"})


def test_the_demo_trains_ctc_on_the_corpus_and_the_model_gives_word_times(
        tmp_path: Path) -> None:
    result = run_cli("demo", "speech.asr", "--quick", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["speech.asr"]
    model = Path(summary["out"])
    for name in ("model.safetensors", "processor.json", "lexicon.txt", "lm.arpa", "card.md"):
        assert (model / name).is_file(), name
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["test"]["n"] == 2  # the quick slice of the held-out voices
    assert set(metrics["baselines"]) == {"greedy decoding", "beam decoding"}
    assert set(summary["baselines"]) == {"greedy decoding", "beam decoding"}
    clip = summary["examples"][0][0]["audio"]
    assert "speech-commands" in clip  # a held-out voice of the corpus, not LibriVox

    evaluated = run_cli("speech", "asr", "evaluate", str(model), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["n"] == 250  # the corpus's held-out voices

    heard = run_cli("speech", "transcribe", "--model", str(model), clip, "--json")
    assert heard.returncode == 0, heard.stderr
    transcript = json.loads(heard.stdout)
    words = transcript["words"]
    assert [w["word"] for w in words] == transcript["text"].split()
    assert all(0 <= w["start"] < w["end"] for w in words)
    assert all(a["end"] <= b["start"] for a, b in zip(words, words[1:], strict=False))

    exported = run_cli("export", str(model), "--format", "onnx", "--out",
                       str(tmp_path / "ctc.onnx"), "--json")
    assert exported.returncode == 0, exported.stderr
    sidecar = json.loads((tmp_path / "ctc.onnx.json").read_text())
    assert sidecar["verified_max_abs_diff"] <= 1e-4 and sidecar["tokens"] == TOKENS


@pytest.mark.slow
def test_the_demo_recognises_held_out_voices(tmp_path: Path) -> None:
    """`polymodal demo speech.asr` (about 5.5 minutes on 2 cores): WER <= 0.10 with the
    lexicon and LM on the voices +f4 and +m7, which training never heard."""
    result = run_cli("demo", "speech.asr", "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "speech.asr" / "metrics.json").read_text())
    assert metrics["test"]["n"] == 250 and metrics["test"]["wer"] <= 0.10  # beam + LM
    assert metrics["test"]["wer"] < metrics["baselines"]["greedy decoding"]["wer"]
