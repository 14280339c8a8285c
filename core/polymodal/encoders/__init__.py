"""Encoder contract and the encoders every plugin needs (numeric, categorical)."""

from polymodal.encoders.base import BuildContext, Encoder, EncoderOutput, Processor

__all__ = ["BuildContext", "Encoder", "EncoderOutput", "Processor"]
