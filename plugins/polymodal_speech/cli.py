"""``polymodal speech transcribe FILE...``: speech.asr's predict without a model directory to
name (the default one is written once into the cache); the core adds ``speech asr
train|evaluate|predict``. No torch is imported to build the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from polymodal.plugin import json_option

BACKENDS = ("whisper", "pocketsphinx")


@click.group("speech", help="Speech scenarios: recognition (Whisper, pocketsphinx), spoken "
                            "commands, synthesis (espeak-ng, Piper), a synthetic corpus.")
def speech_group() -> None:
    pass


def default_model(backend: str) -> Path:
    """The model directory of ``backend`` at its defaults, written once into the cache."""
    from polymodal.plugin import build_once, cache_dir
    from polymodal_speech.asr_fit import write_asr_model
    from polymodal_speech.asr_scenario import ASRSpec

    root = cache_dir(f"speech-asr-{backend}-v1")
    directory = root / "model"

    def build() -> None:
        from polymodal.plugin import FitRequest

        spec = ASRSpec.model_validate({"backend": backend})
        write_asr_model(FitRequest(spec=spec, train=[], test=None, out_dir=directory,
                                   progress=False))

    build_once(root, directory / "polymodal.yaml", build)
    return directory


@speech_group.command("transcribe")
@click.argument("files", nargs=-1, required=True)
@click.option("--model", "model_dir", default=None, type=click.Path(),
              help="A speech.asr model directory (default: Whisper tiny.en, or the "
                   "--backend's default model).")
@click.option("--backend", type=click.Choice(BACKENDS), default="whisper", show_default=True,
              help="The recogniser when no --model is given.")
@click.option("--batch-size", default=8, show_default=True, help="Windows per forward pass.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: the best).")
@click.option("--precision", type=click.Choice(["fp32", "auto", "bf16", "fp16"]),
              default="fp32", show_default=True)
@json_option
def transcribe_command(files: tuple[str, ...], model_dir: str | None, backend: str,
                       batch_size: int, device: str | None, precision: str,
                       as_json: bool) -> None:
    """Transcribe each audio FILE (long ones in windows cut at pauses)."""
    from polymodal.plugin import emit_jsonl
    from polymodal_speech.asr_fit import load_asr

    model = load_asr(model_dir or default_model(backend), device=device,
                     precision=precision)
    model.progress = not as_json and sys.stderr.isatty()  # windows of long audio
    results = model.predict([{"audio": f} for f in files], batch_size=batch_size)
    if as_json:
        emit_jsonl([{"audio": f, **r} for f, r in zip(files, results, strict=True)])
        return
    for file, result in zip(files, results, strict=True):
        if len(files) > 1:
            click.echo(f"{file}:")
        segments = result["segments"]
        if len(segments) > 1:
            for segment in segments:
                click.echo(f"[{segment['start']:7.2f} - {segment['end']:7.2f}] "
                           f"{segment['text']}")
        else:
            click.echo(result["text"] or "(no speech)")


@speech_group.command("synth-corpus")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="A new (or empty) directory: audio/*.wav, train.jsonl, test.jsonl.")
@click.option("--train", "train_count", default=1000, show_default=True,
              help="Utterances spoken by the training voices.")
@click.option("--test", "test_count", default=250, show_default=True,
              help="Utterances spoken by the held-out voices (espeak-ng +f4, +m7).")
@click.option("--digits-share", default=0.25, show_default=True,
              help="The share of digit strings among them (the rest: commands).")
@click.option("--seed", default=0, show_default=True)
@json_option
def synth_corpus_command(out_dir: str, train_count: int, test_count: int,
                         digits_share: float, seed: int, as_json: bool) -> None:
    """Synthesize a labelled corpus of smart-home commands and digit strings with
    espeak-ng: 16 kHz WAVs and manifests {audio, text, intent, kind, voice, ...}."""
    from polymodal.plugin import building_directory, emit_json
    from polymodal_speech.corpus import synthesize_corpus

    with building_directory(out_dir) as work:
        train, test = synthesize_corpus(work, train_count, test_count, seed=seed,
                                        digits_share=digits_share)
    summary = {"out": out_dir, "train": len(train), "test": len(test),
               "intents": sorted({r["intent"] for r in train + test if r["intent"]})}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"wrote {len(train)} training and {len(test)} held-out-voice utterances "
                   f"to {out_dir} (train.jsonl, test.jsonl)")
