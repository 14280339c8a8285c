"""``speech.synthesize``'s predictor, fit and load: each record's ``text`` spoken by the
spec's engine into a WAV (a file under ``predict --out DIR``, else base64), and the round
trip that scores a voice: the synthesized speech transcribed by Whisper, WER and CER
against the text, and the real-time factor of synthesis."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from polymodal.plugin import BasePredictor, DataError, FileOutputs, FitRequest, Record
from polymodal_speech.synthesis_scenario import SynthesisSpec
from polymodal_speech.tts import check_text, espeak_wav, piper_wav, wav_seconds

KIND = "speech-synthesis"


class Synthesizer(FileOutputs, BasePredictor):
    """Records ``{"text"}`` -> ``{"audio": path}`` (or ``audio_wav_base64``) and
    ``seconds`` of speech."""

    scenario = "speech.synthesize"

    def __init__(self, spec: SynthesisSpec, device: Any,
                 manifest: dict[str, Any] | None = None) -> None:
        FileOutputs.__init__(self)
        BasePredictor.__init__(self, None, device, "fp32", manifest)
        self.spec = spec

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "text", "modality": "text", "encoder": self.spec.engine}]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "speech-synthesis", "target": "audio",
                "audio": "a WAV file (16-bit mono; 22,050 Hz)", "seconds": "its duration"}

    def validate(self, records: list[Record]) -> None:
        super().validate(records)
        for index, record in enumerate(records):
            check_text(record.get("text"), index, self.spec.max_chars)

    def speak(self, text: str) -> bytes:
        spec = self.spec
        if spec.engine == "piper":
            return piper_wav(text, spec.voice)
        return espeak_wav(text, spec.voice, spec.rate, spec.pitch, spec.word_gap)

    def preprocess(self, records: list[Record]) -> list[str]:
        return [record["text"].strip() for record in records]

    def forward(self, texts: list[str]) -> list[bytes]:
        return [self.speak(text) for text in texts]

    def postprocess(self, outputs: list[bytes], batch: Any, records: list[Record]
                    ) -> list[Record]:
        return [{**self.file_result(wav, "audio", "wav"),
                 "seconds": round(wav_seconds(wav), 3)} for wav in outputs]

    def score(self, records: list[Record], predictions: list[Record]) -> dict[str, Any]:
        """The round trip of the predictions: their speech transcribed by Whisper."""
        speech = [base64.b64decode(p["audio_wav_base64"]) if "audio_wav_base64" in p
                  else Path(p["audio"]).read_bytes() for p in predictions]
        return listen(self.spec, self.device, [r["text"].strip() for r in records], speech)


def listen(spec: SynthesisSpec, device: Any, texts: list[str], speech: list[bytes]
           ) -> dict[str, Any]:
    """The spec's Whisper judge transcribes the synthesized ``speech``: WER and CER against
    the ``texts`` it was made from."""
    import tempfile

    from polymodal_speech.asr_fit import checkpoint_source
    from polymodal_speech.asr_scenario import ASRSpec
    from polymodal_speech.transcripts import transcript_scores
    from polymodal_speech.whisper_asr import WhisperTranscriber, load_checkpoint

    with tempfile.TemporaryDirectory() as scratch:
        source = checkpoint_source(ASRSpec(model=spec.judge), Path(scratch))
        whisper, processor = load_checkpoint(source)
    judge = WhisperTranscriber(whisper, processor, device, language="en",
                               beams=spec.judge_beams)
    heard = judge.predict([{"audio": wav} for wav in speech], batch_size=8)
    return {**transcript_scores(texts, [h["text"] for h in heard]),
            "judge": f"whisper {spec.judge}", "judge_beams": spec.judge_beams,
            "speech_seconds": round(sum(wav_seconds(wav) for wav in speech), 2)}


def round_trip(model: Synthesizer, records: list[Record]) -> dict[str, Any]:
    """Speak every text (timed: seconds of synthesis per second of speech), then listen."""
    texts = [check_text(r.get("text"), i, model.spec.max_chars) for i, r in enumerate(records)]
    start = time.perf_counter()
    speech = [model.speak(text) for text in texts]
    spent = time.perf_counter() - start
    scores = listen(model.spec, model.device, texts, speech)
    return {**scores, "real_time_factor": round(spent / max(scores["speech_seconds"], 1e-9),
                                                4)}


def write_synthesizer(request: FitRequest) -> dict[str, Any]:
    from polymodal.plugin import building_directory, fit_events, pick_device, write_manifest

    spec: SynthesisSpec = request.spec
    if request.train:
        raise DataError("speech.synthesize trains nothing: leave --data out (--test FILE of "
                        "{\"text\"} rows scores the voice on your sentences)")
    model = Synthesizer(spec, pick_device(request.device))
    model.speak("check")  # a missing engine or voice fails before anything is written
    metrics: dict[str, Any] = {"engine": spec.engine, "voice": spec.voice}
    with fit_events(request.out_dir):
        if request.test:
            metrics["test"] = round_trip(model, request.test)
        with building_directory(request.out_dir) as work:
            write_manifest(work, KIND, spec.model_dump(mode="json"), metrics,
                           train_records=[])
    return metrics


def load_synthesizer(directory: str | Path, device: str | None = None,
                     precision: str = "fp32") -> Synthesizer:
    from polymodal.plugin import parse_model_spec, pick_device, read_manifest

    manifest = read_manifest(directory)
    spec = parse_model_spec(SynthesisSpec, manifest["spec"])
    return Synthesizer(spec, pick_device(device), manifest)
