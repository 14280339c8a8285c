"""``vision.text2image``: prompt -> image, a text-conditional denoising diffusion model on
diffusers.

The prompt goes through any registered text encoder (``word-transformer`` by default,
trained with the denoiser; ``minilm``, frozen and shared through the hub, by ``--set``);
its word states condition a ``UNet2DConditionModel`` by cross-attention. In
``caption_dropout`` of the training steps a caption is replaced by a learned "no prompt"
token, so sampling can use classifier-free guidance (``guidance``). The core Trainer fits
the UNet and the text encoder together (EMA weights), as vision.generate's.

Judged by measurement (``polymodal_vision.prompt_quality``): a vision.retrieve model
trained on the real training scenes says whether each generated image shows the colours
and shapes its prompt names, and how well the prompts retrieve their images.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from polymodal.plugin import DataError, InputSpec, Record, TrainSpec, parse_model_spec
from polymodal_vision.generate import (
    UNET_DIR,
    Condition,
    DenoiserExport,
    DiffusionPredictor,
    DiffusionSpec,
    TimestepDraw,
    denoising_loss,
    drop_mask,
)

TEXT_WEIGHTS = "prompt-encoder.safetensors"


class Text2ImageSpec(DiffusionSpec):
    name: str = "scenes-text2image"
    scenario: str = "vision.text2image"
    target: str = "caption"  # the training records' prompt field
    image_size: int = Field(default=32, ge=8, le=256)
    # Narrow at full resolution: 1.5x the steps of 32/64/64 in the same time, and on 2 CPU
    # cores the steps are what the shapes need (docs/benchmarks.md).
    widths: list[int] = Field(default_factory=lambda: [16, 32, 64], min_length=2)
    prediction: Literal["epsilon", "v_prediction"] = "v_prediction"
    text: InputSpec = InputSpec(name="prompt", modality="text", encoder="word-transformer",
                                options={"dim": 64, "layers": 1, "max_length": 16,
                                         "dropout": 0.0})
    heads: int = Field(default=4, ge=1)
    # The prompt's pooled vector also added to the timestep embedding (every ResNet block
    # sees it, as SDXL's pooled text embedding), beside the cross-attention to its words.
    pooled: bool = True
    guidance: float = Field(default=1.75, ge=0)
    snr_gamma: float | None = Field(default=5.0, gt=0)
    # Timesteps drawn logit-normal, centred a little toward the noisy end: the steps that
    # decide which shape goes where are trained more often (docs/benchmarks.md).
    timesteps: Literal["uniform", "logit_normal"] = "logit_normal"
    logit_mean: float = 0.5
    caption_dropout: float = Field(default=0.1, ge=0, lt=1)
    # Test prompts evaluation generates an image for, and the epochs of the judge (a
    # vision.retrieve model of the real training scenes at the generator's size).
    eval_prompts: int = Field(default=200, ge=2)
    judge_epochs: int = Field(default=15, ge=1)
    train: TrainSpec = TrainSpec(epochs=20, batch_size=32, lr=2.0e-3, warmup=0.02,
                                 weight_decay=0.0, ema=0.995)


def parse_text2image_spec(data: dict[str, Any]) -> Text2ImageSpec:
    return parse_model_spec(Text2ImageSpec, data)


def build_conditioned_unet(spec: Text2ImageSpec, context_dim: int) -> nn.Module:
    """The denoiser: a diffusers UNet2DConditionModel over RGB whose lowest-resolution
    blocks (with ``attention``; the middle block always) read ``context_dim``-wide prompt
    states by cross-attention."""
    from diffusers import UNet2DConditionModel

    blocks = len(spec.widths)
    down = ["DownBlock2D"] * blocks
    up = ["UpBlock2D"] * blocks
    if spec.attention:
        down[-1], up[0] = "CrossAttnDownBlock2D", "CrossAttnUpBlock2D"
    unet: Any = UNet2DConditionModel(
        sample_size=spec.image_size, in_channels=3, out_channels=3,
        layers_per_block=spec.layers_per_block, block_out_channels=tuple(spec.widths),
        down_block_types=tuple(down), up_block_types=tuple(up),
        cross_attention_dim=context_dim, attention_head_dim=spec.heads, norm_num_groups=8,
        class_embed_type="projection" if spec.pooled else None,
        projection_class_embeddings_input_dim=context_dim if spec.pooled else None)
    return unet


class PromptConditioner(nn.Module):
    """A text encoder's word states as the UNet's cross-attention context (and, with
    ``pooled``, its pooled vector as the UNet's class embedding input), and the learned
    "no prompt" context of classifier-free guidance (one token, one pooled vector). A
    ``frozen`` encoder (shared through the hub, which keeps it in evaluation mode) runs
    out of autograd; a batch may then carry its states already (``PromptStateCache``)."""

    def __init__(self, encoder: Any, pooled: bool = True, frozen: bool = False) -> None:
        super().__init__()
        self.encoder, self.pooled, self.frozen = encoder, pooled, frozen
        self.null = nn.Parameter(torch.randn(1, encoder.output_dim) * 0.02)
        self.null_pooled = nn.Parameter(torch.randn(encoder.output_dim) * 0.02)

    def encode(self, batch: dict[str, torch.Tensor]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(word states [B, T, D], their mask [B, T], pooled [B, D]) of a processor batch,
        or the states a ``PromptStateCache`` put in the batch."""
        if CACHED_STATES in batch:
            return batch[CACHED_STATES], batch[CACHED_MASK], batch[CACHED_POOLED]
        with torch.no_grad() if self.frozen else contextlib.nullcontext():
            out = self.encoder(batch)
        if out.tokens is None:
            raise DataError(f"the text encoder {type(self.encoder).__name__} gives no word "
                            "states to attend to")
        mask = (out.token_mask if out.token_mask is not None
                else torch.ones(out.tokens.shape[:2], dtype=torch.bool,
                                device=out.tokens.device))
        return out.tokens, mask, out.pooled

    def forward(self, batch: dict[str, torch.Tensor], dropped: torch.Tensor | None = None
                ) -> Condition:
        tokens, mask, pooled = self.encode(batch)
        if dropped is not None:
            null, null_mask = self._null(tokens.shape[0], tokens.shape[1], tokens)
            tokens = torch.where(dropped[:, None, None], null, tokens)
            mask = torch.where(dropped[:, None], null_mask, mask)
            pooled = torch.where(dropped[:, None], self.null_pooled.to(pooled.dtype), pooled)
        condition = {"encoder_hidden_states": tokens, "encoder_attention_mask": mask}
        if self.pooled:
            condition["class_labels"] = pooled
        return condition

    def _null(self, count: int, length: int, like: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.null.to(like.dtype)[None].expand(count, length, -1)
        mask = torch.zeros(count, length, dtype=torch.bool, device=like.device)
        mask[:, 0] = True
        return tokens, mask

    def unconditioned(self, condition: Condition) -> Condition:
        """The "no prompt" context, shaped as ``condition``'s."""
        states = condition["encoder_hidden_states"]
        tokens, mask = self._null(states.shape[0], states.shape[1], states)
        condition = {"encoder_hidden_states": tokens, "encoder_attention_mask": mask}
        if self.pooled:
            condition["class_labels"] = self.null_pooled.to(states.dtype).expand(
                states.shape[0], -1)
        return condition


CACHED_STATES, CACHED_MASK, CACHED_POOLED = "prompt_states", "prompt_mask", "prompt_pooled"


class PromptStateCache:
    """A frozen prompt encoder's outputs, computed once per distinct prompt: the encoder
    does not train, so every epoch would compute the same states again. Called with a
    batch's prompts (a training collate), it gives them padded to the batch's longest,
    under keys ``PromptConditioner.encode`` reads; a prompt not seen yet is encoded then."""

    def __init__(self, conditioner: PromptConditioner, prompts: list[str],
                 batch_size: int = 256) -> None:
        if not conditioner.frozen:
            raise ValueError("only a frozen prompt encoder's states can be cached")
        self.conditioner, self.batch_size = conditioner, batch_size
        self.states: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._encode(prompts)

    def _encode(self, prompts: list[str]) -> None:
        distinct = sorted(set(prompts) - set(self.states))
        processor = self.conditioner.encoder.processor
        device = self.conditioner.null.device
        for start in range(0, len(distinct), self.batch_size):
            chunk = distinct[start:start + self.batch_size]
            batch = {k: v.to(device) for k, v in processor(chunk).items()}
            tokens, mask, pooled = self.conditioner.encode(batch)
            for i, prompt in enumerate(chunk):
                length = int(mask[i].nonzero().max()) + 1
                self.states[prompt] = (tokens[i, :length].float().cpu(),
                                       mask[i, :length].cpu(), pooled[i].float().cpu())

    def __call__(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        self._encode(prompts)
        rows = [self.states[p] for p in prompts]
        length = max(tokens.shape[0] for tokens, _, _ in rows)
        states = torch.zeros(len(rows), length, rows[0][0].shape[1])
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, (tokens, real, _) in enumerate(rows):
            states[i, :tokens.shape[0]], mask[i, :tokens.shape[0]] = tokens, real
        return {CACHED_STATES: states, CACHED_MASK: mask,
                CACHED_POOLED: torch.stack([pooled for _, _, pooled in rows])}


class Text2ImageNet(nn.Module):
    """The trained pair: the prompt conditioner and the UNet."""

    def __init__(self, unet: nn.Module, prompt: PromptConditioner) -> None:
        super().__init__()
        self.unet, self.prompt = unet, prompt

    def forward(self, noisy: torch.Tensor, steps: torch.Tensor, condition: Condition
                ) -> torch.Tensor:
        return self.unet(noisy, steps, **condition).sample


def text2image_loss(module: nn.Module, batch: tuple[torch.Tensor, dict[str, torch.Tensor]],
                    schedule: Any, caption_dropout: float,
                    snr_gamma: float | None = None, draw: TimestepDraw | None = None
                    ) -> torch.Tensor:
    images, text = batch
    dropped = drop_mask(images.shape[0], caption_dropout, module, images.device)
    condition = module.prompt(text, dropped)  # type: ignore[operator]
    return denoising_loss(images, schedule, lambda noisy, t: module(noisy, t, condition),
                          snr_gamma, draw)


class PromptGeneratorModel(DiffusionPredictor):
    """A trained text-to-image generator (``polymodal.load`` of a vision.text2image
    directory). A record is ``{"prompt": "a large red circle"}`` with optional ``seed``,
    ``steps`` and ``guidance``."""

    scenario = "vision.text2image"
    condition = "prompt"

    def __init__(self, spec: Text2ImageSpec, net: Text2ImageNet, device: torch.device,
                 manifest: dict[str, Any] | None = None, precision: str = "fp32",
                 directory: Path | None = None) -> None:
        super().__init__(spec, net.unet, net, device, manifest, precision, directory)
        self.net = net
        self.processor = net.prompt.encoder.processor

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "prompt", "modality": "text", "encoder": self.spec.text.encoder}]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "text-to-image", "target": "image"}

    def check_condition(self, index: int, value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"record {index}: needs a non-empty \"prompt\" (text)")

    def conditions(self, values: list[Any]) -> tuple[Condition, Condition]:
        batch = {k: v.to(self.device) for k, v in self.processor(list(values)).items()}
        condition = self.net.prompt(batch)
        return condition, self.net.prompt.unconditioned(condition)

    def example_values(self) -> list[Any]:
        return ["a large red circle", "a small blue square left of a large green triangle"]

    def export_denoiser(self) -> DenoiserExport:
        """The prompt encoder and the UNet in one graph, over the text processor's tensors
        (padded to the encoder's export length where it traces a constant one)."""
        length = self.net.prompt.encoder.export_length
        names = sorted(self.processor(self.example_values()))

        def condition(values: list[Any]) -> list[torch.Tensor]:
            self.processor.pad_to = length
            try:
                tensors = self.processor(list(values))
            finally:
                self.processor.pad_to = None
            return [tensors[name] for name in names]

        fixed = {name: [1] for name in names} if length is not None else {}
        return DenoiserExport(_PromptDenoiser(self.net, names), names, condition,
                              fixed_axes=fixed, sidecar={
                                  "processors": str((self.directory or Path()).resolve()
                                                    / "processors"),
                                  "token_length": length})

    def evaluation_records(self, records: list[Record]) -> list[Record]:
        target = self.spec.target
        real = [r for r in records if r.get("image") is not None
                and isinstance(r.get(target), str) and r[target].strip()]
        if not real:
            raise DataError(f"no record has an \"image\" and a {target!r}")
        return real

    def evaluate(self, records: list[Record], batch_size: int = 64) -> dict[str, Any]:
        """Generated images of the records' prompts judged by the directory's retrieval
        judge (``prompt_quality``), beside the same measures of the real images."""
        from polymodal_vision.prompt_quality import judge_prompts

        if self.directory is None:
            raise DataError("this generator was not loaded from a model directory with its "
                            "judge")
        return judge_prompts(self, self.evaluation_records(records),
                             self.directory / "judge", batch_size=batch_size)


