"""Reading DICOM with pydicom: files and directories, series grouped by SeriesInstanceUID
and ordered along the slice normal, stored values -> modality values (Hounsfield units for
CT) through RescaleSlope/Intercept, windows (presets and the file's own VOI window),
MONOCHROME1 inverted, multi-frame images as slices.

Nothing here returns, logs or raises a patient attribute: summaries carry the acquisition
facts (modality, size, spacing, value range) and errors name the file, never its contents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.plugin import DataError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# Window presets (centre, width) in Hounsfield units, as radiology viewers name them.
WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "soft-tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}

# The attributes a summary may show without --phi: acquisition facts, no identity.
PATIENT_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                      "PatientAge", "StudyDate", "StudyDescription", "InstitutionName",
                      "ReferringPhysicianName", "AccessionNumber")


def read_dataset(source: str | Path | bytes, *, pixels: bool = True,
                 require_pixels: bool | None = None) -> Dataset:
    """One DICOM file, or the bytes of an upload (without its pixel data unless
    ``pixels``); one that is not DICOM, is truncated or (``require_pixels``, by default when
    reading pixels) has no image is refused naming the file (or "the upload") only."""
    import io

    import pydicom
    from pydicom.errors import InvalidDicomError

    if isinstance(source, bytes | bytearray):
        name, size, stream = "the upload", len(source), io.BytesIO(bytes(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        name, size, stream = str(path), path.stat().st_size, None
    try:
        dataset = pydicom.dcmread(stream if stream is not None else name,
                                  stop_before_pixels=not pixels)
    except InvalidDicomError:
        raise DataError(f"{name}: not a DICOM file (no DICM preamble)") from None
    except (EOFError, OSError, ValueError) as exc:
        raise DataError(f"{name}: unreadable DICOM ({type(exc).__name__}: the file is "
                        "truncated or corrupt)") from None
    if (pixels if require_pixels is None else require_pixels) and "PixelData" not in dataset:
        raise DataError(f"{name}: the DICOM file has no pixel data")
    if _truncated(dataset, size if pixels else None):
        raise DataError(f"{name}: unreadable DICOM (the file is truncated: it ends inside "
                        "an element)")
    return dataset


def _truncated(dataset: Dataset, size: int | None) -> bool:
    """pydicom reads a cut file without complaint: it keeps a short last value, or stops
    at a partial element header. Either, or native pixel data shorter than rows x columns
    x frames x bytes, is a truncated file. ``size``: the file's, when all of it was read
    (the last element must then end where the file does)."""
    from pydicom.dataelem import RawDataElement

    if not len(dataset):
        return True
    last = dataset.get_item(max(dataset.keys()))
    if isinstance(last, RawDataElement) and last.value is not None \
            and last.length != 0xFFFFFFFF:
        if len(last.value) < last.length:
            return True
        if size is not None and last.value_tell + last.length != size:
            return True
    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if "PixelData" in dataset and syntax is not None and not syntax.is_encapsulated:
        from pydicom.pixels.utils import get_expected_length

        try:
            return len(dataset.PixelData) < get_expected_length(dataset)
        except (AttributeError, ValueError, TypeError):
            return False
    return False


def modality_values(dataset: Dataset, path: str | Path = "") -> np.ndarray:
    """The image as float32 modality values: [frames, rows, columns] (one frame for a
    single image), RescaleSlope/Intercept applied (HU for CT)."""
    try:
        stored = dataset.pixel_array
    except Exception as exc:  # pydicom raises many types for codecs it lacks
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", str(syntax))
        raise DataError(f"{path}: cannot decode the pixel data ({name}): "
                        f"{type(exc).__name__}") from None
    if int(getattr(dataset, "SamplesPerPixel", 1)) != 1:
        raise DataError(f"{path}: colour DICOM images are not supported (SamplesPerPixel "
                        f"{dataset.SamplesPerPixel})")
    values = np.asarray(stored, dtype=np.float32)
    if values.ndim == 2:
        values = values[None]
    slope = float(getattr(dataset, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(dataset, "RescaleIntercept", 0.0) or 0.0)
    return values * slope + intercept


def own_window(dataset: Dataset) -> tuple[float, float] | None:
    """The file's first VOI window (WindowCenter, WindowWidth), if it has one."""
    from pydicom.multival import MultiValue

    centre, width = getattr(dataset, "WindowCenter", None), getattr(dataset, "WindowWidth", None)
    if centre is None or width is None:
        return None

    def first(value: Any) -> float:
        return float(value[0]) if isinstance(value, (MultiValue, list, tuple)) else float(value)

    return first(centre), first(width)


