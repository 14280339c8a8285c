"""``polymodal nlp generate run|train`` (no torch imported to build the CLI)."""

from __future__ import annotations

from pathlib import Path

import click

from polymodal.cli.commands import json_option, out_dir_option, set_option


@click.group("generate", help="Text generation from a local causal-LM checkpoint folder.")
def generate_group() -> None:
    pass


@generate_group.command("run")
@click.argument("prompts", nargs=-1, required=True)
@click.option("--model", "model_dir", required=True, type=click.Path(),
              help="A local checkpoint folder (or a directory `generate train` wrote).")
@click.option("--max-new-tokens", default=40, show_default=True)
@click.option("--greedy", is_flag=True, help="Greedy decoding instead of sampling.")
@click.option("--temperature", default=1.0, show_default=True)
@click.option("--top-k", default=50, show_default=True)
@click.option("--top-p", default=1.0, show_default=True)
@click.option("--stop", multiple=True, help="Stop at this string (repeatable).")
@click.option("--seed", default=None, type=int)
@click.option("--device", default=None)
@json_option
def run_command(prompts: tuple[str, ...], model_dir: str, max_new_tokens: int, greedy: bool,
                temperature: float, top_k: int, top_p: float, stop: tuple[str, ...],
                seed: int | None, device: str | None, as_json: bool) -> None:
    """Continue each of PROMPTS."""
    from polymodal.cli.output import emit_jsonl
    from polymodal_nlp.generate import Generator, generation_options

    options = generation_options({"max_new_tokens": max_new_tokens, "greedy": greedy,
                                  "temperature": temperature, "top_k": top_k,
                                  "top_p": top_p, "stop": list(stop), "seed": seed})
    texts = Generator(model_dir, device).generate(list(prompts), options)
    if as_json:
        emit_jsonl([{"prompt": p, "text": t} for p, t in zip(prompts, texts, strict=True)])
    else:
        for prompt, text in zip(prompts, texts, strict=True):
            click.echo(f"{prompt}{text}")


@generate_group.command("train")
@click.option("--data", default=None, type=click.Path(),
              help="UTF-8 text file, documents separated by blank lines (default: the "
                   "embedded reviews).")
@click.option("--model", "model", default=None, type=click.Path(),
              help="Checkpoint folder to fine-tune (default: a small GPT-2 from config).")
@out_dir_option("runs/nlp-generate")
@set_option
@click.option("--quick", is_flag=True, help="Tiny smoke run.")
@click.option("--device", default=None)
@json_option
def train_command(data: str | None, model: str | None, out_dir: str,
                  overrides: tuple[str, ...], quick: bool, device: str | None,
                  as_json: bool) -> None:
    """Train or fine-tune; held-out perplexity at the end."""
    from polymodal.cli.output import emit_json, print_metrics
    from polymodal_nlp.generate import train_command_impl

    metrics = train_command_impl(Path(out_dir), data=data, model=model,
                                 overrides=list(overrides), quick=quick, device=device,
                                 log=None if as_json else click.echo)
    if as_json:
        emit_json({"out": out_dir, **{k: v for k, v in metrics.items() if k != "history"}})
    else:
        print_metrics(f"nlp.generate: {out_dir}", metrics["test"])
