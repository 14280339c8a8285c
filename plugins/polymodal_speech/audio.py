"""The ``audio`` modality's values: a path or an upload's bytes, decoded with soundfile
(libsndfile: WAV, FLAC, OGG/Vorbis, MP3 ...), mixed down to mono and resampled with
``torchaudio.functional.resample``. Every refusal is one line naming the file."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.plugin import DataError, SpecError

SAMPLE_RATE = 16_000
# The longest clip taken by default (a spec's max_seconds changes it).
MAX_SECONDS = 600.0


def audio_name(value: Any) -> str:
    """How a message names an audio value: its path, or "upload"."""
    return "upload" if isinstance(value, bytes | bytearray) else str(value)


def read_audio(value: Any, sample_rate: int = SAMPLE_RATE,
               max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Mono float32 samples at ``sample_rate`` from a path or bytes; ``DataError`` for a
    missing, unreadable, empty or too long file."""
    import soundfile

    name = audio_name(value)
    if isinstance(value, bytes | bytearray):
        source: Any = io.BytesIO(bytes(value))
    else:
        path = Path(str(value))
        if not path.is_file():
            raise DataError(f"{name}: no such audio file")
        source = str(path)
    _check_wav_length(source, name)
    try:
        with soundfile.SoundFile(source) as sound:
            rate = sound.samplerate
            if sound.frames > max_seconds * rate:
                raise DataError(f"{name}: {sound.frames / rate:.1f} s of audio, over the "
                                f"limit of {max_seconds:g} s (max_seconds)")
            samples = sound.read(dtype="float32", always_2d=True)
    except DataError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise DataError(f"{name}: not a readable audio file ({_reason(exc)})") from None
    if samples.shape[0] == 0:
        raise DataError(f"{name}: the audio holds no samples")
    mono = samples.mean(axis=1)
    if rate != sample_rate:
        import torch
        import torchaudio.functional

        mono = torchaudio.functional.resample(torch.from_numpy(mono), rate,
                                              sample_rate).numpy()
    return np.ascontiguousarray(mono, dtype=np.float32)


STREAMED_WAV = 0x7FFFF000


def _check_wav_length(source: Any, name: str) -> None:
    """Refuse a RIFF/WAVE file whose data chunk is shorter than its header says (a copy cut
    short): libsndfile would read what is there without a word."""
    if isinstance(source, io.BytesIO):
        data = source.getvalue()
        head, size = data[:65536], len(data)
    else:
        with open(source, "rb") as handle:
            head = handle.read(65536)
            size = handle.seek(0, io.SEEK_END)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    position = 12
    while position + 8 <= len(head):
        chunk, length = head[position:position + 4], int.from_bytes(
            head[position + 4:position + 8], "little")
        if chunk == b"data":
            # 0, or 0x7FFFF000 and up: a streamed WAV (espeak-ng --stdout, sox -t wav -)
            # whose writer could not fill the size in
            if 0 < length < STREAMED_WAV and position + 8 + length > size:
                raise DataError(f"{name}: truncated WAV ({size - position - 8} of {length} "
                                "data bytes)")
            return
        position += 8 + length + (length & 1)


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.split(": ", 1)[-1] if "Error opening" in text else text


def audio_seconds(value: Any) -> float:
    """The duration from the header (nothing decoded); ``DataError`` as ``read_audio``."""
    import soundfile

    name = audio_name(value)
    if not isinstance(value, bytes | bytearray) and not Path(str(value)).is_file():
        raise DataError(f"{name}: no such audio file")
    source = io.BytesIO(bytes(value)) if isinstance(value, bytes | bytearray) else str(value)
    try:
        info = soundfile.info(source)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise DataError(f"{name}: not a readable audio file ({_reason(exc)})") from None
    return float(info.frames) / float(info.samplerate)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    import soundfile

    soundfile.write(str(path), samples, sample_rate, subtype="PCM_16")


# Silero VAD (the silero-vad wheel's sequence ONNX model, MIT) scores frames of 512 samples at
# 16 kHz (32 ms), a whole clip per call; a window holds speech when at least
# MIN_SPEECH_CHUNKS frames score SPEECH_THRESHOLD or more.
VAD_CHUNK = 512
SPEECH_THRESHOLD = 0.5
MIN_SPEECH_CHUNKS = 3


@lru_cache(maxsize=1)
def _detector() -> Any:
    import torch

    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad
    except ImportError:
        raise SpecError("speech recognition needs silero-vad (voice activity) and "
                        "onnxruntime: pip install silero-vad onnxruntime (or "
                        "polymodal[speech])") from None
    finally:
        torch.set_num_threads(threads)  # importing silero_vad sets torch to one thread
    return load_silero_vad(sequence=True)


def speech_probabilities(samples: np.ndarray) -> np.ndarray:
    """Silero VAD's speech probability of each 32 ms frame of 16 kHz ``samples`` (the last
    frame zero-padded)."""
    return np.asarray(_detector().audio_forward(samples, SAMPLE_RATE), dtype=np.float32)


def speech_windows(samples: np.ndarray, window_seconds: float,
                   search_seconds: float = 5.0) -> list[tuple[int, int]]:
    """(start, end) sample ranges of at most ``window_seconds`` over the speech in
    ``samples`` (16 kHz): each window is cut at the least speech-like 32 ms chunk of its last
    ``search_seconds`` (between words rather than inside one); windows without speech are
    left out, so silence transcribes as nothing."""
    speech = speech_probabilities(samples)
    window = int(window_seconds * SAMPLE_RATE) // VAD_CHUNK
    search = int(search_seconds * SAMPLE_RATE) // VAD_CHUNK
    spans: list[tuple[int, int]] = []
    start, total = 0, len(speech)
    while total - start > window:
        low = max(start + 1, start + window - search)
        cut = low + int(np.argmin(speech[low:start + window]))
        spans.append((start, cut))
        start = cut
    spans.append((start, total))
    kept = []
    for first, last in spans:
        if int((speech[first:last] >= SPEECH_THRESHOLD).sum()) >= MIN_SPEECH_CHUNKS:
            end = len(samples) if last == total else last * VAD_CHUNK
            kept.append((first * VAD_CHUNK, end))
    return kept
