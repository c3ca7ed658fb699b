"""Word-level tokenizer for the corpus-statistics index, trained offline and saved beside the index.

Text is normalised with :func:`kgrag.text.normalise` (lower case, accents stripped, punctuation to
spaces) before a ``tokenizers`` WordLevel model maps words to ids, at index time and at query time
alike, so matching is case-insensitive and windows are counted in words. A query word that never
occurs in the corpus has no id: its count is 0 (it is never mapped to an "unknown" id).

Example::

    tok = WordTokenizer.train(["Metformin lowers glucose.", "Insulin lowers glucose"])
    tok.encode_query("METFORMIN")        # [id of "metformin"]
    tok.encode_query("Takayasu")         # None: not in the corpus
    tok.save(Path("/tmp/idx/tokenizer.json")); WordTokenizer.load(Path("/tmp/idx/tokenizer.json"))
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from kgrag.text import normalise

UNK = "[UNK]"
NORMALISER = "kgrag.text.normalise"


class WordTokenizer:
    """Normalise, split on spaces, map words to ids (``[UNK]`` is id 0 and never indexed)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tok = tokenizer
        self._unk_id = tokenizer.token_to_id(UNK)

    @classmethod
    def train(cls, texts: Iterable[str]) -> "WordTokenizer":
        """Learn the vocabulary of ``texts`` (every word seen at least once)."""
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        trainer = trainers.WordLevelTrainer(
            vocab_size=1 << 31, special_tokens=[UNK], min_frequency=1, show_progress=False
        )
        tok.train_from_iterator((normalise(t) for t in texts), trainer=trainer)
        return cls(tok)

    @classmethod
    def load(cls, path: Path) -> "WordTokenizer":
        return cls(Tokenizer.from_file(str(path)))

    def save(self, path: Path) -> None:
        self._tok.save(str(path))

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of whole documents (index time)."""
        return [enc.ids for enc in self._tok.encode_batch([normalise(t) for t in texts])]

    def iter_encode(self, texts: Iterable[str], batch: int = 4096) -> Iterator[list[int]]:
        chunk: list[str] = []
        for text in texts:
            chunk.append(text)
            if len(chunk) == batch:
                yield from self.encode_batch(chunk)
                chunk = []
        if chunk:
            yield from self.encode_batch(chunk)

    def encode_query(self, term: str) -> list[int] | None:
        """Ids of a query term; ``None`` when one of its words is not in the corpus vocabulary.

        Raises ``ValueError`` when the term has no words at all after normalisation.
        """
        words = normalise(term).split()
        if not words:
            raise ValueError(f"term {term!r} has no letters or digits to count")
        ids = [self._tok.token_to_id(w) for w in words]
        if any(i is None or i == self._unk_id for i in ids):
            return None
        return [int(i) for i in ids]  # type: ignore[arg-type]