def window_of(dataset: Dataset, values: np.ndarray, name: str | None
              ) -> tuple[float, float]:
    """A named preset, ``"file"`` (the file's own window), or by default the file's window
    if it has one, else the value range."""
    if name is not None and name != "file":
        if name not in WINDOWS:
            raise DataError(f"unknown window {name!r}: use file or one of "
                            f"{', '.join(WINDOWS)}")
        return WINDOWS[name]
    found = own_window(dataset)
    if found is not None:
        return found
    if name == "file":
        raise DataError("the file has no window of its own (WindowCenter/WindowWidth)")
    low, high = float(values.min()), float(values.max())
    return (low + high) / 2, max(high - low, 1.0)


def apply_window(values: np.ndarray, window: tuple[float, float], *,
                 invert: bool = False) -> np.ndarray:
    """Modality values -> [0, 1] through a linear window; MONOCHROME1 (``invert``) shows
    high values dark."""
    centre, width = window
    scaled = np.clip((values - (centre - width / 2)) / max(width, 1e-6), 0.0, 1.0)
    return 1.0 - scaled if invert else scaled


def is_monochrome1(dataset: Dataset) -> bool:
    return str(getattr(dataset, "PhotometricInterpretation", "")) == "MONOCHROME1"


@dataclass
class Series:
    """The images of one SeriesInstanceUID, ordered along the slice normal."""

    uid: str
    files: list[Path] = field(default_factory=list)
    datasets: list[Dataset] = field(default_factory=list)

    def volume(self) -> np.ndarray:
        """[slices, rows, columns] modality values; slices of another size are refused."""
        arrays = [modality_values(d, f) for d, f in zip(self.datasets, self.files, strict=True)]
        shapes = {a.shape[1:] for a in arrays}
        if len(shapes) > 1:
            raise DataError(f"series {self.files[0].parent}: its images have different sizes "
                            f"({', '.join('x'.join(map(str, s)) for s in sorted(shapes))})")
        return np.concatenate(arrays, axis=0)

    def spacing(self) -> tuple[float | None, float | None, float | None]:
        """(slice, row, column) spacing in mm: the distance between ordered slice positions
        (SliceThickness as fallback), then PixelSpacing."""
        first = self.datasets[0]
        rows, columns = (float(v) for v in first.PixelSpacing) if "PixelSpacing" in first \
            else (None, None)
        positions = [_position_along_normal(d) for d in self.datasets]
        if len(positions) > 1 and None not in positions:
            gaps = np.diff(np.asarray(positions, dtype=np.float64))
            between: float | None = float(np.median(np.abs(gaps)))
        else:
            thickness = getattr(first, "SliceThickness", None)
            between = float(thickness) if thickness not in (None, "") else None
        return between, rows, columns


def _slice_normal(dataset: Dataset) -> np.ndarray | None:
    orientation = getattr(dataset, "ImageOrientationPatient", None)
    if orientation is None or len(orientation) != 6:
        return None
    row, column = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    return np.cross(row, column)


def _position_along_normal(dataset: Dataset) -> float | None:
    normal = _slice_normal(dataset)
    position = getattr(dataset, "ImagePositionPatient", None)
    if normal is None or position is None or len(position) != 3:
        return None
    return float(np.dot(normal, np.asarray(position, float)))


def dicom_files(paths: list[str | Path]) -> list[Path]:
    """Files given, and every file under a directory given (sorted), DICOM or not."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"{path}: no such file or directory")
    if not found:
        raise DataError("no files to read")
    return found


def read_series(paths: list[str | Path]) -> list[Series]:
    """DICOM images grouped by SeriesInstanceUID, each series ordered by ImagePositionPatient
    along its slice normal (InstanceNumber where positions are missing). Non-DICOM files in
    a directory are skipped; a non-DICOM file named directly is refused."""
    groups: dict[str, Series] = {}
    named = {Path(p) for p in paths if Path(p).is_file()}
    for path in dicom_files(paths):
        try:
            dataset = read_dataset(path)
        except DataError:
            if path in named:
                raise
            continue
        uid = str(getattr(dataset, "SeriesInstanceUID", "") or path)
        series = groups.setdefault(uid, Series(uid))
        series.files.append(path)
        series.datasets.append(dataset)
    if not groups:
        raise DataError("no DICOM image among the files given")
    for series in groups.values():
        keys = [(_position_along_normal(d), int(getattr(d, "InstanceNumber", 0) or 0))
                for d in series.datasets]
        use_position = all(k[0] is not None for k in keys)
        order = sorted(range(len(keys)), key=lambda i: (keys[i][0] if use_position else 0.0,
                                                        keys[i][1]))
        series.files = [series.files[i] for i in order]
        series.datasets = [series.datasets[i] for i in order]
    return list(groups.values())


def summary(series: Series, *, phi: bool = False) -> dict[str, Any]:
    """What `info` prints for a series: acquisition facts; patient attributes only with
    ``phi``."""
    first = series.datasets[0]
    volume = series.volume()
    between, rows, columns = series.spacing()
    window = own_window(first)
    out: dict[str, Any] = {
        "modality": str(getattr(first, "Modality", "")),
        "files": len(series.files),
        "slices": int(volume.shape[0]),
        "rows": int(volume.shape[1]),
        "columns": int(volume.shape[2]),
        "spacing_mm": {"slice": between, "row": rows, "column": columns},
        "value_range": [float(volume.min()), float(volume.max())],
        "units": "HU" if str(getattr(first, "Modality", "")) == "CT" else "modality values",
        "window": None if window is None else {"center": window[0], "width": window[1]},
        "photometric": str(getattr(first, "PhotometricInterpretation", "")),
        "transfer_syntax": str(getattr(getattr(first.file_meta, "TransferSyntaxUID", None),
                                       "name", "")),
    }
    if phi:
        out["patient"] = {k: str(first.get(k, "")) for k in PATIENT_ATTRIBUTES if k in first}
    return out


def pixel_spacing(dataset: Dataset) -> tuple[float, float] | None:
    """(row, column) spacing in mm: PixelSpacing, else ImagerPixelSpacing (projection
    radiographs), else None."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = getattr(dataset, keyword, None)
        if value is not None and len(value) == 2 and all(float(v) > 0 for v in value):
            return float(value[0]), float(value[1])
    return None


