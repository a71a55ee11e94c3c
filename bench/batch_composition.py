"""Does a sentence's greedy output depend on the sentences decoded beside it?

    python bench/batch_composition.py --sentences 24

Decodes the first N PUD-100 sentences with the default model (models/default.json), greedy: one at a time
(twice, and once on an ``n_parallel=8`` extractor), then all together in batches of 8 in corpus
order and in reverse order. Prints, per arm, how many sentences' triples differ from the
one-at-a-time run, and a few of the differences. A difference that repeats exactly across
identical runs and stays within the sentence's own words is float arithmetic (llama.cpp sums in a
different order when a decode holds a different number of rows), not leakage between sequences.
"""

from __future__ import annotations

import argparse

from ptoie import Extractor
from ptoie.evaluation import load_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lora-merge", default="q4_0", help="q4_0, q8_0, f16 or none")
    args = parser.parse_args()
    merge = None if args.lora_merge == "none" else args.lora_merge
    sentences = [s.text for s in load_benchmark("pud100").sentences][: args.sentences]

    def triples(results):
        return [tuple((t.arg1, t.rel, t.arg2) for t in r.triples) for r in results]

    arms = {}
    with Extractor(temperature=0, n_parallel=1, n_threads=args.threads, lora_merge=merge) as ex:
        arms["alone"] = triples(ex.extract_batch([s])[0] for s in sentences)
        arms["alone, again"] = triples(ex.extract_batch([s])[0] for s in sentences)
    with Extractor(temperature=0, n_parallel=8, n_threads=args.threads, lora_merge=merge) as ex:
        arms["alone, n_parallel 8"] = triples(ex.extract_batch([s])[0] for s in sentences)
        arms["batches of 8"] = triples(ex.extract_batch(sentences))
        arms["batches of 8, again"] = triples(ex.extract_batch(sentences))
        arms["batches of 8, reversed"] = triples(ex.extract_batch(sentences[::-1]))[::-1]
    reference = arms["alone"]
    for name, outputs in arms.items():
        differ = [i for i, (a, b) in enumerate(zip(reference, outputs)) if a != b]
        print(f"{name:24s} {len(differ):3d}/{len(sentences)} sentences differ from 'alone' {differ}")
        for i in differ[:3]:
            print(f"    alone: {reference[i]}\n    here : {outputs[i]}")


if __name__ == "__main__":
    main()
