"""Portuguese sentence splitting and the corpus readers (txt / jsonl / parquet, gz, bad input)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ptoie.corpus import CorpusOptions, CorpusProblem, Document, file_kind, read_corpus
from ptoie.text.sentences import limit_length, split_sentences


def sentences(text: str, **kwargs) -> list[str]:
    return split_sentences(text, **kwargs).sentences


# -- sentence splitting -----------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("O Sr. Silva chegou cedo. A Sra. Costa chegou tarde.",
     ["O Sr. Silva chegou cedo.", "A Sra. Costa chegou tarde."]),
    ("A Dra. Ana Lima e o Dr. Paulo operaram o doente. O Prof. Rui deu a aula.",
     ["A Dra. Ana Lima e o Dr. Paulo operaram o doente.", "O Prof. Rui deu a aula."]),
    ("Há vários exemplos, p. ex. o da pág. 12 e o do art. 5.º da Constituição. Leia-os.",
     ["Há vários exemplos, p. ex. o da pág. 12 e o do art. 5.º da Constituição.", "Leia-os."]),
    ("O n.º 7 da rua ficou vazio. A casa do séc. XIX foi demolida.",
     ["O n.º 7 da rua ficou vazio.", "A casa do séc. XIX foi demolida."]),
    ("Roma foi fundada em 753 a.C. por Rómulo, segundo a lenda. Cresceu durante séculos.",
     ["Roma foi fundada em 753 a.C. por Rómulo, segundo a lenda.", "Cresceu durante séculos."]),
    ("A cidade foi fundada em 753 a.C. Depois tornou-se um império.",
     ["A cidade foi fundada em 753 a.C.", "Depois tornou-se um império."]),
    ("Os E.U.A. e o Canadá assinaram o acordo. O México também.",
     ["Os E.U.A. e o Canadá assinaram o acordo.", "O México também."]),
    ("Comprou maçãs, peras, uvas etc. e voltou para casa. Eram 10 h.",
     ["Comprou maçãs, peras, uvas etc. e voltou para casa.", "Eram 10 h."]),
    ("D. Pedro I proclamou a independência. J. K. Rowling escreveu Harry Potter.",
     ["D. Pedro I proclamou a independência.", "J. K. Rowling escreveu Harry Potter."]),
    ("Reinava o rei D. Manuel I. Vasco da Gama está sepultado no mosteiro.",
     ["Reinava o rei D. Manuel I.", "Vasco da Gama está sepultado no mosteiro."]),
    ("A rainha D. Maria II. Depois veio D. João V. O ouro do Brasil pagou o convento.",
     ["A rainha D. Maria II.", "Depois veio D. João V.", "O ouro do Brasil pagou o convento."]),
    ("O livro de John F. Kennedy e o de Mr. Fingers saíram. Fim da lista.",
     ["O livro de John F. Kennedy e o de Mr. Fingers saíram.", "Fim da lista."]),
])
def test_abbreviations_initials_and_siglas(text, expected):
    assert sentences(text) == expected


def test_decimals_do_not_split():
    assert sentences("A taxa subiu 3,5 pontos em 2023. O preço era 3.5 euros. Pagou 1.250,00 reais.") \
        == ["A taxa subiu 3,5 pontos em 2023.", "O preço era 3.5 euros.", "Pagou 1.250,00 reais."]


def test_ellipses_split_only_before_a_new_sentence():
    assert sentences("Ele hesitou... e depois saiu. Ela ficou calada… Pensou muito. Esperou...") \
        == ["Ele hesitou... e depois saiu.", "Ela ficou calada…", "Pensou muito.", "Esperou..."]


def test_quotes_and_parentheses_after_the_period():
    text = ('O poeta escreveu: «O poeta é um fingidor.» Muitos citam o verso. '
            'Ela respondeu “Não sei.” E saiu. (Ver o capítulo 2.) O autor concorda. '
            'Disse "Vou." Foi.')
    assert sentences(text) == ["O poeta escreveu: «O poeta é um fingidor.»", "Muitos citam o verso.",
                               "Ela respondeu “Não sei.”", "E saiu.", "(Ver o capítulo 2.)",
                               "O autor concorda.", 'Disse "Vou."', "Foi."]


def test_questions_exclamations_and_dialogue():
    assert sentences("— Quem és tu? — perguntou ele. — Sou o rei! — respondeu. Que dia! Vamos?") \
        == ["— Quem és tu? — perguntou ele.", "— Sou o rei! — respondeu.", "Que dia!", "Vamos?"]


def test_paragraphs_and_wrapped_lines():
    text = "Título sem ponto\n\nA primeira frase\ncontinua na linha seguinte. Segunda.\n\n\nFim"
    assert sentences(text) == ["Título sem ponto", "A primeira frase continua na linha seguinte.",
                               "Segunda.", "Fim"]


def test_words_that_look_like_abbreviations_still_end_sentences():
    assert sentences("Ele olhou para o mar. Depois saiu. Ela tinha um dom. Tocava piano.") \
        == ["Ele olhou para o mar.", "Depois saiu.", "Ela tinha um dom.", "Tocava piano."]


def test_long_sentence_is_cut_at_semicolons_then_colons_then_commas():
    clauses = ["o rio nasce na serra e corre para o norte durante muitos quilómetros"] * 3
    text = "; ".join(clauses) + "."
    split = split_sentences(text, max_chars=80)
    assert split.too_long == []
    assert split.sentences == [clauses[0] + ";", clauses[1] + ";", clauses[2] + "."]
    assert all(len(s) <= 80 for s in split.sentences)

    # no ; or : at all -> cut at commas, pieces packed up to the limit
    fits, too_long = limit_length(", ".join(["a cidade cresceu"] * 10), 40)
    assert too_long == [] and all(len(p) <= 40 for p in fits)
    assert " ".join(fits) == ", ".join(["a cidade cresceu"] * 10)


def test_long_sentence_without_separators_is_left_out():
    blob = "Palavra" + "palavra" * 200
    split = split_sentences(f"Uma frase normal. {blob}. Outra frase.", max_chars=100)
    assert split.sentences == ["Uma frase normal.", "Outra frase."]
    assert split.too_long == [blob + "."]


def test_skip_policy_leaves_long_sentences_out_whole():
    text = "Curta. " + "Uma oração; " + "; ".join(["uma oração bastante comprida aqui"] * 5) + "."
    split = split_sentences(text, max_chars=60, long_sentences="skip")
    assert split.sentences == ["Curta."] and len(split.too_long) == 1


# -- corpus readers ---------------------------------------------------------------------------
def _items(*inputs, **options):
    return list(read_corpus(inputs, CorpusOptions(**options)))


def _docs(items):
    return [i for i in items if isinstance(i, Document)]


def _problems(items):
    return [i for i in items if isinstance(i, CorpusProblem)]


def test_file_kind_handles_gz():
    assert file_kind(Path("a/b.JSONL.gz")) == ("jsonl", True)
    assert file_kind(Path("a/b.txt")) == ("txt", False)
    assert file_kind(Path("a/b.csv"))[0] is None


def test_all_formats_recursive_with_stable_ids(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.txt").write_text("Lisboa é a capital de Portugal.", encoding="utf-8")
    (corpus / "sub" / "b.txt.gz").write_bytes(gzip.compress("O Porto fica no Norte.".encode()))
    (corpus / "c.jsonl").write_text(
        json.dumps({"id": "x1", "body": "Primeiro."}) + "\n\n" + json.dumps({"body": "Segundo."}) + "\n",
        encoding="utf-8")
    (corpus / "d.jsonl.gz").write_bytes(gzip.compress(json.dumps({"body": "Terceiro."}).encode()))
    pq.write_table(pa.table({"body": ["Quarto.", "Quinto."], "id": ["p1", None]}),
                   corpus / "e.parquet")
    (corpus / "notes.md").write_text("ignored")
    (corpus / ".hidden.txt").write_text("ignored")

    items = _items(corpus, text_field="body")
    assert _problems(items) == []
    assert [(d.doc_id, d.text) for d in _docs(items)] == [
        ("a.txt", "Lisboa é a capital de Portugal."),
        ("x1", "Primeiro."),
        ("c.jsonl:3", "Segundo."),
        ("d.jsonl.gz:1", "Terceiro."),
        ("p1", "Quarto."),
        ("e.parquet:2", "Quinto."),
        ("sub/b.txt.gz", "O Porto fica no Norte."),
    ]
    # ids do not depend on the working directory; a file argument is relative to its folder
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        again = _items("corpus", text_field="body")
    finally:
        os.chdir(cwd)
    assert [d.doc_id for d in _docs(again)] == [d.doc_id for d in _docs(items)]
    assert [d.doc_id for d in _docs(_items(corpus / "sub" / "b.txt.gz"))] == ["b.txt.gz"]


def test_bad_input_is_reported_with_file_and_line_and_the_rest_is_read(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "01_latin1.txt").write_bytes("Ola\nCoração de São Paulo".encode("latin-1"))
    (corpus / "02_binary.txt").write_bytes(b"PK\x03\x04\x00\x00binary")
    (corpus / "03_empty.txt").write_text("  \n\n")
    (corpus / "04_huge_line.txt").write_bytes(b"Uma linha.\n" + b"a" * 1_048_576 + b"\n")
    (corpus / "05_good.txt").write_text("Uma frase boa.", encoding="utf-8")
    (corpus / "06_mixed.jsonl").write_bytes(
        b'{"text": "Boa."}\n'
        b'not json\n'
        b'["a list"]\n'
        b'{"body": "sem campo text"}\n'
        + b'{"text": "' + b"x" * 1_048_576 + b'"}\n'
        + b'{"text": "caf\xe9"}\n'
        b'{"text": ""}\n'
        b'{"text": "Ainda lido."}\n')
    (corpus / "07_truncated.jsonl.gz").write_bytes(
        gzip.compress(b'{"text": "Antes do corte."}\n' * 50)[:-20])
    (corpus / "08_bad.parquet").write_bytes(b"PAR1 not really")
    pq.write_table(pa.table({"body": ["x"]}), corpus / "09_nocol.parquet")

    items = _items(corpus, tmp_path / "missing.txt", max_line_bytes=100_000)
    docs, problems = _docs(items), _problems(items)
    assert [d.text for d in docs] == ["Uma frase boa.", "Boa.", "Ainda lido."] + \
        ["Antes do corte."] * sum(d.doc_id.startswith("07_") for d in docs)
    assert any(d.doc_id.startswith("07_") for d in docs)  # read up to the corruption
    by_source = {p.source.replace(str(corpus) + "/", ""): p for p in problems}
    assert by_source["01_latin1.txt:2"].kind == "undecodable"
    assert "iconv" in by_source["01_latin1.txt:2"].message
    assert by_source["02_binary.txt:1"].kind == "binary"
    assert by_source["03_empty.txt"].kind == "empty"
    assert by_source["04_huge_line.txt:2"].kind == "line_too_long"
    assert "--max-line-bytes" in by_source["04_huge_line.txt:2"].message
    assert by_source["06_mixed.jsonl:2"].kind == "bad_record"
    assert by_source["06_mixed.jsonl:3"].kind == "bad_record"
    assert "--text-field" in by_source["06_mixed.jsonl:4"].message
    assert by_source["06_mixed.jsonl:5"].kind == "line_too_long"
    assert by_source["06_mixed.jsonl:6"].kind == "undecodable"
    assert by_source["06_mixed.jsonl:7"].kind == "empty"
    assert by_source["07_truncated.jsonl.gz"].scope == "file"
    assert by_source["08_bad.parquet"].kind == "bad_file"
    assert "--text-field" in by_source["09_nocol.parquet"].message
    assert by_source[str(tmp_path / "missing.txt")].kind == "unreadable"
    assert len(problems) == 14


def test_unreadable_path_inside_a_directory_is_a_problem(tmp_path):
    (tmp_path / "ok.txt").write_text("Uma frase.", encoding="utf-8")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere.txt")  # dangling: cannot be opened
    items = _items(tmp_path)
    assert [d.doc_id for d in _docs(items)] == ["ok.txt"]
    [problem] = _problems(items)
    assert problem.source == str(tmp_path / "gone.txt") and problem.kind == "unreadable"
    assert "cannot read" in problem.message and problem.scope == "file"
