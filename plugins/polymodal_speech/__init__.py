"""Speech plugin: the ``audio`` modality and speech recognition (pretrained Whisper, a local
transformers checkpoint, pocketsphinx)."""
