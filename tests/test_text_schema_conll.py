"""Portuguese text helpers, schemas loaded from schemas/, CoNLL readers."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pyarrow as pa
import pytest

from ptoie.training.conll import read_conll
from ptoie.extract.prompt import build_messages
from ptoie.schema import rdf_vocabulary, training_record_schema, triple_schema
from ptoie.text.tokens import find_span, join_contractions, normalize_for_match, split_contractions
from ptoie.triple import Triple

REPO = Path(__file__).resolve().parents[1]


def test_contractions_join_and_split():
    assert join_contractions("os clientes de o Banco de a Escócia".split()) == \
        "os clientes do Banco da Escócia".split()
    assert join_contractions(["Em", "a", "casa"]) == ["Na", "casa"]
    assert join_contractions(["a", "a", "escola"]) == ["à", "escola"]
    assert join_contractions(["por", "os", "campos"]) == ["pelos", "campos"]
    assert split_contractions(["Do", "Porto"]) == ["De", "o", "Porto"]
    assert normalize_for_match("Do Porto") == normalize_for_match("de o porto")


def test_find_span():
    s = "Ele mora na cidade do Porto."
    assert find_span("cidade do Porto", s) == (12, 27)
    assert find_span("em a cidade de o porto", s) == (9, 27)
    assert find_span("Lisboa", s) is None
    assert find_span("   ", s) is None


def test_triple_schema_is_loaded_from_the_schema_file():
    spec = json.loads((REPO / "schemas" / "triple.schema.json").read_text())
    schema = triple_schema()
    assert schema.names == [f["name"] for f in spec["fields"]]
    assert schema.field("confidence").type == pa.float64()
    assert not schema.field("arg1").nullable and schema.field("arg1_start").nullable
    record = Triple("a", "b", "c", confidence=0.5, arg1_span=(0, 1)).to_record(
        doc_id="d", sentence_id=0, sentence="a b c", extraction_index=0, model_id="m")
    assert list(record) == schema.names
    table = pa.Table.from_pylist([record], schema=schema)
    assert table.num_rows == 1


def test_training_record_schema_accepts_a_prompt_record():
    record = {"id": "carb-0", "source": "carb.conll", "sentence": "O gato dorme.",
              "triples": [["O gato", "dorme", "em casa"]],
              "messages": build_messages("O gato dorme.", [("O gato", "dorme", "em casa")])}
    jsonschema.validate(record, training_record_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**record, "triples": [["só", "dois"]]}, training_record_schema())


def test_rdf_vocabulary_names_its_namespaces():
    vocab = rdf_vocabulary()
    assert vocab["entity_namespace"] in vocab["prefixes"]
    assert vocab["relation_namespace"] in vocab["prefixes"]


BIOES = """O\tx\tx\tx\tx\tx\tx\tx\tB-ARG0\t-
gato\tx\tx\tx\tx\tx\tx\tx\tE-ARG0\t-
mora\tx\tx\tx\tx\tx\tx\tx\tS-V\t-
em\tx\tx\tx\tx\tx\tx\tx\tB-ARG1\t-
a\tx\tx\tx\tx\tx\tx\tx\tI-ARG1\t-
casa\tx\tx\tx\tx\tx\tx\tx\tE-ARG1\t-

O\tx\tx\tx\tx\tx\tx\tx\tB-ARG0\t-
gato\tx\tx\tx\tx\tx\tx\tx\tE-ARG0\t-
mora\tx\tx\tx\tx\tx\tx\tx\tS-V\t-
em\tx\tx\tx\tx\tx\tx\tx\tO\t-
a\tx\tx\tx\tx\tx\tx\tx\tO\t-
casa\tx\tx\tx\tx\tx\tx\tx\tO\t-

O\tx\tx\tx\tx\tx\tx\tx\tB-ARG0\t-
gato\tx\tx\tx\tx\tx\tx\tx\tI-ARG0\t-
mora\tx\tx\tx\tx\tx\tx\tx\tS-V\t-
em\tx\tx\tx\tx\tx\tx\tx\tS-ARG1\t-
a\tx\tx\tx\tx\tx\tx\tx\tO\t-
casa\tx\tx\tx\tx\tx\tx\tx\tO\t-
"""


def test_bioes_reader_groups_blocks_and_reports_bad_ones(tmp_path):
    path = tmp_path / "mini.conll"
    path.write_text(BIOES, encoding="utf-8")
    data = read_conll(path)
    assert data.n_blocks == 3
    assert len(data.sentences) == 1
    assert data.sentences[0].extractions == [(["O", "gato"], ["mora"], ["em", "a", "casa"])]
    assert [str(b) for b in data.bad_blocks] == [
        "mini.conll:8: missing ARG1 span",
        "mini.conll:15: span ARG0 opened at token 0 is never closed",
    ]


DATA = REPO.parent / "shared" / "data"


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data not present")
def test_transalign_counts_match_the_data_readme():
    expected_blocks = {"carb.conll": 715, "dev.conll": 253, "ls_dev.conll": 2873,
                       "ls_test.conll": 3282, "s2_TA_valid.conll": 922}
    for name, blocks in expected_blocks.items():
        data = read_conll(DATA / "transalign" / name)
        assert data.n_blocks == blocks, name
        assert data.n_extractions + data.duplicate_blocks + len(data.bad_blocks) == blocks
        assert not data.bad_blocks


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data not present")
def test_pud_tagged_conll_has_100_sentences():
    data = read_conll(DATA / "pud100" / "pud100_tagged.conll")
    assert len(data.sentences) == 100
