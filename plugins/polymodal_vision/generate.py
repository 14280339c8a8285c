"""``vision.generate``: label -> image, a class-conditional denoising diffusion model on
diffusers.

A ``UNet2DModel`` with a class embedding (one more class, the "no label" of
classifier-free guidance) predicts the noise that a DDPM schedule added to an image; the
core Trainer fits it (the step: noise, timestep, predicted noise, MSE; the label dropped
in ``label_dropout`` of the steps) with an exponential moving average of the weights
(``train.ema``). Sampling runs DDIM or DPM-Solver for ``steps`` steps from noise drawn
from each record's ``seed``, so a record gives the same image alone or in any batch.

Judged by measurement (``polymodal_vision.generation_quality``): a classifier trained on
the real training images labels the generated ones; Frechet distances in that
classifier's feature space against the real-vs-real floor; within-class diversity
against the real images'. Embedded default: scikit-learn digits at 16 px.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.plugin import (
    BasePredictor,
    DataError,
    ExportGraph,
    Record,
    TrainSpec,
    parse_model_spec,
)
from polymodal_vision.png_outputs import PngOutputs

MAX_STEPS = 1000
UNET_DIR = "unet"


class DiffusionSpec(BaseModel):
    """What every diffusion generator's spec has: the UNet, the schedules and sampling."""

    model_config = ConfigDict(extra="forbid")
    image_size: int = Field(default=16, ge=8, le=256)
    widths: list[int] = Field(default_factory=lambda: [32, 64, 64], min_length=2)
    layers_per_block: int = Field(default=1, ge=1)
    # Attention in the lowest-resolution block (self-attention; cross-attention to the
    # prompt where there is one).
    attention: bool = True
    train_timesteps: int = Field(default=1000, ge=10, le=4000)
    beta_schedule: Literal["linear", "squaredcos_cap_v2"] = "squaredcos_cap_v2"
    sampler: Literal["ddim", "dpm-solver"] = "ddim"
    steps: int = Field(default=25, ge=1, le=MAX_STEPS)
    # Classifier-free guidance scale at sampling (0: the unconditional model, 1: the
    # conditional one alone, above 1: pushed away from the unconditional one).
    guidance: float = Field(default=1.0, ge=0)
    # Min-SNR loss weighting (Hang et al. 2023; diffusers' training examples' --snr_gamma):
    # each timestep's MSE weighted by min(SNR, gamma) / SNR, so the nearly clean timesteps
    # weigh less than the noisy ones that decide the layout. None: plain MSE.
    snr_gamma: float | None = Field(default=None, gt=0)
    # What the UNet predicts: the added noise (``epsilon``, DDPM's choice) or the velocity
    # ``alpha * noise - sigma * image`` (``v_prediction``, Salimans & Ho 2022): its target
    # stays of unit scale at every timestep, so the nearly clean steps that remove the
    # last grain and the noisy ones that decide the layout are learned alike.
    prediction: Literal["epsilon", "v_prediction"] = "epsilon"
    # How training draws timesteps: uniformly, or ``logit_normal``: t / T is the sigmoid of
    # a normal draw (``logit_mean``, ``logit_std``), so the middle of the schedule, where
    # the layout is decided, is trained more often than the nearly clean and the nearly
    # pure-noise ends (Esser et al. 2024, section 3.1; diffusers' ``--weighting_scheme``).
    timesteps: Literal["uniform", "logit_normal"] = "uniform"
    logit_mean: float = 0.0
    logit_std: float = Field(default=1.0, gt=0)
    validation: float = Field(default=0.0, ge=0, lt=1)


class GenerateSpec(DiffusionSpec):
    name: str = "digits-diffusion"
    scenario: str = "vision.generate"
    target: str = "label"  # the record field that conditions the image
    label_dropout: float = Field(default=0.1, ge=0, lt=1)
    # Generated images per label that evaluation judges, and the epochs of the judge
    # classifier (vision.classify's default spec) trained on the real training images.
    eval_per_label: int = Field(default=36, ge=1)
    judge_epochs: int = Field(default=20, ge=1)
    train: TrainSpec = TrainSpec(epochs=60, batch_size=64, lr=2.0e-3, warmup=0.02,
                                 weight_decay=0.0, ema=0.995)


def parse_generate_spec(data: dict[str, Any]) -> GenerateSpec:
    return parse_model_spec(GenerateSpec, data)


