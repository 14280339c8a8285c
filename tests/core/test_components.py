"""Encoders, fusions and tasks of the core, exercised directly."""

from __future__ import annotations

import pytest
import torch

from polymodal.encoders.base import BuildContext, EncoderOutput
from polymodal.encoders.categorical import CategoricalEncoder
from polymodal.encoders.numeric import NumericEncoder
from polymodal.fusions import AttentionFusion, ConcatFusion, GatedFusion, LateFusion
from polymodal.spec import InputSpec, TaskSpec
from polymodal.tasks.classification import ClassificationTask
from polymodal.tasks.regression import RegressionTask


def test_numeric_standardises_with_training_statistics() -> None:
    spec = InputSpec(name="x", modality="numeric", encoder="numeric")
    encoder = NumericEncoder(spec, BuildContext(values=["1", "3", None, 5]))
    batch = encoder.processor([3, None, 5])
    assert batch["values"][:, 0].tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert batch["missing"][:, 0].tolist() == [0.0, 1.0, 0.0]
    assert encoder(batch).pooled.shape == (3, 32)


def test_numeric_several_columns() -> None:
    spec = InputSpec(name="vitals", modality="numeric", encoder="numeric",
                     columns=["a", "b"], options={"dim": 8})
    encoder = NumericEncoder(spec, BuildContext(values=[[1, 10], [3, 30]]))
    assert encoder.processor.mean == pytest.approx([2.0, 20.0])
    assert encoder(encoder.processor([[1, None]])).pooled.shape == (1, 8)


def test_numeric_named_values_fit_their_names() -> None:
    """An object of named numbers (an EHR record): the names are those seen in training,
    sorted; an absent name is missing, an unseen one ignored; the names are saved."""
    spec = InputSpec(name="ehr", modality="ehr", encoder="ehr-features", options={"dim": 8})
    encoder = NumericEncoder(spec, BuildContext(values=[{"age": 40, "bili": 1.0},
                                                        {"age": 60, "albumin": 3.0}, None]))
    processor = encoder.processor
    assert processor.names == ["age", "albumin", "bili"] and processor.width == 3
    assert processor.mean == pytest.approx([50.0, 3.0, 1.0])
    batch = processor([{"age": 50, "unseen": 7.0}])
    assert batch["values"].tolist() == [[0.0, 0.0, 0.0]]
    assert batch["missing"].tolist() == [[0.0, 1.0, 1.0]]
    assert encoder(batch).pooled.shape == (1, 8)
    restored = NumericEncoder(spec, BuildContext(processor_state=processor.state()))
    assert restored.processor.names == processor.names


def test_categorical_unknown_bucket() -> None:
    spec = InputSpec(name="c", modality="categorical", encoder="categorical")
    encoder = CategoricalEncoder(spec, BuildContext(values=["a", "b", "a", None]))
    ids = encoder.processor(["a", "b", "never-seen", None])["ids"].tolist()
    assert ids[0] != ids[1] and ids[0] > 0 and ids[1] > 0
    assert ids[2] == 0 and ids[3] == 0
    assert encoder.embedding.num_embeddings == 3


def token_attention(input_dims: dict[str, int]) -> AttentionFusion:
    return AttentionFusion(input_dims, tokens=True, query="text", condition=True)


def placed_attention(input_dims: dict[str, int]) -> AttentionFusion:
    return AttentionFusion(input_dims, tokens=True, query="text", spatial=True, readout=3)


FUSIONS = [ConcatFusion, GatedFusion, AttentionFusion, LateFusion, token_attention,
           placed_attention]


@pytest.mark.parametrize("fusion_cls", FUSIONS)
def test_fusions_handle_missing_modalities(fusion_cls: type) -> None:
    torch.manual_seed(0)
    fusion = fusion_cls({"text": 16, "image": 8})
    fusion.eval()
    outputs = {"text": EncoderOutput(torch.randn(3, 16), torch.randn(3, 5, 16),
                                     torch.tensor([[True] * 5, [True] * 3 + [False] * 2,
                                                   [True] * 5])),
               "image": EncoderOutput(torch.randn(3, 8), torch.randn(3, 4, 8),
                                      torch.ones(3, 4, dtype=torch.bool))}
    present = {"text": torch.tensor([True, True, False]),
               "image": torch.tensor([True, False, False])}
    fused = fusion(outputs, present)
    if fusion.late:
        assert set(fused.per_field) == {"text", "image"}
        return
    assert fused.pooled.shape == (3, fusion.output_dim)
    assert torch.isfinite(fused.pooled).all()
    # An absent modality's values must not matter.
    shift = 100 * torch.tensor([[0.0], [1.0], [1.0]])
    changed = {"text": outputs["text"],
               "image": EncoderOutput(outputs["image"].pooled + shift,
                                      outputs["image"].tokens + shift.unsqueeze(-1),
                                      outputs["image"].token_mask)}
    again = fusion(changed, present).pooled
    assert torch.allclose(again[1:], fused.pooled[1:], atol=1e-5)


