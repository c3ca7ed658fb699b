"""A real-text corpus of any size for the text-index scale bench, composed from the public passages' sentences.

Rows 1..23,255 are the public corpus itself (PubMedQA contexts and BioASQ snippets, with their
ids, PMIDs, years and MeSH terms), so PubMedQA questions keep their gold passages. The rest are
composed: the public passages are split into sentences (4-16 words each); composed passage ``i``
is one sentence or two (half each, seeded), drawn at random from that pool, and takes the year and
MeSH terms of its first sentence's passage (so filters select realistic shares). No text repeats:
a draw whose text was already written is drawn again. Output: JSONL on ``--out``.

Usage::

    KGRAG_SOURCES_DIR=/work/shared/data python bench/text_scale_corpus.py --n 1000000 --out /work/scale/corpus-1m.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re

import numpy as np

from kgrag.indexes.corpus import load_corpus
from kgrag.settings import load_settings

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, required=True, help="passages in all (public ones first)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    public = load_corpus(load_settings()).passages
    pool: list[tuple[str, int]] = []  # (sentence, passage index)
    for i, passage in enumerate(public):
        for sentence in SENTENCE_END.split(passage.text):
            if 4 <= len(sentence.split()) <= 16:
                pool.append((sentence.strip(), i))
    rng = np.random.default_rng(args.seed)
    seen: set[bytes] = set()
    written = 0
    words = 0
    with open(args.out, "w", encoding="utf-8") as out:
        for passage in public[:args.n]:
            seen.add(hashlib.sha1(passage.text.encode()).digest()[:10])
            out.write(passage.model_dump_json(exclude_none=True) + "\n")
            written += 1
        while written < args.n:
            count = 1 if rng.random() < 0.5 else 2
            picks = [pool[int(j)] for j in rng.integers(0, len(pool), size=count)]
            text = " ".join(sentence for sentence, _ in picks)
            key = hashlib.sha1(text.encode()).digest()[:10]
            if key in seen:
                continue
            seen.add(key)
            first = public[picks[0][1]]
            row = {"id": f"composed:{written}", "text": text, "source": "composed", "year": first.year,
                   "mesh": first.mesh}
            out.write(json.dumps({k: v for k, v in row.items() if v not in (None, [])}) + "\n")
            written += 1
            words += len(text.split())
    composed = written - min(args.n, len(public))
    print(json.dumps({"passages": written, "public": min(args.n, len(public)), "composed": composed,
                      "sentence_pool": len(pool), "composed_mean_words": round(words / max(composed, 1), 1)}))


if __name__ == "__main__":
    main()