def build_unet(spec: GenerateSpec, labels: int) -> nn.Module:
    """The denoiser: a diffusers UNet2DModel over one grey channel, ``labels`` + 1 class
    embeddings (the last one: no label)."""
    from diffusers import UNet2DModel

    blocks = len(spec.widths)
    down = ["DownBlock2D"] * blocks
    up = ["UpBlock2D"] * blocks
    if spec.attention:
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    unet: Any = UNet2DModel(sample_size=spec.image_size, in_channels=1, out_channels=1,
                            layers_per_block=spec.layers_per_block,
                            block_out_channels=tuple(spec.widths),
                            down_block_types=tuple(down), up_block_types=tuple(up),
                            num_class_embeds=labels + 1, norm_num_groups=8)
    return unet


def noise_schedule(spec: DiffusionSpec) -> Any:
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=spec.train_timesteps,
                         beta_schedule=spec.beta_schedule, prediction_type=spec.prediction)


def sampler_for(spec: DiffusionSpec, name: str | None = None) -> Any:
    """A fresh sampling scheduler (DDIM with eta 0, or multistep DPM-Solver++) on the
    training schedule's betas."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    config = noise_schedule(spec).config
    if (name or spec.sampler) == "ddim":
        return DDIMScheduler.from_config(config)
    return DPMSolverMultistepScheduler.from_config(config)


def image_tensor(values: list[Any], size: int, channels: int = 1) -> torch.Tensor:
    """Images (paths, bytes or PIL) -> [B, channels, size, size] in [-1, 1] (1: grey,
    3: RGB)."""
    import numpy as np
    from PIL import Image

    from polymodal_vision.images import open_image

    rows = []
    for value in values:
        image = open_image(value).convert("L" if channels == 1 else "RGB").resize(
            (size, size), Image.Resampling.BILINEAR)
        rows.append(np.asarray(image, dtype=np.float32).reshape(size, size, channels)
                    / 127.5 - 1.0)
    return torch.from_numpy(np.stack(rows)).permute(0, 3, 1, 2).contiguous()


TimestepDraw = Callable[[int, torch.device], torch.Tensor]


def uniform_draw(total: int) -> TimestepDraw:
    """DDPM's draw: every one of ``total`` timesteps alike."""
    return lambda count, device: torch.randint(0, total, (count,), device=device)


def timestep_draw(spec: DiffusionSpec) -> TimestepDraw:
    """How a training step draws its batch's timesteps (``spec.timesteps``)."""
    total = spec.train_timesteps

    def logit_normal(count: int, device: torch.device) -> torch.Tensor:
        logits = spec.logit_mean + spec.logit_std * torch.randn(count, device=device)
        return (torch.sigmoid(logits) * total).long().clamp(max=total - 1)

    return logit_normal if spec.timesteps == "logit_normal" else uniform_draw(total)


def denoising_loss(images: torch.Tensor, schedule: Any,
                   predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   snr_gamma: float | None = None, draw: TimestepDraw | None = None
                   ) -> torch.Tensor:
    """One training step's loss: noise at a timestep of the DDPM schedule (drawn by
    ``draw``, uniformly without one), the schedule's target (the noise, or the velocity
    with ``prediction_type`` v_prediction) predicted from the noisy images, MSE (Min-SNR
    weighted with ``snr_gamma``)."""
    noise = torch.randn_like(images)
    draw = draw or uniform_draw(schedule.config.num_train_timesteps)
    steps = draw(images.shape[0], images.device)
    predicted = predict(schedule.add_noise(images, noise, steps), steps)
    velocity = schedule.config.prediction_type == "v_prediction"
    target = schedule.get_velocity(images, noise, steps) if velocity else noise
    if snr_gamma is None:
        return nn.functional.mse_loss(predicted.float(), target.float())
    from diffusers.training_utils import compute_snr

    snr = compute_snr(schedule, steps)
    # Min-SNR-gamma in the target's own units: min(SNR, gamma) / SNR for the noise,
    # min(SNR, gamma) / (SNR + 1) for the velocity (Hang et al. 2023, section 3.4).
    weight = torch.clamp(snr, max=snr_gamma) / (snr + 1 if velocity else snr)
    per_item = (predicted.float() - target.float()).pow(2).flatten(1).mean(1)
    return (per_item * weight).mean()


def drop_mask(count: int, share: float, module: nn.Module, device: torch.device
              ) -> torch.Tensor | None:
    """Which of ``count`` training items lose their condition (classifier-free guidance's
    "no condition" is learned from them); None in evaluation or with no dropout."""
    if share <= 0 or not module.training:
        return None
    return torch.rand(count, device=device) < share


