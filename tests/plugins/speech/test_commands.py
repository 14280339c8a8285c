"""speech.commands and the espeak-ng corpus: the held-out voices never train, the corpus CLI
writes manifests speech.asr reads, the fused model carries its recogniser, and (slow) the
embedded default reaches its accuracy on the held-out voices, fused above each modality
alone."""

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


def test_the_fused_model_carries_its_recogniser_and_a_bad_one_is_refused(tmp_path: Path
                                                                          ) -> None:
    """The transcript input's recogniser is copied into the model directory: the model
    predicts with the cache that built it gone. A recogniser path that is no speech.asr
    model is a one-line error, and nothing is written."""
    from polymodal_speech.corpus import embedded_commands

    out = tmp_path / "m"
    result = run_cli("speech", "commands", "train", "--quick", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    recogniser = out / "processors" / "transcript" / "recogniser"
    assert (recogniser / "polymodal.yaml").is_file()
    assert "ctc" in (recogniser / "polymodal.yaml").read_text()
    _, test = embedded_commands()
    clip = tmp_path / "say.wav"
    shutil.copy(test[0]["audio"], clip)
    predicted = run_cli("speech", "commands", "predict", str(out), str(clip), "--json",
                        env={"POLYMODAL_CACHE": str(tmp_path / "empty-cache")})
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout.splitlines()[0])
    assert answer["label"] in {r["intent"] for r in test}
    assert sum(answer["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    assert not (tmp_path / "empty-cache").exists()  # nothing rebuilt: the copy was used
    missing = run_cli("speech", "commands", "predict", str(out), str(tmp_path / "gone.wav"))
    assert missing.returncode == 2 and "gone.wav: no such audio file" in missing.stderr

    refused = run_cli("speech", "commands", "train", "--quick", "--out", str(tmp_path / "no"),
                      "--set", f"inputs.transcript.options.asr={tmp_path}")
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0
    assert "is not a speech.asr model directory" in refused.stderr
    assert not (tmp_path / "no").exists() and not (tmp_path / "no.partial").exists()


@pytest.mark.slow
def test_the_embedded_command_model_recognises_held_out_voices(tmp_path: Path) -> None:
    """The default run (a ctc recogniser trained once into the cache, then 25 epochs of the
    fused model and of each input alone: about 7 minutes on 2 cores the first time, 2 once
    the recogniser is cached): accuracy >= 0.95 on the voices +f4 and +m7, which training
    never heard, and the fused model at least as accurate as the sound alone and the
    transcript alone."""
    result = run_cli("speech", "commands", "train", "--out", str(tmp_path / "m"), "--json",
                     timeout=3600)
    assert result.returncode == 0, result.stderr
    result_json = json.loads(result.stdout)
    test = result_json["metrics"]["test"]
    assert test["n"] >= 150 and test["accuracy"] >= 0.95
    ablation = result_json["comparisons"]["modality ablation (held-out)"]
    assert test["accuracy"] >= ablation["only audio"]["accuracy"]
    assert test["accuracy"] >= ablation["only transcript"]["accuracy"]
