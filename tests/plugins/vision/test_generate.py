"""vision.generate as a user meets it: a quick train through the CLI, PNGs from predict
(reproducible by seed), the measured quality in metrics.json, refused bad input, base64
images when served; and a small generator that learns to draw the digits asked for."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from polymodal.testing import run_cli

pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def quick_generator(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("generate") / "model"
    result = run_cli("vision", "generate", "train", "--quick", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)["metrics"]


def test_a_quick_run_reports_quality_and_draws_a_grid(quick_generator: tuple[Path, dict]
                                                      ) -> None:
    out, metrics = quick_generator
    test = metrics["test"]
    assert set(test["class_accuracy_per_label"]) == {str(d) for d in range(10)}
    assert 0 <= test["class_accuracy"] <= 1 and test["generated"] == 20
    assert test["frechet_classifier"] > 0 and test["frechet_classifier_floor"] > 0
    assert test["diversity_real"] > 0
    assert (out / "plots" / "samples.png").is_file()
    assert "plots/samples.png" in (out / "report.html").read_text()
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def test_predict_writes_one_png_per_record_and_a_seed_repeats(
        quick_generator: tuple[Path, dict], tmp_path: Path) -> None:
    from PIL import Image

    model, _ = quick_generator
    records = tmp_path / "ask.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in (
        {"label": "3", "seed": 7, "steps": 3}, {"label": "3", "seed": 7, "steps": 3},
        {"label": "3", "seed": 8, "steps": 3}, {"label": "5", "steps": 2, "guidance": 2.0},
    )) + "\n")
    out = tmp_path / "images"
    result = run_cli("predict", str(model), "--input", str(records), "--out", str(out),
                     "--grid", "--json")
    assert result.returncode == 0, result.stderr
    assert Image.open(out / "grid.png").size == (4 * 17 + 1, 17 + 1)  # 4 tiles, 1 px apart
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["label"], r["seed"], r["steps"]) for r in rows] == [
        ("3", 7, 3), ("3", 7, 3), ("3", 8, 3), ("5", 3, 2)]  # seed: the record's position
    paths = [Path(r["image"]) for r in rows]
    assert all(p.parent == out and p.is_file() for p in paths)
    assert Image.open(paths[0]).size == (16, 16)
    first, again, other = (p.read_bytes() for p in paths[:3])
    assert first == again and first != other  # the same seed, the same image
    bad = tmp_path / "bad.jsonl"
    for record, message in (({"label": "12"}, "not a label"),
                            ({"label": "3", "steps": 0}, "steps"),
                            ({"label": "3", "guidance": -1}, "guidance")):
        bad.write_text(json.dumps(record) + "\n")
        refused = run_cli("predict", str(model), "--input", str(bad), "--out",
                          str(tmp_path / "never"))
        assert refused.returncode == 2 and message in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "never").exists()
    no_out = run_cli("predict", str(model), "--input", str(records), "--grid")
    assert no_out.returncode == 2 and "--grid needs --out" in no_out.stderr


def test_a_served_generator_answers_base64_pngs(quick_generator: tuple[Path, dict]) -> None:
    from fastapi.testclient import TestClient

    from polymodal.serving.app import ServeSettings, create_app

    model, _ = quick_generator
    with TestClient(create_app([model], ServeSettings(), device="cpu")) as client:
        name = client.get("/v1/models").json()["models"][0]["name"]
        url = f"/v1/models/{name}/predict"
        answer = client.post(url, json={"records": [{"label": "4", "seed": 1, "steps": 2}]})
        assert answer.status_code == 200, answer.text
        png = base64.b64decode(answer.json()["predictions"][0]["image_png_base64"])
        assert png.startswith(b"\x89PNG")
        bad = client.post(url, json={"records": [{"label": "four"}]})
        assert bad.status_code == 422 and "not a label" in bad.text
        assert client.post(url, json={"records": [{"label": "4", "steps": 1}]}
                           ).status_code == 200


def test_a_small_generator_draws_the_digits_asked_for(tmp_path: Path) -> None:
    """Three digits, 16 px, a few hundred optimizer steps: the judge classifier (trained on
    the real images) recognises the asked-for digit far above the 1/3 of chance."""
    from polymodal_vision.datasets import digits, split

    train, test = split([r for r in digits() if r["label"] in ("0", "1", "7")], 0.2)
    files = {}
    for name, rows in (("train", train), ("test", test)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "three-digits"
    result = run_cli("vision", "generate", "train", "--data", str(files["train"]), "--test",
                     str(files["test"]), "--out", str(out), "--json",
                     "--set", "train.epochs=20", "--set", "judge_epochs=6",
                     "--set", "eval_per_label=12", "--set", "steps=10",
                     "--set", "widths=[16,32,32]")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["judge"]["accuracy"] > 0.95
    assert metrics["test"]["class_accuracy"] > 0.7


def test_the_frechet_distance_equals_the_matrix_square_root_formula() -> None:
    """The eigenvalue route equals |mu_a - mu_b|^2 + tr(S_a + S_b - 2 sqrtm(S_a S_b)), and
    a set's distance to itself is 0."""
    import numpy as np
    import torch
    from scipy import linalg

    from polymodal_vision.generation_quality import frechet_distance

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(500, 12, generator=generator)
    b = torch.randn(400, 12, generator=generator) @ torch.randn(12, 12, generator=generator)
    x, y = a.double().numpy(), b.double().numpy()
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    expected = (((x.mean(0) - y.mean(0)) ** 2).sum()
                + np.trace(cov_x + cov_y - 2 * linalg.sqrtm(cov_x @ cov_y).real))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_min_snr_weighting_scales_each_timestep_by_min_snr_gamma_over_snr() -> None:
    """With ``snr_gamma`` a nearly clean timestep (large SNR) weighs gamma / SNR of its
    MSE and a noisy one (SNR below gamma) its whole MSE; without it, plain MSE."""
    import torch

    from polymodal_vision.generate import GenerateSpec, denoising_loss, noise_schedule

    schedule = noise_schedule(GenerateSpec())
    images = torch.zeros(64, 1, 4, 4)

    def zeros(noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(noisy)

    def draws() -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        noise = torch.randn_like(images)
        return noise, torch.randint(0, schedule.config.num_train_timesteps, (64,))

    noise, steps = draws()
    alphas = schedule.alphas_cumprod[steps]
    snr = alphas / (1 - alphas)
    per_item = noise.pow(2).flatten(1).mean(1)
    torch.manual_seed(0)
    plain = denoising_loss(images, schedule, zeros)
    torch.manual_seed(0)
    weighted = denoising_loss(images, schedule, zeros, snr_gamma=5.0)
    assert torch.isclose(plain, per_item.mean())
    expected = (per_item * torch.clamp(snr, max=5.0) / snr).mean()
    assert torch.isclose(weighted, expected, rtol=1e-4)
    assert weighted < plain  # the clean half of the timesteps weighs less


def test_velocity_prediction_learns_the_velocity_with_min_snr_over_snr_plus_one() -> None:
    """With ``prediction: v_prediction`` the target is alpha * noise - sigma * image and
    Min-SNR weighs it by min(SNR, gamma) / (SNR + 1)."""
    import torch

    from polymodal_vision.generate import GenerateSpec, denoising_loss, noise_schedule

    schedule = noise_schedule(GenerateSpec(prediction="v_prediction"))
    images = torch.linspace(-1, 1, 64 * 16).reshape(64, 1, 4, 4)

    def zeros(noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(noisy)

    torch.manual_seed(0)
    noise = torch.randn_like(images)
    steps = torch.randint(0, schedule.config.num_train_timesteps, (64,))
    alphas = schedule.alphas_cumprod[steps][:, None, None, None]
    velocity = alphas.sqrt() * noise - (1 - alphas).sqrt() * images
    per_item = velocity.pow(2).flatten(1).mean(1)
    snr = alphas.flatten() / (1 - alphas.flatten())
    torch.manual_seed(0)
    assert torch.isclose(denoising_loss(images, schedule, zeros), per_item.mean(), rtol=1e-4)
    torch.manual_seed(0)
    weighted = denoising_loss(images, schedule, zeros, snr_gamma=5.0)
    expected = (per_item * torch.clamp(snr, max=5.0) / (snr + 1)).mean()
    assert torch.isclose(weighted, expected, rtol=1e-4)


def test_logit_normal_timesteps_train_the_middle_of_the_schedule_more_often() -> None:
    """``timesteps: logit_normal`` draws t / T as the sigmoid of a normal draw: the middle
    half of the schedule gets about 70% of the steps (uniform: 50%), ``logit_mean`` moves
    them toward the noisy end, and the loss trains on exactly the drawn timesteps."""
    import torch

    from polymodal_vision.generate import (
        GenerateSpec,
        denoising_loss,
        noise_schedule,
        timestep_draw,
    )

    def middle_share(spec: GenerateSpec) -> float:
        torch.manual_seed(0)
        steps = timestep_draw(spec)(20_000, torch.device("cpu"))
        assert 0 <= int(steps.min()) and int(steps.max()) < spec.train_timesteps
        return float(((steps >= 250) & (steps < 750)).float().mean())

    assert abs(middle_share(GenerateSpec()) - 0.5) < 0.02
    assert abs(middle_share(GenerateSpec(timesteps="logit_normal")) - 0.71) < 0.02
    torch.manual_seed(0)
    shifted = timestep_draw(GenerateSpec(timesteps="logit_normal", logit_mean=1.0))(
        20_000, torch.device("cpu"))
    assert float(shifted.float().mean()) > 650  # sigmoid(1) = 0.73 of the way to noise

    spec = GenerateSpec(timesteps="logit_normal")
    schedule, seen = noise_schedule(spec), []

    def record(noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(t)
        return torch.zeros_like(noisy)

    torch.manual_seed(1)
    denoising_loss(torch.zeros(8, 1, 4, 4), schedule, record, draw=timestep_draw(spec))
    torch.manual_seed(1)
    torch.randn(8, 1, 4, 4)  # the loss draws its noise first
    assert torch.equal(seen[0], timestep_draw(spec)(8, torch.device("cpu")))


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("sampler", ["ddim", "dpm-solver"])
def test_sampling_with_a_perfect_denoiser_returns_its_image(prediction: str, sampler: str
                                                           ) -> None:
    """A denoiser that knows the clean image answers the exact noise (or velocity) at every
    step; the sampler, told what the UNet predicts, then ends at that image."""
    from types import SimpleNamespace

    import torch

    from polymodal_vision.generate import GenerateSpec, noise_schedule, sample

    spec = GenerateSpec(image_size=8, prediction=prediction, sampler=sampler)
    alphas_cumprod = noise_schedule(spec).alphas_cumprod
    clean = torch.linspace(-0.9, 0.9, 64).reshape(1, 1, 8, 8)

    class Oracle(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))
            self.config = SimpleNamespace(in_channels=1)

        def forward(self, noisy: torch.Tensor, t: torch.Tensor, **_: object
                    ) -> SimpleNamespace:
            alpha = alphas_cumprod[int(t)]
            noise = (noisy - alpha.sqrt() * clean) / (1 - alpha).sqrt()
            if prediction == "epsilon":
                return SimpleNamespace(sample=noise)
            return SimpleNamespace(sample=alpha.sqrt() * noise - (1 - alpha).sqrt() * clean)

    image = sample(Oracle(), spec, {}, [0], steps=10, guidance=1.0)
    assert torch.allclose(image, (clean + 1) / 2, atol=1e-3)
