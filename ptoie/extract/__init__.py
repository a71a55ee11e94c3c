"""Extraction: a sentence -> the model's answer -> triples.

* ``prompt``          THE conversation format (ChatML, Gemma), shared by training and inference
* ``answer_grammar``  the GBNF grammar that constrains the answer's lines
* ``parser``          the answer -> :class:`ptoie.triple.Triple` (never raises; counts what it drops)
* ``default_model``   which model and adapter ``Extractor()`` loads when none is given
* ``lora_merge``      merges a LoRA adapter GGUF into its base GGUF once (cached)
* ``_backend``        llama.cpp: continuous batching, shared prompt prefix, confidences (private)
* ``extractor``       :class:`Extractor`, the public class over the backend
"""
