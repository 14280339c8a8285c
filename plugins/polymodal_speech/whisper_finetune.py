"""Whisper fine-tuned on a manifest of ``{audio, text}`` with the core Trainer: log-mel
features and label tokens made in the collate step (the DataLoader's workers), the loss of
transformers' model (teacher forcing), the best epoch by validation loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import DataError, FitRequest, Record
from polymodal_speech.asr_scenario import ASRSpec
from polymodal_speech.audio import SAMPLE_RATE, read_audio

IGNORED = -100


class WhisperCollator:
    """Records -> ``{"input_features", "labels"}``: the transcript after the decoder's
    prompt (language and task for a multilingual model, then no-timestamps), ending in
    end-of-text, padded with -100 (ignored by the loss)."""

    def __init__(self, processor: Any, prompt: list[int], max_seconds: float) -> None:
        self.processor, self.prompt, self.max_seconds = processor, prompt, max_seconds

    def __call__(self, records: list[Record]) -> dict[str, torch.Tensor]:
        tokenizer = self.processor.tokenizer
        audio = [read_audio(r["audio"], max_seconds=self.max_seconds) for r in records]
        features = self.processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE,
                                                    return_tensors="pt").input_features
        rows = [self.prompt + tokenizer.encode(" " + r["text"].strip(),
                                               add_special_tokens=False)
                + [tokenizer.eos_token_id] for r in records]
        width = max(len(row) for row in rows)
        labels = torch.full((len(rows), width), IGNORED, dtype=torch.long)
        for index, row in enumerate(rows):
            labels[index, :len(row)] = torch.tensor(row)
        return {"input_features": features, "labels": labels}


def decoder_prompt(model: Any, language: str | None) -> list[int]:
    """The tokens after start-of-transcript that ``generate`` forces: the language and task
    of a multilingual Whisper, then no-timestamps."""
    config = model.generation_config
    prompt = []
    if config.is_multilingual:
        language = language or "en"
        token = f"<|{language}|>"
        if token not in config.lang_to_id:
            raise DataError(f"language: {language} is not one this Whisper knows")
        prompt += [config.lang_to_id[token], config.task_to_id["transcribe"]]
    return prompt + [config.no_timestamps_token_id]


def mean_loss(model: Any, collate: WhisperCollator, records: list[Record],
              device: torch.device, batch_size: int = 8) -> float:
    """The mean token loss of ``records`` (teacher forcing, eval mode)."""
    was_training = model.training
    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for start in range(0, len(records), batch_size):
            batch = collate(records[start:start + batch_size])
            tokens = float((batch["labels"] != IGNORED).sum())
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
            total, count = total + float(loss) * tokens, count + tokens
    model.train(was_training)
    return round(total / max(count, 1.0), 4)


def finetune_whisper(request: FitRequest, source: Path) -> dict[str, Any]:
    from polymodal.plugin import (
        ModuleSteps,
        fit_steps,
        split_validation,
        training_directory,
        write_run_files,
    )
    from polymodal_speech.asr_fit import KIND, _decoding, _scores, training_start
    from polymodal_speech.whisper_asr import CHECKPOINT, WhisperTranscriber, load_checkpoint

    spec: ASRSpec = request.spec
    records, device = training_start(request, spec.backend)
    model, processor = load_checkpoint(source)
    model.to(device)
    model.config.use_cache = False
    train, val = split_validation(records, spec.validation, spec.train.seed)
    collate = WhisperCollator(processor, decoder_prompt(model, spec.language),
                              spec.max_seconds)
    before = mean_loss(model, collate, train, device)
    steps = ModuleSteps(model, collate=collate,
                        loss=lambda module, batch: module(**batch).loss,
                        identity=spec.model_dump(mode="json", exclude={"train"}),
                        batch_size=lambda batch: len(batch["labels"]))
    with training_directory(request.out_dir, resume=request.resume,
                            keep_checkpoint=spec.train.keep_checkpoint) as work:
        result = fit_steps(spec.train, steps, train, val, work, device=device,
                           resume=request.resume, progress=request.progress)
        model.config.use_cache = True
        transcriber = WhisperTranscriber(model, processor, device, **_decoding(spec))
        metrics = _scores(transcriber, spec, request.test, baseline=spec.baseline)
        metrics.update({"train_records": len(train), "validation_records": len(val),
                        "train_loss_before": before,
                        "train_loss_after": mean_loss(model, collate, train, device)})
        model.save_pretrained(str(work / CHECKPOINT), safe_serialization=True)
        processor.save_pretrained(str(work / CHECKPOINT))
        write_run_files(work, kind=KIND, spec=spec.model_dump(mode="json"), metrics=metrics,
                        result=result, train_records=records)
    return {"best_epoch": result.best_epoch, **metrics}
