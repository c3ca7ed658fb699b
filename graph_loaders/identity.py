"""Identity merging: one node per disease and per gene, whatever vocabulary a source uses.

Diseases: Disease Ontology ids are canonical where one exists; a MONDO term without a DOID is
its own canonical id; any other vocabulary (UMLS, MeSH, OMIM, Orphanet, EFO, ...) is mapped to a
canonical id through the DO cross-references first, then MONDO's exact-match mappings and
cross-references (one hop: xref -> MONDO -> DOID). The first mapping recorded for an xref wins,
so DO's own xrefs take precedence over MONDO's.

Genes: canonical id ``NCBIGene:<Entrez>``; HGNC ids, Ensembl gene ids, official symbols and
(unambiguous) synonyms from ``Homo_sapiens.gene_info`` all resolve to it, so a symbol renamed
since a source was made still finds its gene.

Example::

    diseases = DiseaseIdentity()
    diseases.add_doid("DOID:9008")
    diseases.add_xref("UMLS_CUI:C0003872", "DOID:9008")
    diseases.canonical("umls:C0003872")   # 'DOID:9008'
"""

from __future__ import annotations

_PREFIX_ALIASES = {
    "UMLS_CUI": "UMLS",
    "MSH": "MESH",
    "MIM": "OMIM",
    "ORDO": "ORPHANET",
    "ORPHA": "ORPHANET",
    "ORPHANET": "ORPHANET",
    "NCIT": "NCI",
}


def normalise_xref(raw: str) -> str | None:
    """``umls:C0003872`` -> ``UMLS:C0003872``, ``MSH:D1`` -> ``MESH:D1``, ``MIM:1`` -> ``OMIM:1``; None if no prefix."""
    text = raw.strip().strip('"')
    prefix, sep, local = text.partition(":")
    if not sep or not prefix or not local:
        return None
    prefix = prefix.upper()
    if prefix.startswith("SNOMEDCT"):
        prefix = "SNOMEDCT"
    prefix = _PREFIX_ALIASES.get(prefix, prefix)
    return f"{prefix}:{local.strip()}"


class DiseaseIdentity:
    """Maps disease ids of any vocabulary to the canonical node id (DOID, else MONDO)."""

    def __init__(self) -> None:
        self.doids: set[str] = set()
        self._alt: dict[str, str] = {}
        self._mondo: dict[str, str] = {}
        self._xref: dict[str, str] = {}

    def add_doid(self, doid: str) -> None:
        self.doids.add(doid)

    def add_alt(self, alt_id: str, doid: str) -> None:
        """An obsolete/alternative DOID that now means ``doid``."""
        if alt_id not in self.doids:
            self._alt.setdefault(alt_id, doid)

    def add_xref(self, xref: str, canonical: str) -> None:
        """Record that ``xref`` (any vocabulary) names the disease ``canonical``; first mapping wins."""
        key = normalise_xref(xref)
        if key and not key.startswith(("DOID:", "MONDO:")):
            self._xref.setdefault(key, canonical)

    def add_mondo(self, mondo: str, doid: str | None) -> None:
        """A MONDO term, with its DOID exact match if it has one (first match wins)."""
        doid = self._alt.get(doid, doid) if doid else None
        if doid:
            current = self._mondo.get(mondo)
            if current is None or current.startswith("MONDO:"):
                self._mondo[mondo] = doid
        else:
            self._mondo.setdefault(mondo, mondo)

    def canonical(self, raw: str) -> str | None:
        """The canonical id for ``raw`` (any supported vocabulary), or None when it is unknown."""
        key = normalise_xref(raw)
        if key is None:
            return None
        if key.startswith("DOID:"):
            return self._alt.get(key, key)
        if key.startswith("MONDO:"):
            return self._mondo.get(key)
        found = self._xref.get(key)
        if found is not None and found.startswith("MONDO:"):
            return self._mondo.get(found, found)
        return found

    def __len__(self) -> int:
        return len(self._xref)


class GeneIdentity:
    """Maps Entrez ids, HGNC ids, Ensembl gene ids, symbols and synonyms to ``NCBIGene:<id>``."""

    def __init__(self) -> None:
        self.symbols: dict[str, str] = {}  # NCBIGene id -> official symbol
        self._by_symbol: dict[str, str] = {}
        self._by_synonym: dict[str, str | None] = {}  # None marks an ambiguous synonym
        self._by_xref: dict[str, str] = {}

    def add_gene(self, entrez: str, symbol: str, synonyms: list[str], xrefs: list[str]) -> str:
        """Register one gene from gene_info; returns its canonical id."""
        gene_id = f"NCBIGene:{entrez}"
        self.symbols[gene_id] = symbol
        self._by_symbol.setdefault(symbol.upper(), gene_id)
        for syn in synonyms:
            key = syn.upper()
            if key in self._by_synonym and self._by_synonym[key] != gene_id:
                self._by_synonym[key] = None
            else:
                self._by_synonym[key] = gene_id
        for xref in xrefs:
            key = normalise_xref(xref)
            if key:
                self._by_xref.setdefault(key, gene_id)
        return gene_id

    def by_entrez(self, entrez: str) -> str:
        return f"NCBIGene:{entrez.strip()}"

    def by_symbol(self, symbol: str) -> str | None:
        """Official symbol first, then an unambiguous synonym (old or new name)."""
        key = symbol.strip().upper()
        if not key:
            return None
        return self._by_symbol.get(key) or self._by_synonym.get(key)

    def by_xref(self, xref: str) -> str | None:
        """``HGNC:5``, ``hgnc:5``, ``Ensembl:ENSG...`` -> canonical id."""
        key = normalise_xref(xref)
        return self._by_xref.get(key) if key else None