def _grid_outputs(batch: int) -> dict[str, EncoderOutput]:
    positions = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    return {"text": EncoderOutput(torch.randn(batch, 16), torch.randn(batch, 5, 16),
                                  torch.ones(batch, 5, dtype=torch.bool)),
            "image": EncoderOutput(torch.randn(batch, 8), torch.randn(batch, 4, 8),
                                   torch.ones(batch, 4, dtype=torch.bool), positions)}


def test_the_placed_decoder_is_the_decoder_plus_the_places() -> None:
    """``spatial`` runs the library's decoder layers by hand to see their attention: with
    the place projections at zero it computes what ``nn.TransformerDecoder`` does, and the
    places change the result once the projections are not zero."""
    torch.manual_seed(0)
    plain = AttentionFusion({"text": 16, "image": 8}, tokens=True, query="text").eval()
    placed = AttentionFusion({"text": 16, "image": 8}, tokens=True, query="text",
                             spatial=True).eval()
    placed.load_state_dict(plain.state_dict(), strict=False)
    for projection in placed.places:
        torch.nn.init.zeros_(projection.weight)
        torch.nn.init.zeros_(projection.bias)
    outputs = _grid_outputs(3)
    present = {"text": torch.ones(3, dtype=torch.bool), "image": torch.ones(3, dtype=torch.bool)}
    assert torch.allclose(placed(outputs, present).tokens, plain(outputs, present).tokens,
                          atol=1e-5)
    torch.nn.init.normal_(placed.places[0].weight)
    assert not torch.allclose(placed(outputs, present).tokens, plain(outputs, present).tokens,
                              atol=1e-3)


def test_spatial_and_readout_need_the_decoder_mode() -> None:
    from polymodal.errors import SpecError

    with pytest.raises(SpecError, match="decoder mode"):
        AttentionFusion({"text": 16, "image": 8}, tokens=True, spatial=True)
    with pytest.raises(SpecError, match="decoder mode"):
        AttentionFusion({"text": 16, "image": 8}, query="text", readout=4)


def _relation_batch(generator: torch.Generator, count: int
                    ) -> tuple[dict[str, EncoderOutput], torch.Tensor]:
    """Two objects of four kinds on a 4x4 grid (a kind's cell is its one-hot); the question
    names two kinds in order ("is A left of B?"); the answer is whether A's cell is left of
    B's. Objects share no column."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 4), torch.linspace(-1, 1, 4), indexing="ij")
    positions = torch.stack([xs.flatten(), ys.flatten()], -1)
    cells = torch.randn(count, 16, 8, generator=generator) * 0.1
    words = torch.zeros(count, 2, 8)
    answers = torch.zeros(count, dtype=torch.long)
    for row in range(count):
        kinds = torch.randperm(4, generator=generator)[:2]
        columns = torch.randperm(4, generator=generator)[:2]
        rows = torch.randint(0, 4, (2,), generator=generator)
        for kind, column, line in zip(kinds, columns, rows, strict=True):
            cells[row, int(line) * 4 + int(column), kind] += 1.0
        words[row, 0, kinds[0]] = words[row, 1, kinds[1]] = 1.0
        answers[row] = int(columns[0] < columns[1])
    outputs = {"question": EncoderOutput(words.mean(1), words, torch.ones(count, 2,
                                                                          dtype=torch.bool)),
               "image": EncoderOutput(cells.mean(1), cells, torch.ones(count, 16,
                                                                       dtype=torch.bool),
                                      positions)}
    return outputs, answers


STEPS = 500
PRESENT = {"question": torch.ones(64, dtype=torch.bool), "image": torch.ones(64, dtype=torch.bool)}


def _relation_accuracy(fusion: torch.nn.Module, steps: int) -> float:
    """``fusion`` and a linear head trained ``steps`` steps of 64 on the relation toy;
    accuracy on 64 held-out questions."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(fusion.output_dim, 2)
    optimizer = torch.optim.AdamW([*fusion.parameters(), *head.parameters()], lr=3e-3)
    for _ in range(steps):
        outputs, answers = _relation_batch(generator, 64)
        loss = torch.nn.functional.cross_entropy(head(fusion(outputs, PRESENT).pooled),
                                                 answers)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    outputs, answers = _relation_batch(torch.Generator().manual_seed(1), 64)
    with torch.no_grad():
        return float((head(fusion(outputs, PRESENT).pooled).argmax(1) == answers).float()
                     .mean())


