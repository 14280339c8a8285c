"""A labelled speech corpus synthesized with espeak-ng: smart-home commands (ten intents,
rooms and doors as slots, several phrasings each) and digit strings ("zero".."nine", "oh"),
spoken by English voices with variants, speeds and pitches, some with added noise, written
as 16 kHz WAVs and a manifest ``{audio, text, intent, kind, voice, ...}``. The espeak-ng
variants ``+f4`` and ``+m7`` are never in the training part: they are the held-out voices of
the test part."""

from __future__ import annotations

import io
import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from polymodal.plugin import Record

ROOMS = ["kitchen", "bedroom", "living room", "bathroom", "hallway", "office", "garage"]
DOORS = ["front", "back", "garage", "side"]
INTENTS: dict[str, list[str]] = {
    "lights_on": ["turn on the lights in the {room}", "switch on the {room} lights",
                  "lights on in the {room}"],
    "lights_off": ["turn off the lights in the {room}", "switch off the {room} lights",
                   "lights off in the {room}"],
    "heat_up": ["make the {room} warmer", "turn up the heating in the {room}",
                "raise the temperature"],
    "heat_down": ["make the {room} cooler", "turn down the heating in the {room}",
                  "lower the temperature"],
    "music_play": ["play some music in the {room}", "start the music", "put on some music"],
    "music_stop": ["stop the music", "pause the music in the {room}", "turn the music off"],
    "blinds_open": ["open the blinds in the {room}", "raise the {room} blinds"],
    "blinds_close": ["close the blinds in the {room}", "lower the {room} blinds"],
    "door_lock": ["lock the {door} door", "lock up the {door} door"],
    "door_unlock": ["unlock the {door} door", "open the lock on the {door} door"],
}
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh"]
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
          "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
TRAIN_VARIANTS = ["", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+f1", "+f2", "+f3", "+f5"]
HELD_OUT_VARIANTS = ["+f4", "+m7"]


def command(rng: random.Random) -> tuple[str, str]:
    intent = rng.choice(sorted(INTENTS))
    text = rng.choice(INTENTS[intent]).format(room=rng.choice(ROOMS), door=rng.choice(DOORS))
    return intent, text


def digit_string(rng: random.Random) -> str:
    return " ".join(rng.choice(DIGITS) for _ in range(rng.randint(3, 6)))


def _utterance(rng: random.Random, held_out: bool, digits_share: float) -> Record:
    if rng.random() < digits_share:
        record: Record = {"text": digit_string(rng), "intent": None, "kind": "digits"}
    else:
        intent, text = command(rng)
        record = {"text": text, "intent": intent, "kind": "command"}
    variant = rng.choice(HELD_OUT_VARIANTS if held_out else TRAIN_VARIANTS)
    record.update(voice=rng.choice(VOICES) + variant, rate=rng.randint(120, 200),
                  pitch=rng.randint(25, 75),
                  snr_db=None if rng.random() < 0.5 else rng.choice([10, 20, 30]))
    return record


def _speak(record: Record, path: Path, seed: int) -> None:
    import soundfile
    import torch
    import torchaudio.functional

    from polymodal_speech.audio import SAMPLE_RATE, write_wav
    from polymodal_speech.tts import espeak_wav

    wav = espeak_wav(record["text"], record["voice"], record["rate"], record["pitch"])
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    audio = torchaudio.functional.resample(torch.from_numpy(samples), rate,
                                           SAMPLE_RATE).numpy()
    if record["snr_db"] is not None:  # white noise at that signal-to-noise ratio
        noise = np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
        power = float(np.mean(audio ** 2)) / (10 ** (record["snr_db"] / 10))
        audio = audio + noise * np.sqrt(power)
    write_wav(path, np.clip(audio, -1, 1), SAMPLE_RATE)


def synthesize_corpus(out: Path, train: int, test: int, seed: int = 0,
                      digits_share: float = 0.25) -> tuple[list[Record], list[Record]]:
    """Write ``train`` utterances (training voices) and ``test`` (held-out voices) as WAVs
    under ``out`` with ``train.jsonl`` and ``test.jsonl`` (audio paths relative to ``out``);
    returns their records (absolute paths)."""
    rng = random.Random(seed)
    parts = {"train": [_utterance(rng, False, digits_share) for _ in range(train)],
             "test": [_utterance(rng, True, digits_share) for _ in range(test)]}
    (out / "audio").mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Record, Path, int]] = []
    for part, records in parts.items():
        for index, record in enumerate(records):
            record["audio"] = f"audio/{part}-{index:05d}.wav"
            jobs.append((record, out / record["audio"], seed * 1_000_003 + len(jobs)))
    with ThreadPoolExecutor(max_workers=4) as pool:  # espeak-ng runs as its own process
        list(pool.map(lambda job: _speak(*job), jobs))
    for part, records in parts.items():
        (out / f"{part}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    absolute = {part: [{**r, "audio": str((out / r["audio"]).resolve())} for r in records]
                for part, records in parts.items()}
    return absolute["train"], absolute["test"]


def embedded_commands(kind: str | None = "command") -> tuple[list[Record], list[Record]]:
    """The embedded corpus (1,000 training and 250 held-out-voice utterances), built once in
    the cache; only those of ``kind`` ("command", "digits"; None: all)."""
    from polymodal.plugin import build_once, cache_dir

    directory = cache_dir("speech-commands-v1")
    done = directory / "done.json"

    def build() -> None:
        synthesize_corpus(directory, 1000, 250, seed=0)
        done.write_text(json.dumps({"train": 1000, "test": 250}))

    build_once(directory, done, build)
    parts = []
    for part in ("train", "test"):
        rows = [json.loads(line) for line in (directory / f"{part}.jsonl").read_text()
                .splitlines()]
        parts.append([{**r, "audio": str(directory / r["audio"])} for r in rows
                      if kind is None or r["kind"] == kind])
    return parts[0], parts[1]


