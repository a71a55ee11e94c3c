"""Training: TransAlign CoNLL -> ChatML/Gemma JSONL -> LoRA or full fine-tuning -> GGUF.

Needs the ``train`` extra (torch, transformers, peft, accelerate).

* ``conll``          the TransAlign CoNLL reader
* ``prepare``        CoNLL -> training records (the prompt of :mod:`ptoie.extract.prompt`)
* ``config``         ``TrainConfig``: a YAML recipe (training/configs/) validated field by field
* ``base``           the base model: an embedded GGUF de-quantised once, or a Hugging Face folder
* ``train``          the training loop (checkpoints, resume)
* ``export``         a run -> GGUF files for llama.cpp (``ptoie-train export``)
* ``export_model``   a full or merged model -> model GGUF (hyper-parameters, tokenizer)
* ``export_adapter`` a peft LoRA <-> llama.cpp LoRA-adapter GGUF
* ``gguf_layout``    architectures, tensor names, q/k row order shared by both exports
* ``generate_hf``    greedy answers with transformers (checks the export against llama.cpp)
"""
