"""``asr-transcript``: an ``audio`` field read as words. The processor transcribes each
value with a ``speech.asr`` model (any backend: the embedded ctc recogniser by default, a
Whisper or a user's own by ``asr``) and hands the transcripts to a registered text
encoder's processor (``word-transformer`` by default); the network is that text encoder.
Recognition happens in the collate step, never in forward(), and each file is recognised
once per process (the training files all at once, in ``fit``). A trained model keeps a copy
of its recogniser under ``processors/<input>/recogniser``, so the model directory is whole.
Recognition runs on the CPU: the collate step may be a worker process."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from polymodal.plugin import (
    BuildContext,
    Encoder,
    EncoderOutput,
    InputSpec,
    Processor,
    SpecError,
    build_encoder,
    options_of,
)
from polymodal_speech.options import ASR_TRANSCRIPT

RECOGNISER = "recogniser"  # the recogniser's copy in the processor's directory
BATCH = 32  # clips recognised in one call
# Transcripts by (recogniser, audio): every model of one process (an ablation trains three)
# reads a file's transcript once.
_TRANSCRIPTS: dict[tuple[str, str], str] = {}


def _audio_key(value: Any) -> str:
    """A file by path, size and modification time; an upload by its bytes' digest."""
    if isinstance(value, bytes | bytearray):
        return "sha1:" + hashlib.sha1(bytes(value)).hexdigest()
    stat = os.stat(value)
    return f"{os.fspath(value)}:{stat.st_size}:{stat.st_mtime_ns}"


class Transcripts:
    """A recogniser (a speech.asr model directory, loaded on first use): audio values ->
    their transcripts, each file recognised once per process, in batches."""

    def __init__(self, recogniser: Path) -> None:
        self.recogniser = recogniser
        self.name = os.fspath(recogniser.resolve())
        self._model: Any = None

    def __call__(self, values: list[Any]) -> list[str | None]:
        keys = [None if v is None else _audio_key(v) for v in values]
        todo = {key: value for key, value in zip(keys, values, strict=True)
                if key is not None and (self.name, key) not in _TRANSCRIPTS}
        if todo:
            if self._model is None:
                from polymodal_speech.asr_fit import load_asr

                self._model = load_asr(self.recogniser, device="cpu")
            pending = list(todo.items())
            for start in range(0, len(pending), BATCH):
                chunk = pending[start:start + BATCH]
                heard = self._model.predict([{"audio": v} for _, v in chunk],
                                            batch_size=BATCH)
                for (key, _), result in zip(chunk, heard, strict=True):
                    _TRANSCRIPTS[(self.name, key)] = result["text"]
        return [None if key is None else _TRANSCRIPTS[(self.name, key)] for key in keys]


class TranscriptProcessor(Processor):
    """Audio values -> the text processor's tensors of their transcripts. A missing value
    stays missing (``None``)."""

    def __init__(self, inner: Processor, transcripts: Transcripts) -> None:
        self.inner, self.transcripts = inner, transcripts

    def fit(self, values: list[Any]) -> None:
        self.inner.fit(self.transcripts(values))

    def __call__(self, values: list[Any]) -> dict[str, torch.Tensor]:
        return self.inner(self.transcripts(values))

    def state(self) -> dict[str, Any]:
        return {"inner": self.inner.state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.inner.load_state(state["inner"])

    def save_files(self, directory: Path) -> None:
        self.inner.save_files(directory)
        target = directory / RECOGNISER
        if not target.exists():
            shutil.copytree(self.transcripts.recogniser, target)


def recogniser_of(spec: InputSpec, options: dict[str, Any]) -> Path:
    """The ``asr`` option as a model directory (the embedded one built on first use)."""
    if options["asr"] == "embedded":
        from polymodal_speech.embedded_recogniser import embedded_recogniser

        return embedded_recogniser(options["embedded_utterances"], options["embedded_epochs"])
    path = Path(options["asr"]).expanduser()
    if not (path / "polymodal.yaml").is_file():
        raise SpecError(f"spec: inputs[{spec.name}].options.asr: {path} is not a speech.asr "
                        "model directory (train one: polymodal speech asr train --out DIR)")
    return path


class AsrTranscriptEncoder(Encoder):
    """The text encoder over a recogniser's transcripts of the audio."""

    def __init__(self, spec: InputSpec, context: BuildContext) -> None:
        super().__init__()
        options = options_of(spec, ASR_TRANSCRIPT)
        if not isinstance(options["text_options"], dict):
            raise SpecError(f"spec: inputs[{spec.name}].options.text_options: a mapping of "
                            f"the {options['text_encoder']!r} encoder's options")
        saved = None if context.processor_dir is None else context.processor_dir / RECOGNISER
        transcripts = Transcripts(saved if saved is not None and saved.is_dir()
                                  else recogniser_of(spec, options))
        text = InputSpec(name=spec.name, modality="text", encoder=options["text_encoder"],
                         options=options["text_options"])
        # The text encoder is built on the training values' transcripts (a vocabulary sizes
        # its embedding), or restored from the saved state.
        state = context.processor_state
        self.text = build_encoder(text, BuildContext(
            values=None if state is not None or context.values is None
            else transcripts(context.values),
            processor_state=None if state is None else state.get("inner", {}),
            processor_dir=context.processor_dir, device=context.device, hub=context.hub))
        self.processor = TranscriptProcessor(self.text.processor, transcripts)
        self.output_dim = self.text.output_dim

    @property
    def export_length(self) -> int | None:
        length: int | None = self.text.export_length
        return length

    def forward(self, batch_field: dict[str, torch.Tensor]) -> EncoderOutput:
        output: EncoderOutput = self.text(batch_field)
        return output