@pytest.mark.parametrize(("spatial", "readout", "learns"),
                         [(True, 2, True), (False, 2, False)])
def test_a_placed_decoder_learns_which_object_is_left(spatial: bool, readout: int,
                                                     learns: bool) -> None:
    """Where two named objects lie, compared: the decoder with ``spatial`` and ``readout``
    learns it in a few hundred steps; with the ordered readout but no places it stays at
    chance (and so does ``spatial`` without the readout)."""
    torch.manual_seed(0)
    fusion = AttentionFusion({"question": 8, "image": 8}, hidden=32, heads=2, dropout=0.0,
                             tokens=True, query="question", spatial=spatial, readout=readout)
    accuracy = _relation_accuracy(fusion, STEPS)
    assert (accuracy >= 0.9) if learns else (accuracy <= 0.7)


def test_the_find_fusion_learns_which_object_is_left() -> None:
    """Each word finds its object and reads where it is: the same relation toy is learned
    within 300 steps (measured: 1.00 on held-out batches from step 200)."""
    from polymodal.find_fusion import FindFusion

    torch.manual_seed(0)
    fusion = FindFusion({"image": 8, "question": 8}, query="question", hidden=32, readout=2)
    assert _relation_accuracy(fusion, 300) >= 0.9
    outputs, _ = _relation_batch(torch.Generator().manual_seed(1), 64)
    with torch.no_grad():  # without the image, or without the question: still defined
        for absent in ("image", "question"):
            pooled = fusion(outputs, {**PRESENT, absent: torch.zeros(64, dtype=torch.bool)})
            assert pooled.pooled.isfinite().all()


def test_the_find_fusion_refuses_a_spec_it_cannot_read() -> None:
    from polymodal.errors import SpecError
    from polymodal.find_fusion import FindFusion

    with pytest.raises(SpecError, match="query 'words' is not an input"):
        FindFusion({"question": 8, "image": 8}, query="words")
    with pytest.raises(SpecError, match="objects must name one input"):
        FindFusion({"question": 8, "image": 8, "age": 1}, query="question")
    with pytest.raises(SpecError, match="multiple of heads"):
        FindFusion({"question": 8, "image": 8}, query="question", hidden=30, heads=4)
    with pytest.raises(SpecError, match="query must name"):
        FindFusion({"question": 8, "image": 8})


def test_the_find_fusion_alone_on_one_input_is_a_model() -> None:
    """A modality ablation keeps one input: the question's words alone, or the image's
    pooled vector alone, still give a pooled vector."""
    from polymodal.find_fusion import FindFusion

    outputs, _ = _relation_batch(torch.Generator().manual_seed(2), 4)
    present = torch.ones(4, dtype=torch.bool)
    words_only = FindFusion({"question": 8}, query="question", hidden=16, readout=2)
    image_only = FindFusion({"image": 8}, hidden=16)
    assert words_only({"question": outputs["question"]}, {"question": present}).pooled.shape \
        == (4, 16)
    assert image_only({"image": outputs["image"]}, {"image": present}).pooled.shape == (4, 16)

def test_classification_metrics_and_decoding() -> None:
    task = ClassificationTask(TaskSpec(name="classification", target="y"))
    task.fit(["b", "a", "b", None])
    assert task.labels == ["a", "b"]
    targets = task.collate_targets(["a", "b", "b", "a"], {})
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [3.0, 0.0]])
    metrics = task.metrics()
    metrics.update(task.metric_inputs(logits), targets)
    result = task.finalize_metrics(metrics.compute())
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["confusion_matrix"]["matrix"] == [[2, 0], [1, 1]]
    decoded = task.decode(logits[:1], {})[0]
    assert decoded["label"] == "a" and decoded["scores"]["a"] > 0.8


