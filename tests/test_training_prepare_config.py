"""prepare (contractions, bad blocks, split, schema) and config validation."""

from pathlib import Path

import pytest

from training.config import ConfigError, TrainConfig
from training.prepare import detokenize, prepare

FIXTURE = Path(__file__).parent / "fixtures" / "training" / "tiny.conll"


def test_prepare_rejoins_contractions_and_counts_bad_block():
    data = prepare([FIXTURE], validation_fraction=0.0)
    assert len(data.bad_blocks) == 1 and "ARG1" in data.bad_blocks[0].reason
    record = next(r for r in data.train if r["sentence"].startswith("Ele"))
    assert record["sentence"] == "Ele mora no Rio."
    assert record["triples"] == [["Ele", "mora", "no Rio"]]
    assert record["messages"][2]["content"] == "Ele | mora | no Rio"


def test_split_is_deterministic_and_by_sentence():
    a = prepare([FIXTURE], validation_fraction=0.5, seed=3)
    b = prepare([FIXTURE], validation_fraction=0.5, seed=3)
    assert [r["id"] for r in a.validation] == [r["id"] for r in b.validation]
    assert len(a.validation) == 1 and len(a.train) == 1


def test_detokenize_punctuation():
    assert detokenize(["Oi", ",", "(", "de", "o", "Rio", ")", "!"]) == "Oi, (do Rio)!"


@pytest.mark.parametrize("raw, field", [
    ({"base_model": "x", "method": "qlora"}, "method"),
    ({"base_model": "x", "lora_r": "8"}, "lora_r"),
    ({"base_model": "x", "learning_rat": 1e-4}, "learning_rat"),
    ({"method": "lora"}, "base_model"),
])
def test_config_errors_name_the_field(raw, field):
    with pytest.raises(ConfigError, match=field):
        TrainConfig.from_dict(raw)
