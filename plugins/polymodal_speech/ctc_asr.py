"""The ``ctc`` backend's fit, predictor and load: trained by the core Trainer on transcribed
audio (``--data``, or the embedded espeak-ng corpus), saved as safetensors plus the
processor's JSON and the lexicon (and the LM, when one is built) beside them."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import ExportGraph, FitRequest, Record
from polymodal_speech.asr_scenario import ASRSpec
from polymodal_speech.audio import SAMPLE_RATE
from polymodal_speech.audio_encoder import LogMelProcessor
from polymodal_speech.ctc_model import (
    BLANK,
    FRAME_SECONDS,
    SPACE,
    TOKENS,
    CTCNet,
    CTCSteps,
    encode_text,
    greedy_text,
)
from polymodal_speech.transcriber import Transcriber

WEIGHTS, PROCESSOR, LEXICON, LM = ("model.safetensors", "processor.json", "lexicon.txt",
                                   "lm.arpa")


def write_lexicon(path: Path, records: list[Record]) -> list[str]:
    """Every word of the training transcripts spelled out for the beam search."""
    words = sorted({w for r in records for w in r["text"].lower().split()
                    if encode_text(w) and SPACE not in w})
    path.write_text("".join(f"{w} {' '.join(TOKENS[i] for i in encode_text(w))} {SPACE}\n"
                            for w in words))
    return words


@contextlib.contextmanager
def kenlm_quiet() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null (KenLM's C++ writes to it directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class CTCTranscriber(Transcriber):
    backend = "ctc"

    def __init__(self, net: CTCNet, processor: LogMelProcessor, device: torch.device, *,
                 lexicon: Path | None = None, lm: Path | None = None,
                 beam_size: int = 50, lm_weight: float = 0.0,
                 word_score: float = 0.0, manifest: dict[str, Any] | None = None,
                 precision: str = "fp32", max_seconds: float = 600.0,
                 window_seconds: float = 30.0) -> None:
        super().__init__(net.to(device), device, precision, manifest,
                         max_seconds=max_seconds, window_seconds=window_seconds)
        self.net, self.processor = net, processor
        self.decoder: Any = None
        if lexicon is not None:
            from torchaudio.models.decoder import ctc_decoder

            with kenlm_quiet():  # KenLM draws a progress bar on stderr while it reads
                self.decoder = ctc_decoder(
                    lexicon=str(lexicon), tokens=TOKENS,
                    lm=str(lm) if lm is not None else None, beam_size=beam_size,
                    lm_weight=lm_weight, word_score=word_score, blank_token=BLANK,
                    sil_token=SPACE)

    def describe_outputs(self) -> dict[str, Any]:
        return {**super().describe_outputs(),
                "words": "[{word, start, end}] in seconds: the transcript's characters "
                         "forced-aligned to the audio"}

    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        """The network: log-mel features [B, mels, T] and their frames [B] ->
        log-probabilities [B, T', characters] and output frames [B]. Features, decoding
        (greedy, or the lexicon and LM files beside the model) stay with the runtime."""
        batch = self.preprocess(self.sample_windows(records))
        features, frames = batch["features"], batch["frames"]
        order = torch.tensor([1, 0]) % len(frames)
        return ExportGraph(module=self.net.float(), inputs=["features", "frames"],
                           outputs=["log_probs", "lengths"],
                           trace=[features[:1, :, :int(frames[0])], frames[:1]],
                           check=[features[order], frames[order]],
                           sidecar={"task": "speech-recognition", "model": "ctc",
                                    "tokens": TOKENS, "blank": BLANK, "word_separator": SPACE,
                                    "frame_seconds": FRAME_SECONDS,
                                    "sample_rate": SAMPLE_RATE,
                                    "features": self.processor.state(),
                                    "lexicon": LEXICON, "lm": LM})

    def preprocess(self, windows: list[Any]) -> dict[str, torch.Tensor]:
        return self.processor.from_samples([w.samples for w in windows])

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(batch["features"], batch["frames"])

    def postprocess(self, outputs: tuple[torch.Tensor, torch.Tensor], batch: Any,
                    records: list[Record]) -> list[Record]:
        log_probs, lengths = outputs[0].float().cpu(), outputs[1].cpu()
        if self.decoder is None:
            best = log_probs.argmax(-1)
            texts = [greedy_text(best[i, :int(n)].tolist()) for i, n in enumerate(lengths)]
        else:
            hypotheses = self.decoder(log_probs, lengths.int())
            texts = [" ".join(h[0].words) if h else "" for h in hypotheses]
        return [{"text": text, "words": word_times(log_probs[i, :int(n)], text)}
                for i, (text, n) in enumerate(zip(texts, lengths, strict=True))]


def word_times(log_probs: torch.Tensor, text: str) -> list[dict[str, Any]]:
    """Each word of ``text`` with its start and end (s, from the window's start): the
    characters forced-aligned to the frames (``torchaudio.functional.forced_align``)."""
    import torchaudio.functional as F

    targets = encode_text(text)
    if not targets:
        return []
    try:
        path, scores = F.forced_align(log_probs[None], torch.tensor([targets]), blank=0)
    except RuntimeError:  # more characters than frames: no alignment exists
        return []
    spans = F.merge_tokens(path[0], scores[0].exp())
    words: list[dict[str, Any]] = []
    current: list[Any] = []
    for span in [*spans, None]:
        if span is None or TOKENS[span.token] == SPACE:
            if current:
                words.append({"word": "".join(TOKENS[s.token] for s in current),
                              "start": round(current[0].start * FRAME_SECONDS, 2),
                              "end": round(current[-1].end * FRAME_SECONDS, 2)})
            current = []
        else:
            current.append(span)
    return words


def train_ctc(request: FitRequest) -> dict[str, Any]:
    from safetensors.torch import save_file

    from polymodal.plugin import fit_steps, split_validation, training_directory, write_run_files
    from polymodal_speech.asr_fit import KIND, _scores, training_start

    spec: ASRSpec = request.spec
    records, device = training_start(request, "ctc")
    options = spec.ctc
    processor = LogMelProcessor(options.n_mels, spec.max_seconds, options.freq_mask,
                                options.time_mask, options.masks)
    processor.fit([r["audio"] for r in records])
    net = CTCNet(options.n_mels, options.width, options.blocks, options.kernel,
                 options.dropout)
    train, val = split_validation(records, spec.validation, spec.train.seed)
    steps = CTCSteps(net, processor, spec.model_dump(mode="json", exclude={"train"}))
    with training_directory(request.out_dir, resume=request.resume,
                            keep_checkpoint=spec.train.keep_checkpoint) as work:
        result = fit_steps(spec.train, steps, train, val, work, device=device,
                           resume=request.resume, progress=request.progress)
        write_lexicon(work / LEXICON, records)
        if spec.lm_order:
            from polymodal_speech.ngram_lm import write_arpa

            write_arpa(work / LM, [r["text"].lower().split() for r in records], spec.lm_order)
        save_file({k: v.contiguous() for k, v in net.state_dict().items()},
                  str(work / WEIGHTS))
        (work / PROCESSOR).write_text(json.dumps(processor.state()))
        metrics: dict[str, Any] = {"train_records": len(train), "validation_records": len(val)}
        comparisons = {}
        if request.test:  # the spec's decoding, and the others as its baselines
            scores = {}
            ctc_transcriber(net, processor, device, spec, work, beam=False).evaluate(
                request.test[:1])  # warm-up (VAD, the normaliser): no decoder's time
            for decoding in ("greedy", "beam", "beam+lm"):
                if decoding == "beam+lm" and not spec.lm_order:
                    continue
                model = ctc_transcriber(net, processor, device, spec, work,
                                        beam=decoding != "greedy", lm=decoding == "beam+lm")
                scores[decoding] = _scores(model, spec, request.test,
                                           baseline=False).get("test")
            metrics["test"] = scores.pop(spec.decoder)
            metrics["baselines"] = {f"{name} decoding": s for name, s in scores.items()}
            comparisons["held-out voices: decodings"] = {
                f"{spec.decoder} (the model)": metrics["test"], **metrics["baselines"]}
        write_run_files(work, kind=KIND, spec=spec.model_dump(mode="json"), metrics=metrics,
                        result=result, train_records=records, comparisons=comparisons)
    return {"best_epoch": result.best_epoch, **metrics}


def ctc_transcriber(net: CTCNet, processor: LogMelProcessor, device: torch.device,
                    spec: ASRSpec, directory: Path, *, beam: bool, lm: bool = False,
                    manifest: dict[str, Any] | None = None, precision: str = "fp32"
                    ) -> CTCTranscriber:
    return CTCTranscriber(net, processor, device,
                          lexicon=directory / LEXICON if beam else None,
                          lm=directory / LM if lm else None,
                          beam_size=spec.beam_size, lm_weight=spec.lm_weight,
                          word_score=spec.word_score, manifest=manifest, precision=precision,
                          max_seconds=spec.max_seconds, window_seconds=spec.window_seconds)


def load_ctc(directory: Path, spec: ASRSpec, device: torch.device,
             manifest: dict[str, Any], precision: str) -> CTCTranscriber:
    from safetensors.torch import load_file

    processor = LogMelProcessor(spec.ctc.n_mels, spec.max_seconds)
    processor.load_state(json.loads((directory / PROCESSOR).read_text()))
    options = spec.ctc
    net = CTCNet(options.n_mels, options.width, options.blocks, options.kernel,
                 options.dropout)
    net.load_state_dict(load_file(str(directory / WEIGHTS)))
    return ctc_transcriber(net, processor, device, spec, directory,
                           beam=spec.decoder != "greedy", lm=spec.decoder == "beam+lm",
                           manifest=manifest,
                           precision=precision)
