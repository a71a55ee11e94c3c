"""Loss goes on assistant tokens only."""

from ptoie.extract.prompt import CHATML, render_example
from ptoie.training.train import IGNORE_INDEX, encode_example, load_tokenizer


def test_only_assistant_tokens_have_labels():
    tokenizer = load_tokenizer("embedded:smollm2")
    triples = [["Ele", "mora", "no Rio"]]
    example = encode_example(tokenizer, "Ele mora no Rio.", triples, CHATML)
    labels = example["labels"]
    n_prompt = labels.index(next(x for x in labels if x != IGNORE_INDEX))
    assert all(x == IGNORE_INDEX for x in labels[:n_prompt])
    assert labels[n_prompt:] == example["input_ids"][n_prompt:]
    _, completion = render_example("Ele mora no Rio.", triples)
    assert tokenizer.decode(labels[n_prompt:]) == completion
