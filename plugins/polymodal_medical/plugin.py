"""The medical plugin's hooks: the ``dicom`` modality and ``polymodal medical dicom ...``.
Nothing heavy is imported here (pydicom is imported by the commands that read files)."""

from __future__ import annotations

import click

from polymodal.plugin import RegisterModality, hookimpl

POLYMODAL_API = ">=1.0,<2"


@hookimpl
def register_modalities(register: RegisterModality) -> None:
    register("dicom", wire="binary", media_types=["application/dicom"],
             description="a DICOM file (PS3.10: a 128-byte preamble, DICM, then the data set)")


@hookimpl
def register_commands(cli: click.Group) -> None:
    from polymodal_medical.cli import medical_group

    cli.add_command(medical_group)
