"""The medical plugin's hooks: the ``dicom`` and ``ehr`` modalities, the ``ehr-features``
encoder, the ``medical.ehr`` scenario and ``polymodal medical dicom ...``. Nothing heavy is
imported here (pydicom and torch are imported when a command or component needs them)."""

from __future__ import annotations

import click

from polymodal.plugin import (
    RegisterEncoder,
    RegisterModality,
    RegisterScenario,
    hookimpl,
)

POLYMODAL_API = ">=1.0,<2"


@hookimpl
def register_modalities(register: RegisterModality) -> None:
    register("dicom", wire="binary", media_types=["application/dicom"],
             description="a DICOM file (PS3.10: a 128-byte preamble, DICM, then the data set)")
    register("ehr", wire="object", value_type="polymodal_medical.types:EHRFeatures",
             expects='named numbers, e.g. {"age": 61.2, "bili:last": 1.4}',
             samples=[{"age": 61.2, "bili:last": 1.4, "albumin:last": 3.5},
                      {"age": 47.0, "protime:last": 10.6}],
             description="an EHR record: named features at an index time (null or absent "
                         "where unknown)")
    register("ehr-visits", wire="object", value_type="polymodal_medical.types:EHRVisits",
             expects='a list of visits, e.g. [{"days_before": 365, "bili": 1.2}, '
                     '{"days_before": 0, "bili": 2.0}]',
             samples=[[{"days_before": 400.0, "bili": 1.2, "albumin": 3.6},
                       {"days_before": 0.0, "bili": 2.0, "albumin": 3.1}],
                      [{"days_before": 0.0, "bili": 0.8}]],
             description="a patient's visits up to an index time: named numbers per visit "
                         "and days_before (days from the visit to the index, >= 0)")


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    # The core numeric encoder: it fits the feature names on the training records.
    register("ehr-features", "polymodal.plugin:NumericEncoder", modality="ehr",
             options="polymodal.plugin:NUMERIC_OPTIONS",
             description="named EHR features, standardised, missing ones flagged -> MLP")
    register("visit-sequence", "polymodal_medical.visit_encoder:VisitSequenceEncoder",
             modality="ehr-visits", options="polymodal_medical.options:VISIT_SEQUENCE",
             description="a patient's visits (numbers, missing flags, time before the "
                         "index, gap) through a time-aware GRU")
    register("dicom-image", "polymodal_medical.dicom_encoder:DicomImageEncoder",
             modality="dicom", options="polymodal_medical.options:DICOM_IMAGE",
             description="a DICOM image windowed (HU presets or the file's own) into any "
                         "registered image encoder (small-cnn by default)")


@hookimpl
def register_scenarios(register: RegisterScenario) -> None:
    register("medical.ehr", "polymodal_medical.scenarios:ehr_scenario",
             description="death within two years from the labs up to a visit (embedded: "
                         "pbcseq, GPL-3 data)")
    register("medical.fusion", "polymodal_medical.fusion_scenario:fusion_scenario",
             description="DICOM image + EHR record -> outcome, with the modality ablation "
                         "(embedded: a synthetic cohort from a real CT slice)")


@hookimpl
def register_commands(cli: click.Group) -> None:
    from polymodal_medical.cli import medical_group

    cli.add_command(medical_group)
