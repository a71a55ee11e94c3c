"""How often are the within-document mention rules right? (``ptoie.graph.mentions``)

    python bench/mentions.py                       # tests/fixtures/mentions/documents.json
    python bench/mentions.py other.json --verbose

The annotated documents give, for each mention case (a subject written as a pronoun, a definite
description, a noun before a name or a short form of a name), the entity it refers to, or null
when no single entity of the document is meant. Per rule set (``none``: the graph stage's rules;
``recent`` / ``topic``: a description that the document applies to no named entity refers to the
most recent / the first named subject of the document):

* precision: links to the right entity / links made (a link on a case annotated null, or on a
  subject that is no mention case, is wrong);
* coverage: links to the right entity / cases with an entity to link to.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, get_args

from ptoie.graph import canonical
from ptoie.graph.mentions import DescriptionFallback, resolve_document

FIXTURE = Path(__file__).resolve().parents[1] / "tests/fixtures/mentions/documents.json"


def rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The triple records of an annotated document (extraction index: order within a sentence)."""
    records, index = [], {}
    for sentence_id, arg1, rel, arg2, *_ in document["triples"]:
        index[sentence_id] = index.get(sentence_id, -1) + 1
        records.append({"sentence_id": sentence_id, "extraction_index": index[sentence_id],
                        "arg1": arg1, "rel": rel, "arg2": arg2,
                        "sentence": document["sentences"][sentence_id]})
    return records


def score(documents: list[dict[str, Any]], fallback: DescriptionFallback = "none",
          *, verbose: bool = False) -> dict[str, float | int]:
    """Links made, right and wrong, cases with an entity, precision and coverage."""
    made = right = resolvable = 0
    for document in documents:
        records = rows(document)
        found = resolve_document(records, description_fallback=fallback)
        for record, triple in zip(records, document["triples"]):
            gold = triple[4] if len(triple) == 5 else None
            resolvable += gold is not None
            mention = found.get((record["sentence_id"], record["extraction_index"]))
            if mention is None:
                if verbose and gold is not None:
                    print(f"  missed  {document['doc_id']}:{record['sentence_id']} "
                          f"{record['arg1']!r} -> {gold!r}")
                continue
            made += 1
            ok = gold is not None and canonical.subject(gold).key == mention.entity.key
            right += ok
            if verbose and not ok:
                print(f"  WRONG   {document['doc_id']}:{record['sentence_id']} "
                      f"{record['arg1']!r} -> {mention.entity.label!r} ({mention.rule}), "
                      f"annotated {gold!r}")
    return {"links": made, "right": right, "resolvable": resolvable,
            "precision": right / made if made else 1.0,
            "coverage": right / resolvable if resolvable else 0.0}


def load(path: Path = FIXTURE) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["documents"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("documents", nargs="?", type=Path, default=FIXTURE)
    parser.add_argument("--verbose", action="store_true", help="list the wrong and missed links")
    args = parser.parse_args()
    documents = load(args.documents)
    cases = sum(len(t) == 5 for d in documents for t in d["triples"])
    print(f"{args.documents}: {len(documents)} documents, {cases} mention cases")
    for fallback in get_args(DescriptionFallback):
        if args.verbose:
            print(f"{fallback}:")
        s = score(documents, fallback, verbose=args.verbose)
        print(f"description fallback {fallback:<6}: {s['links']} links, {s['right']} right, "
              f"precision {s['precision']:.1%}, coverage {s['right']}/{s['resolvable']} = "
              f"{s['coverage']:.1%}")


if __name__ == "__main__":
    main()