class _PromptDenoiser(nn.Module):
    def __init__(self, net: Text2ImageNet, names: list[str]) -> None:
        super().__init__()
        self.net, self.names = net, names

    def forward(self, noisy: torch.Tensor, timestep: torch.Tensor, *text: torch.Tensor
                ) -> torch.Tensor:
        condition = self.net.prompt(dict(zip(self.names, text, strict=True)))
        return self.net(noisy, timestep, condition)


def save_text2image(net: Text2ImageNet, spec: Text2ImageSpec, work: Path) -> None:
    """The UNet as diffusers writes it, the prompt conditioner's weights (without a frozen
    encoder's, which its source gives again) and the text processor's state."""
    from safetensors.torch import save_file

    net.unet.save_pretrained(str(work / UNET_DIR), safe_serialization=True)  # type: ignore[operator]
    state = {k: v.detach().cpu().contiguous() for k, v in net.prompt.state_dict().items()
             if not (spec.text.frozen and k.startswith("encoder."))}
    save_file(state, str(work / TEXT_WEIGHTS))
    (work / "processors").mkdir(exist_ok=True)
    (work / "processors" / "prompt.json").write_text(
        json.dumps(net.prompt.encoder.processor.state()))


def build_prompt_encoder(spec: Text2ImageSpec, device: torch.device,
                         values: list[str] | None = None,
                         state: dict[str, Any] | None = None) -> Any:
    from polymodal.plugin import BuildContext, build_encoder, get_hub

    context = BuildContext(values=values, processor_state=state, device=device,
                           hub=get_hub() if spec.text.frozen else None)
    return build_encoder(spec.text, context)


