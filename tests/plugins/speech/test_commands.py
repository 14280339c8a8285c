"""speech.commands and the espeak-ng corpus: the held-out voices never train, the corpus CLI
writes manifests speech.asr reads, and (slow) the embedded default reaches its accuracy on
the held-out voices."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from polymodal.testing import run_cli

pytest.importorskip("soundfile")
if shutil.which("espeak-ng") is None:
    pytest.skip("espeak-ng is not installed", allow_module_level=True)


def test_synth_corpus_writes_manifests_of_training_and_held_out_voices(tmp_path: Path
                                                                       ) -> None:
    import soundfile

    from polymodal_speech.corpus import HELD_OUT_VARIANTS, INTENTS
    from polymodal_speech.manifests import read_speech_data

    out = tmp_path / "corpus"
    result = run_cli("speech", "synth-corpus", "--out", str(out), "--train", "24", "--test",
                     "8", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["train"] == 24
    train = read_speech_data(str(out / "train.jsonl"))
    test = read_speech_data(str(out / "test.jsonl"))
    assert len(train) == 24 and len(test) == 8
    assert not any(r["voice"].endswith(tuple(HELD_OUT_VARIANTS)) for r in train)
    assert all(r["voice"].endswith(tuple(HELD_OUT_VARIANTS)) for r in test)
    for record in train + test:
        assert record["intent"] in INTENTS if record["kind"] == "command" else (
            record["intent"] is None and set(record["text"].split()) <= {
                "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                "nine", "oh"})
        info = soundfile.info(record["audio"])
        assert info.samplerate == 16000 and 0.5 < info.duration < 8
    again = run_cli("speech", "synth-corpus", "--out", str(out), "--train", "2")
    assert again.returncode == 2  # an existing directory is never overwritten


@pytest.mark.slow
def test_the_embedded_command_model_recognises_held_out_voices(tmp_path: Path) -> None:
    """The default run (25 epochs, about 4 minutes on 2 cores): accuracy >= 0.95 on the
    voices +f4 and +m7, which training never heard."""
    result = run_cli("speech", "commands", "train", "--out", str(tmp_path / "m"), "--json")
    assert result.returncode == 0, result.stderr
    test = json.loads(result.stdout)["metrics"]["test"]
    assert test["n"] >= 150 and test["accuracy"] >= 0.95
