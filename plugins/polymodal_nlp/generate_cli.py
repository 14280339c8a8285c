"""``polymodal nlp generate run`` and ``train --model`` (no torch imported to build the
CLI); the core derives the rest of the scenario's verbs."""

from __future__ import annotations

import click

from polymodal.plugin import json_option


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
    from polymodal.plugin import emit_jsonl
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


def with_train_command() -> click.Group:
    """The group with the core ``train`` of nlp.generate plus ``--model CHECKPOINT`` (a
    local folder to fine-tune); the core adds evaluate and predict."""
    from polymodal.plugin import train_command

    generate_group.add_command(train_command("nlp.generate", {"model": "model={}"}))
    return generate_group