def load_text2image(directory: str | Path, device: str | None = None,
                    precision: str = "fp32") -> PromptGeneratorModel:
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    from polymodal.plugin import ArtifactError, pick_device, read_manifest

    directory = Path(directory)
    manifest = read_manifest(directory)
    spec = parse_text2image_spec(manifest["spec"])
    torch_device = pick_device(device)
    try:
        text_state = json.loads((directory / "processors" / "prompt.json").read_text())
        weights = load_file(str(directory / TEXT_WEIGHTS))
        unet = UNet2DConditionModel.from_pretrained(
            str(directory / UNET_DIR), use_safetensors=True, local_files_only=True,
            low_cpu_mem_usage=False)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{directory}: unreadable generator files: "
                            f"{str(exc).splitlines()[0][:200]}") from None
    prompt = PromptConditioner(build_prompt_encoder(spec, torch_device, state=text_state),
                               spec.pooled, frozen=spec.text.frozen)
    missing, unexpected = prompt.load_state_dict(weights, strict=False)
    if unexpected or any(not (spec.text.frozen and k.startswith("encoder.")) for k in missing):
        raise ArtifactError(f"{directory}: the prompt encoder's weights do not fit this "
                            "spec's text encoder")
    net = Text2ImageNet(unet, prompt).to(torch_device).eval()
    return PromptGeneratorModel(spec, net, torch_device, manifest, precision, directory)