def diffusion_loss(module: nn.Module, batch: tuple[torch.Tensor, torch.Tensor],
                   schedule: Any, null_label: int, label_dropout: float,
                   snr_gamma: float | None = None, draw: TimestepDraw | None = None
                   ) -> torch.Tensor:
    """The class-conditional step: the label dropped (to ``null_label``) in
    ``label_dropout`` of the items."""
    images, labels = batch
    dropped = drop_mask(len(labels), label_dropout, module, labels.device)
    if dropped is not None:
        labels = torch.where(dropped, torch.full_like(labels, null_label), labels)
    return denoising_loss(images, schedule,
                          lambda noisy, t: module(noisy, t, class_labels=labels).sample,
                          snr_gamma, draw)


Condition = dict[str, torch.Tensor]


@dataclass
class DenoiserExport:
    """What a generator exports: the denoiser over positional tensors ``noisy, timestep,
    *condition``, the names of the condition inputs, conditions -> those tensors, and the
    condition inputs' fixed axes and sidecar entries."""

    module: nn.Module
    names: list[str]
    condition: Callable[[list[Any]], list[torch.Tensor]]
    fixed_axes: dict[str, list[int]] = field(default_factory=dict)
    sidecar: dict[str, Any] = field(default_factory=dict)


def _cat(a: Condition, b: Condition) -> Condition:
    return {key: torch.cat([a[key], b[key]]) for key in a}


@torch.no_grad()
def sample(unet: nn.Module, spec: DiffusionSpec, condition: Condition, seeds: list[int], *,
           steps: int, guidance: float, null: Condition | None = None,
           sampler: str | None = None) -> torch.Tensor:
    """Images [B, C, S, S] in [0, 1], each from the noise of its own seed (drawn on the
    CPU, so the same on every device). ``condition`` holds the UNet's conditioning
    arguments (``class_labels``, or ``encoder_hidden_states`` and its mask; empty for an
    unconditional UNet), ``null`` the same for "no condition": with a guidance other than
    1 each step is ``null + guidance * (condition - null)`` (classifier-free guidance)."""
    device = next(unet.parameters()).device
    scheduler = sampler_for(spec, sampler)
    scheduler.set_timesteps(steps, device=device)
    config: Any = getattr(unet, "config", None)
    channels = int(config.in_channels) if config is not None else 1
    size = spec.image_size
    x = torch.stack([torch.randn(channels, size, size,
                                 generator=torch.Generator().manual_seed(s))
                     for s in seeds]).to(device) * scheduler.init_noise_sigma
    guided = guidance != 1.0 and null is not None
    both = _cat(condition, null) if guided and null is not None else condition
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(x, t)
        if guided:
            eps_both = unet(torch.cat([model_in, model_in]), t, **both).sample
            conditional, unconditional = eps_both.chunk(2)
            eps = unconditional + guidance * (conditional - unconditional)
        else:
            eps = unet(model_in, t, **condition).sample
        x = scheduler.step(eps.float(), t, x).prev_sample
    return ((x.clamp(-1, 1) + 1) / 2).float()


def to_png(image: torch.Tensor) -> bytes:
    """[C, S, S] in [0, 1] -> PNG bytes: 8-bit grey for one channel, RGB for three."""
    from PIL import Image

    array = (image.cpu().numpy() * 255).round().astype("uint8")
    # uint8 [S, S] is read as mode L, [S, S, 3] as RGB
    picture = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