def resample_to_spacing(frame: np.ndarray, spacing: tuple[float, float],
                        target_mm: float) -> np.ndarray:
    """A [rows, columns] image resampled so that one pixel is ``target_mm`` on each side
    (bilinear, antialiased when shrinking): scanners' different pixel sizes then show an
    organ at the same size in pixels."""
    import torch
    from torch.nn import functional as F

    rows = max(1, round(frame.shape[0] * spacing[0] / target_mm))
    columns = max(1, round(frame.shape[1] * spacing[1] / target_mm))
    if (rows, columns) == frame.shape:
        return frame
    tensor = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32))[None, None]
    shrink = rows < frame.shape[0] or columns < frame.shape[1]
    out = F.interpolate(tensor, size=(rows, columns), mode="bilinear", align_corners=False,
                        antialias=shrink)
    return out[0, 0].numpy()


def crop_or_pad(frame: np.ndarray, size: int, fill: float) -> np.ndarray:
    """The central ``size`` x ``size`` pixels of ``frame``, padded with ``fill`` where it is
    smaller."""
    out = np.full((size, size), fill, dtype=np.float32)
    rows, columns = frame.shape
    top, left = (rows - size) // 2, (columns - size) // 2
    src = frame[max(top, 0):max(top, 0) + min(size, rows),
                max(left, 0):max(left, 0) + min(size, columns)]
    r0, c0 = max(-top, 0), max(-left, 0)
    out[r0:r0 + src.shape[0], c0:c0 + src.shape[1]] = src
    return out


def nifti_affine(series: Series) -> np.ndarray:
    """The 4x4 voxel -> RAS+ mm affine of a series stored as [columns, rows, slices] (the
    NIfTI order): DICOM's patient coordinates are LPS, so x and y change sign. The slice
    axis is the step from the first slice's position to the last's (so each slice lands
    on its own ImagePositionPatient, a tilted gantry included), else the normal times the
    spacing. Without an orientation the axes are the identity scaled by the spacing."""
    first = series.datasets[0]
    between, row_mm, column_mm = series.spacing()
    affine = np.eye(4)
    orientation = getattr(first, "ImageOrientationPatient", None)
    position = getattr(first, "ImagePositionPatient", None)
    if orientation is not None and len(orientation) == 6:
        row_dir = np.asarray(orientation[:3], float)   # along a row: the column index grows
        col_dir = np.asarray(orientation[3:], float)   # down a column: the row index grows
        normal = np.cross(row_dir, col_dir)
    else:
        row_dir, col_dir, normal = np.eye(3)
    affine[:3, 0] = row_dir * (column_mm or 1.0)
    affine[:3, 1] = col_dir * (row_mm or 1.0)
    affine[:3, 2] = normal * (between or 1.0)
    ends = [getattr(series.datasets[i], "ImagePositionPatient", None) for i in (0, -1)]
    if len(series.datasets) > 1 and all(e is not None and len(e) == 3 for e in ends):
        first_mm, last_mm = (np.asarray(e, float) for e in ends)
        affine[:3, 2] = (last_mm - first_mm) / (len(series.datasets) - 1)
    if position is not None and len(position) == 3:
        affine[:3, 3] = np.asarray(position, float)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def write_nifti(series: Series, path: Path) -> tuple[int, ...]:
    """The series' modality values (HU for CT) as a NIfTI-1 file (``.nii`` or ``.nii.gz``)
    with its geometry; returns the stored shape."""
    import nibabel

    data = np.transpose(series.volume(), (2, 1, 0)).astype(np.float32)  # -> [x, y, z]
    image = nibabel.Nifti1Image(data, nifti_affine(series))
    image.header.set_xyzt_units("mm")
    image.header.set_qform(image.affine, code=1)  # scanner coordinates
    image.header.set_sform(image.affine, code=1)
    nibabel.save(image, str(path))
    return tuple(int(n) for n in data.shape)
