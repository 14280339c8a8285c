"""Labelled speech on disk: a manifest (JSONL or CSV rows ``{audio, text}``, audio paths
relative to the manifest's folder) or a LibriSpeech-style folder (``*.trans.txt`` files of
``ID TEXT`` lines beside ``ID.flac`` / ``ID.wav``). A row whose audio file is missing is
refused with its line, before anything is trained."""

from __future__ import annotations

from pathlib import Path

from polymodal.plugin import DataError, Record

AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".mp3")


def transcribed(records: list[Record], backend: str) -> list[Record]:
    """Training records of a recogniser: each needs its reference transcript."""
    if not records:
        raise DataError(f"the {backend} backend trains on transcribed audio: give --data (a "
                        "manifest of {audio, text})")
    for index, record in enumerate(records):
        if not isinstance(record.get("text"), str):
            raise DataError(f"training record {index + 1}: needs a reference transcript "
                            "(\"text\")")
    return records


def read_speech_data(path: str) -> list[Record]:
    source = Path(path)
    if source.is_dir():
        return read_librispeech(source)
    from polymodal.plugin import read_records

    records = read_records(path)
    for line, record in enumerate(records, start=1):
        audio = record.get("audio")
        if not isinstance(audio, str) or not audio:
            raise DataError(f"{path}: row {line} has no \"audio\" path")
        file = Path(audio) if Path(audio).is_absolute() else source.parent / audio
        if not file.is_file():
            raise DataError(f"{path}: row {line}: audio file {audio} not found")
        record["audio"] = str(file.resolve())
    return records


def read_librispeech(folder: Path) -> list[Record]:
    """Every ``*.trans.txt`` under ``folder``: one record per line, its audio beside it."""
    transcripts = sorted(folder.rglob("*.trans.txt"))
    if not transcripts:
        raise DataError(f"{folder}: no *.trans.txt transcripts (a LibriSpeech-style folder)")
    records = []
    for transcript in transcripts:
        for line_number, line in enumerate(transcript.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            utterance, _, text = line.strip().partition(" ")
            audio = next((transcript.parent / f"{utterance}{suffix}"
                          for suffix in AUDIO_SUFFIXES
                          if (transcript.parent / f"{utterance}{suffix}").is_file()), None)
            if audio is None:
                raise DataError(f"{transcript}: line {line_number}: no audio file for "
                                f"{utterance}")
            records.append({"audio": str(audio.resolve()), "text": text.strip()})
    return records
