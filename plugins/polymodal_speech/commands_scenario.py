"""``speech.commands``: a spoken smart-home command -> its intent, a core spec trained by the
core pipeline on the embedded espeak-ng corpus and scored on its held-out voices (the
variants +f4 and +m7 that training never hears). Two inputs read the one audio field: its
sound (the ``log-mel-cnn`` encoder) and its words (``asr-transcript``: a recogniser's
transcript through a word encoder), each with its own head (late fusion, trained with
modality dropout); the report's modality ablation trains each alone."""

from __future__ import annotations

from typing import Any

from polymodal.plugin import DemoData, Scenario

SPEC: dict[str, Any] = {
    "name": "commands",
    "data": {"validation": 0.1},
    "inputs": [{"name": "audio", "modality": "audio", "encoder": "log-mel-cnn"},
               {"name": "transcript", "modality": "audio", "encoder": "asr-transcript",
                "columns": ["audio"]}],
    # A head per input, logits averaged; modality dropout makes each head good alone
    # (docs/benchmarks.md has concat and gated beside it).
    "fusion": {"name": "late", "options": {"dropout": 0.1}},
    "task": {"name": "classification", "target": "intent"},
    "train": {"epochs": 25, "batch_size": 32, "lr": 2.0e-3, "warmup": 0.05,
              "schedule": "cosine", "seed": 0, "modality_dropout": 0.5},
    "ablation": True,
}
# --quick: a recogniser of 120 utterances and one epoch (it checks the lifecycle, not
# what is heard), no ablation.
QUICK = ["train.epochs=2", "ablation=false",
         "inputs.transcript.options.embedded_utterances=120",
         "inputs.transcript.options.embedded_epochs=1"]


def commands_demo() -> DemoData:
    from polymodal_speech.corpus import embedded_commands

    train, test = embedded_commands("command")
    keep = ("audio", "intent", "text", "voice")
    return DemoData(train=[{k: r[k] for k in keep} for r in train],
                    test=[{k: r[k] for k in keep} for r in test],
                    examples=[{"audio": r["audio"]} for r in test[:3]],
                    source="espeak-ng smart-home commands (held-out voices +f4, +m7)")


def commands_scenario() -> Scenario:
    return Scenario(name="speech.commands", description="spoken command -> intent: its sound "
                    "and its transcript, fused (embedded: espeak-ng commands, held-out "
                    "voices)", default_spec=SPEC,
                    load_demo=commands_demo, quick_overrides=QUICK,
                    quick_records=120, primary_input="audio")