class DiffusionPredictor(PngOutputs, BasePredictor):
    """What every diffusion generator's predictor shares: per-record ``seed`` (default: its
    position in the input), ``steps`` (1-1000) and ``guidance`` (>= 0), batches of equal
    settings, and the PNG out: with ``output_dir`` set (``polymodal predict --out DIR``)
    each image is written there and its path returned, otherwise (and when served) the PNG
    comes back base64-encoded. A subclass names its conditioning field (``condition``) and
    turns values of it into the UNet's conditioning arguments (``conditions``)."""

    condition = "label"

    def __init__(self, spec: Any, unet: nn.Module, module: nn.Module,
                 device: torch.device, manifest: dict[str, Any] | None = None,
                 precision: str = "fp32", directory: Path | None = None) -> None:
        BasePredictor.__init__(self, module, device, precision, manifest)
        PngOutputs.__init__(self)
        self.spec, self.unet, self.directory = spec, unet, directory

    def check_condition(self, index: int, value: Any) -> None:
        raise NotImplementedError

    def conditions(self, values: list[Any]) -> tuple[Condition, Condition]:
        """(the UNet's conditioning arguments for ``values``, those of no condition)."""
        raise NotImplementedError

    def file_stem(self, value: Any) -> str:
        return ""

    def validate(self, records: list[Record]) -> None:
        super().validate(records)
        for i, record in enumerate(records):
            self.check_condition(i, record.get(self.condition))
            steps = record.get("steps", self.spec.steps)
            if isinstance(steps, bool) or not isinstance(steps, int) \
                    or not 1 <= steps <= MAX_STEPS:
                raise DataError(f"record {i}: steps must be an integer from 1 to {MAX_STEPS}")
            guidance = record.get("guidance", self.spec.guidance)
            if isinstance(guidance, bool) or not isinstance(guidance, int | float) \
                    or not 0 <= guidance < float("inf"):
                raise DataError(f"record {i}: guidance must be a number >= 0")
            seed = record.get("seed", 0)
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
                raise DataError(f"record {i}: seed must be a non-negative integer")

    def check_request(self, records: list[Record]) -> None:
        self.validate(records)

    def _settings(self, record: Record) -> tuple[int, float]:
        return (int(record.get("steps", self.spec.steps)),
                float(record.get("guidance", self.spec.guidance)))

    def batches(self, records: list[Record], batch_size: int) -> list[list[int]]:
        """Records of equal steps and guidance together (one sampling loop each)."""
        by_setting: dict[tuple[int, float], list[int]] = {}
        for i, record in enumerate(records):
            by_setting.setdefault(self._settings(record), []).append(i)
        return [group[k:k + batch_size] for group in by_setting.values()
                for k in range(0, len(group), batch_size)]

    def predict(self, records: list[Record], batch_size: int = 64) -> list[Record]:
        seeded = [{**r, "seed": r.get("seed", i)} for i, r in enumerate(records)]
        return super().predict(seeded, batch_size)

    def preprocess(self, records: list[Record]) -> dict[str, Any]:
        steps, guidance = self._settings(records[0])
        return {"values": [r[self.condition] for r in records],
                "seeds": [int(r.get("seed", 0)) for r in records], "steps": steps,
                "guidance": guidance}

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        condition, null = self.conditions(batch["values"])
        return sample(self.unet, self.spec, condition, batch["seeds"], steps=batch["steps"],
                      guidance=batch["guidance"], null=null)

    def postprocess(self, outputs: torch.Tensor, batch: Any, records: list[Record]
                    ) -> list[Record]:
        results = []
        for image, record in zip(outputs, records, strict=True):
            steps, guidance = self._settings(record)
            value = record[self.condition]
            result: Record = {self.condition: value, "seed": int(record["seed"]),
                              "steps": steps, "guidance": guidance}
            result.update(self.png_result(to_png(image), "image", self.file_stem(value),
                                          tile=image))
            results.append(result)
        return results

    def example_values(self) -> list[Any]:
        """Conditions to trace an export with when no records are given."""
        raise NotImplementedError

    def export_denoiser(self) -> DenoiserExport:
        raise NotImplementedError

    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        """One denoising step: noisy images [B, C, S, S], their timesteps [B] and the
        condition -> the predicted noise. The sampler (DDIM or DPM-Solver on the schedule
        the sidecar names) and classifier-free guidance run around it in the runtime."""
        values = [v for r in records or []
                  if (v := r.get(self.condition, r.get(self.spec.target))) is not None]
        try:
            for i, value in enumerate(values):
                self.check_condition(i, value)
        except DataError:
            values = []
        values = values or self.example_values()
        denoiser = self.export_denoiser()
        config: Any = getattr(self.unet, "config", None)
        channels, size = int(config.in_channels), self.spec.image_size
        generator = torch.Generator().manual_seed(0)

        def batch(n: int) -> list[torch.Tensor]:
            noisy = torch.randn(n, channels, size, size, generator=generator)
            steps = torch.randint(0, self.spec.train_timesteps, (n,), generator=generator)
            chosen = [values[i % len(values)] for i in range(n)]
            return [noisy, steps, *denoiser.condition(chosen)]

        return ExportGraph(module=denoiser.module, inputs=["noisy", "timestep", *denoiser.names],
                           outputs=["velocity" if self.spec.prediction == "v_prediction"
                                    else "noise"], trace=batch(1), check=batch(3),
                           fixed_axes={"noisy": [1, 2, 3], **denoiser.fixed_axes},
                           sidecar={"task": "denoising", "prediction": self.spec.prediction,
                                    "train_timesteps": self.spec.train_timesteps,
                                    "beta_schedule": self.spec.beta_schedule,
                                    "image_size": size, "channels": channels,
                                    **denoiser.sidecar})

    def generate(self, values: list[Any], seed: int = 0, batch_size: int = 64,
                 **settings: Any) -> torch.Tensor:
        """[N, C, S, S] images in [0, 1] for conditions ``values``, seeds ``seed``,
        ``seed + 1``, ..."""
        images = []
        for start in range(0, len(values), batch_size):
            chunk = values[start:start + batch_size]
            batch = {"values": chunk,
                     "seeds": list(range(seed + start, seed + start + len(chunk))),
                     "steps": int(settings.get("steps", self.spec.steps)),
                     "guidance": float(settings.get("guidance", self.spec.guidance))}
            with torch.inference_mode():
                images.append(self.forward(batch).cpu())
        return torch.cat(images)