def test_two_label_metrics_are_for_the_positive_label() -> None:
    """Sensitivity, specificity, AUPRC and calibration follow ``positive``; the targets
    are a, b, b, a and the predictions a, b, a, a (probabilities of b: .12, .88, .12, .05)."""
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [3.0, 0.0]])
    results = {}
    for positive in ("a", "b"):
        task = ClassificationTask(TaskSpec(name="classification", target="y",
                                           options={"positive": positive}))
        task.fit(["a", "b"])
        metrics = task.metrics()
        metrics.update(task.metric_inputs(logits), task.collate_targets(["a", "b", "b", "a"],
                                                                        {}))
        results[positive] = task.finalize_metrics(metrics.compute())
    # b positive: one of two b found (sensitivity 0.5), both a's right (specificity 1).
    assert (results["b"]["sensitivity"], results["b"]["specificity"]) == (0.5, 1.0)
    # a positive: both a's found, one b called a.
    assert (results["a"]["sensitivity"], results["a"]["specificity"]) == (1.0, 0.5)
    assert results["a"]["auroc"] == pytest.approx(results["b"]["auroc"])
    bins = results["b"]["calibration"]["bins"]
    assert results["b"]["calibration"]["positive"] == "b"
    assert sum(b["n"] for b in bins) == 4 and 0 <= results["b"]["ece"] <= 1
    top = next(b for b in bins if b["bin"][0] >= 0.8)
    assert top["n"] == 1 and top["observed_rate"] == 1.0

    from polymodal.errors import DataError

    wrong = ClassificationTask(TaskSpec(name="classification", target="y",
                                        options={"positive": "c"}))
    with pytest.raises(DataError, match="'c' is not a label"):
        wrong.fit(["a", "b"])


def test_classification_refuses_unseen_labels() -> None:
    from polymodal.errors import DataError

    task = ClassificationTask(TaskSpec(name="classification", target="y"))
    task.fit(["a", "b"])
    with pytest.raises(DataError, match="not seen in training: c"):
        task.collate_targets(["c"], {})


def test_regression_metrics_on_original_scale() -> None:
    task = RegressionTask(TaskSpec(name="regression", target="y"))
    task.fit([10, 20, 30])
    outputs = torch.tensor([[-1.0], [0.0], [1.0]])  # standardised predictions
    metrics = task.metrics()
    metrics.update(task.metric_inputs(outputs), torch.tensor([10.0, 20.0, 30.0]))
    result = task.finalize_metrics(metrics.compute())
    assert result["mae"] == pytest.approx(0.0, abs=1e-4)
    assert result["r2"] == pytest.approx(1.0, abs=1e-4)
    assert task.decode(outputs, {})[1]["value"] == pytest.approx(20.0)


def test_components_json_lists_each_option_with_type_and_default() -> None:
    import json

    from tests.conftest import run_cli

    result = run_cli("components", "--json")
    assert result.returncode == 0, result.stderr
    listed = {(c["kind"], c["name"]): c for c in json.loads(result.stdout)}
    options = {o["name"]: o for o in listed[("fusion", "attention")]["options"]}
    assert options["query"]["type"] == "str | None" and options["query"]["default"] is None
    assert options["hidden"] == {"name": "hidden", "type": "int", "default": 128}
    task = {o["name"]: o for o in listed[("task", "classification")]["options"]}
    assert task["label_smoothing"]["default"] == 0.0
    minilm = {o["name"]: o for o in listed[("encoder", "minilm")]["options"]}
    assert minilm["max_length"] == {"name": "max_length", "type": "int", "default": 128}
    assert all("options" in c for c in listed.values() if c["kind"] in ("encoder", "task"))


def test_a_mistyped_option_names_the_key() -> None:
    from polymodal.errors import SpecError
    from polymodal.model import build_task
    from polymodal.spec import parse_spec

    spec = parse_spec({"inputs": [{"name": "x", "modality": "numeric", "encoder": "numeric"}],
                       "fusion": {"name": "concat"},
                       "task": {"name": "classification", "target": "y",
                                "options": {"label_smoothing": "lots"}}})
    with pytest.raises(SpecError, match=r"spec: task.options.label_smoothing: .*'lots'"):
        build_task(spec)


def test_modality_dropout_drops_inputs_at_its_rate_and_never_all_of_a_record() -> None:
    """train.modality_dropout: a present input is dropped at about the rate, an absent one
    stays absent, and every record keeps at least one of the inputs it has."""
    import torch

    from polymodal.model import drop_modalities

    torch.manual_seed(0)
    n = 20_000
    present = {"image": torch.ones(n, dtype=torch.bool),
               "text": torch.arange(n) % 4 != 0,  # a quarter of the records have no text
               "extra": torch.zeros(n, dtype=torch.bool)}
    kept = drop_modalities(present, 0.3)
    both = present["text"]
    assert not kept["extra"].any()
    assert not (kept["text"] & ~present["text"]).any()
    assert (kept["image"] | kept["text"]).all()  # nobody loses everything
    assert kept["image"][~both].all()  # the only input of a record stays
    # dropped alone 0.3 * 0.7 of the time each; both drawn (0.09) -> one of them kept
    dropped_image = 1 - kept["image"][both].float().mean().item()
    assert abs(dropped_image - (0.21 + 0.045)) < 0.02
