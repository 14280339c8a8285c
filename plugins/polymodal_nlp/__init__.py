"""polymodal's built-in NLP plugin: text encoders (``minilm``, ``hf-text``) and NLP scenarios."""

__version__ = "0.1.0"