class GeneratorModel(DiffusionPredictor):
    """A trained class-conditional generator (``polymodal.load`` of a vision.generate
    directory). A record is ``{"label": "3"}`` with optional ``seed``, ``steps`` and
    ``guidance``."""

    scenario = "vision.generate"

    def __init__(self, spec: GenerateSpec, unet: nn.Module, labels: list[str],
                 device: torch.device, manifest: dict[str, Any] | None = None,
                 precision: str = "fp32", directory: Path | None = None) -> None:
        super().__init__(spec, unet, unet, device, manifest, precision, directory)
        self.condition = spec.target
        self.labels = labels
        self.index = {label: i for i, label in enumerate(labels)}

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": self.spec.target, "modality": "category", "encoder": "class-embedding"}]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "image-generation", "target": "image", "labels": self.labels}

    def check_condition(self, index: int, value: Any) -> None:
        if value is None or str(value) not in self.index:
            known = ", ".join(self.labels[:12])
            raise DataError(f"record {index}: {self.spec.target} {value!r} is not a label of "
                            f"this model ({known})")

    def conditions(self, values: list[Any]) -> tuple[Condition, Condition]:
        labels = torch.tensor([self.index[str(v)] for v in values], device=self.device)
        return ({"class_labels": labels},
                {"class_labels": torch.full_like(labels, len(self.labels))})

    def file_stem(self, value: Any) -> str:
        return str(value)

    def example_values(self) -> list[Any]:
        return list(self.labels)

    def export_denoiser(self) -> DenoiserExport:
        return DenoiserExport(
            _ClassDenoiser(self.unet), ["class_label"],
            lambda values: [torch.tensor([self.index[str(v)] for v in values])],
            sidecar={"labels": self.labels})

    def postprocess(self, outputs: torch.Tensor, batch: Any, records: list[Record]
                    ) -> list[Record]:
        results = super().postprocess(outputs, batch, records)
        for result in results:
            result[self.condition] = str(result[self.condition])
        return results

    def evaluation_records(self, records: list[Record]) -> list[Record]:
        real = [r for r in records if r.get("image") is not None
                and str(r.get(self.spec.target)) in self.index]
        if not real:
            raise DataError(f"no record has an \"image\" and a known {self.spec.target!r}")
        return real

    def evaluate(self, records: list[Record], batch_size: int = 64) -> dict[str, Any]:
        """Generated images judged against the real ``records`` (see
        ``generation_quality``): class accuracy, Frechet distances, diversity."""
        from polymodal_vision.generation_quality import judge_quality

        if self.directory is None:
            raise DataError("this generator was not loaded from a model directory with its "
                            "judge")
        return judge_quality(self, self.evaluation_records(records),
                             self.directory / "judge", batch_size=batch_size)


class _ClassDenoiser(nn.Module):
    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, noisy: torch.Tensor, timestep: torch.Tensor,
                class_label: torch.Tensor) -> torch.Tensor:
        return self.unet(noisy, timestep, class_labels=class_label).sample


def save_generator(unet: Any, labels: list[str], work: Path) -> None:
    """The UNet as diffusers writes it (config.json + safetensors) and the label list."""
    unet.save_pretrained(str(work / UNET_DIR), safe_serialization=True)
    (work / "labels.json").write_text(json.dumps(labels))


def load_generator(directory: str | Path, device: str | None = None,
                   precision: str = "fp32") -> GeneratorModel:
    from diffusers import UNet2DModel

    from polymodal.plugin import ArtifactError, pick_device, read_manifest

    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = parse_generate_spec(manifest["spec"])
    torch_device = pick_device(device)
    try:
        labels = [str(x) for x in json.loads((directory / "labels.json").read_text())]
        unet = UNet2DModel.from_pretrained(str(directory / UNET_DIR), use_safetensors=True,
                                           local_files_only=True, low_cpu_mem_usage=False)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: unreadable generator files: "
                            f"{str(exc).splitlines()[0][:200]}") from None
    return GeneratorModel(spec, unet.to(torch_device), labels, torch_device, manifest,
                          precision, directory)
