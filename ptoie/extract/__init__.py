"""Extraction: a sentence -> the model's answer -> triples.

* ``config``          :class:`ModelConfig` and :class:`DecodingConfig`, the extractor's settings
* ``prompt``          THE conversation format (ChatML, Gemma), shared by training and inference
* ``answer_grammar``  the GBNF grammar that constrains the answer's lines
* ``parser``          the answer -> :class:`ptoie.triple.Triple` (never raises; counts what it drops)
* ``default_model``   which model and adapter ``Extractor()`` loads when none is given
* ``lora_merge``      merges a LoRA adapter GGUF into its base GGUF once (cached)
* ``generation``      what the backend returns per prompt, and the confidence of each answer line
* ``_backend``        llama.cpp: continuous batching, shared prompt prefix, stop texts (private)
* ``extractor``       :class:`Extractor`, the public class over the backend
"""
