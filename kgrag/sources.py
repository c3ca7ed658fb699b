"""Where the public data files come from: a local mirror (``KGRAG_SOURCES_DIR``) or their public URLs.

``source_path(settings, "kg_sources/disgenet_2015/curated_gene_disease_associations.txt.gz")``
returns the local file. With ``sources_dir`` set, the file must be there (a missing file is a
:class:`SourceFileError` naming the file and the setting). With it unset, the public original is
downloaded once into ``<home>/sources`` (same layout) and its SHA-256 checked. Files that are a
split or subset made for this project (benchmark development splits, the Hetionet edge subset)
have no public URL of identical content and must come from a mirror.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path

from kgrag.errors import SourceFileError
from kgrag.settings import Settings

# relative path -> (public URL or None, sha256 of the file)
SOURCE_FILES: dict[str, tuple[str | None, str]] = {
    'kg_sources/disease_ontology_2015/HumanDO.obo': ('https://raw.githubusercontent.com/dhimmel/disease-ontology/052ffcc960f5897a0575f5feff904ca84b7d2c1d/download/HumanDO.obo', '220921d830b1b8c71054e5e3fc73f0774ce35e2406f4e33eda18021a50535364'),
    'kg_sources/disease_ontology_2015/doid_xref.txt': ('https://raw.githubusercontent.com/dhimmel/disease-ontology/052ffcc960f5897a0575f5feff904ca84b7d2c1d/download/DO_info_files/doid_xref.txt', 'a4ed552d51c40ca49093fac356ad8596493571a3c05ea92de8d0352cc693e3da'),
    'kg_sources/disease_ontology_2015/slim-terms.tsv': ('https://raw.githubusercontent.com/dhimmel/disease-ontology/052ffcc960f5897a0575f5feff904ca84b7d2c1d/data/slim-terms.tsv', 'dc5a36f6257bbf92d2bd27c8d18a6e380c6e38dfcb4425aa0932af1276edf309'),
    'kg_sources/disease_ontology_2015/term-names.tsv': ('https://raw.githubusercontent.com/dhimmel/disease-ontology/052ffcc960f5897a0575f5feff904ca84b7d2c1d/data/term-names.tsv', '575576639a92e629aa1cde903e4071d51dbc597e77b979979e22572b0c4cb705'),
    'kg_sources/disease_ontology_2015/xrefs.tsv': ('https://raw.githubusercontent.com/dhimmel/disease-ontology/052ffcc960f5897a0575f5feff904ca84b7d2c1d/data/xrefs.tsv', '5c40e411c58dab27fda5efd5bd061ece134d3e7fa8dfe210baaee9d4a3407a91'),
    'kg_sources/disease_ontology_current/HumanDO.tsv': ('https://raw.githubusercontent.com/DiseaseOntology/HumanDiseaseOntology/9fbefd6651b79526165453395d06c8fd4bfe4247/DOreports/HumanDO.tsv', 'c862a3523b0308ae82df6ffd5b0781af83cc561a9e9aa2b25a3cee7e2b33452d'),
    'kg_sources/disease_ontology_current/MESHinDO.tsv': ('https://raw.githubusercontent.com/DiseaseOntology/HumanDiseaseOntology/9fbefd6651b79526165453395d06c8fd4bfe4247/DOreports/MESHinDO.tsv', 'd4f522b788b3ed620c6ca3c174da9de30a26cf21597f76ccbc6321d2f5fa752b'),
    'kg_sources/disease_ontology_current/OMIMinDO.tsv': ('https://raw.githubusercontent.com/DiseaseOntology/HumanDiseaseOntology/9fbefd6651b79526165453395d06c8fd4bfe4247/DOreports/OMIMinDO.tsv', 'd0463af282294e071da29d9378e443918a3473cad91369ea0220833ae09cb62f'),
    'kg_sources/disease_ontology_current/OrphanetinDO.tsv': ('https://raw.githubusercontent.com/DiseaseOntology/HumanDiseaseOntology/9fbefd6651b79526165453395d06c8fd4bfe4247/DOreports/OrphanetinDO.tsv', '81d00e0f2589ea848cce5008abee2832713af61e3c2b0f3b4aba92931b3faffa'),
    'kg_sources/disease_ontology_current/allXREFinDO.tsv': ('https://raw.githubusercontent.com/DiseaseOntology/HumanDiseaseOntology/9fbefd6651b79526165453395d06c8fd4bfe4247/DOreports/allXREFinDO.tsv', '5cc96c482609e61fe89bb929bc11fd9a4006018b44631b0c22766ea4b09c986c'),
    'kg_sources/disgenet_2015/curated_gene_disease_associations.txt.gz': ('https://raw.githubusercontent.com/dhimmel/disgenet/a636cc0912105e2b8d8c6f2a99ea0b9444fdd412/download/curated_gene_disease_associations.txt.gz', 'c7989f4c9b73f17302852ba2ef3abaf0fa31f86538db60aca7dd22ede2c0af9f'),
    'kg_sources/disgenet_2015/readme.txt': ('https://raw.githubusercontent.com/dhimmel/disgenet/a636cc0912105e2b8d8c6f2a99ea0b9444fdd412/download/readme.txt', 'bcfae395b11e6f11541d125b4b4758200a7bdf9af5aa75fb9b3a384cd689b107'),
    'kg_sources/disgenet_2015/unmapped-umls.tsv': ('https://raw.githubusercontent.com/dhimmel/disgenet/a636cc0912105e2b8d8c6f2a99ea0b9444fdd412/data/unmapped-umls.tsv', '9a5698d1a520557ef2070cc682ece812e41ba5dfdf86a6c6b2f6c2c6b0b84607'),
    'kg_sources/genes_entrez_2016/Homo_sapiens.gene_info.gz': ('https://raw.githubusercontent.com/dhimmel/entrez-gene/a7362748a34211e5df6f2d185bb3246279760546/download/Homo_sapiens.gene_info.gz', 'b63c9f3c7c0f78df1829b3a69baddd6d2b287ac8ae336b5023732ddd206d7105'),
    'kg_sources/genes_entrez_2016/LICENSE.md': ('https://raw.githubusercontent.com/dhimmel/entrez-gene/a7362748a34211e5df6f2d185bb3246279760546/LICENSE.md', 'eb98518f32a371b0acfbc692008076ae46ace7d246408b3b7213ffc7fadbeb18'),
    'kg_sources/gwas_catalog_2015/diseases.tsv': ('https://raw.githubusercontent.com/dhimmel/gwas-catalog/b6ebe8d7ccbcd5e7e2e5a1923423e028914bc924/data/diseases.tsv', 'ad65b30f6aa5032ef299d118adda1c5b0a4992da9647a7b4c20481a9194c2cb2'),
    'kg_sources/gwas_catalog_2015/gene-associations.tsv': ('https://raw.githubusercontent.com/dhimmel/gwas-catalog/b6ebe8d7ccbcd5e7e2e5a1923423e028914bc924/data/gene-associations.tsv', '5b622023342675a73ff5e9906fa477b33bce9a5bad73d7d86f77fba1f7ecb4c7'),
    'kg_sources/gwas_catalog_2015/gwas_catalog_v1.0.1-downloaded_2015-06-08.tsv.gz': ('https://raw.githubusercontent.com/dhimmel/gwas-catalog/b6ebe8d7ccbcd5e7e2e5a1923423e028914bc924/download/gwas_catalog_v1.0.1-downloaded_2015-06-08.tsv.gz', '6cf3d520e254dbadab586f22724658d9af75130d7aa32cbe530b14fc15286bae'),
    'kg_sources/gwas_catalog_2015/snp-associations.tsv': ('https://raw.githubusercontent.com/dhimmel/gwas-catalog/b6ebe8d7ccbcd5e7e2e5a1923423e028914bc924/data/snp-associations.tsv', 'ff66ecbe1876fbf5fb662a9d6210afcdab7dbcd1178e0bc837910fa09055ec9d'),
    'kg_sources/indications_pharmacotherapydb/catalog_diseases.tsv': ('https://raw.githubusercontent.com/dhimmel/indications/11d535ba0884ee56c3cd5756fdfb4985f313bd80/catalog/diseases.tsv', 'bcc14a8c31e94f579597ae3d9c23668be8d1da8774e18957f5c07fc59c1afbd4'),
    'kg_sources/indications_pharmacotherapydb/catalog_drugs.tsv': ('https://raw.githubusercontent.com/dhimmel/indications/11d535ba0884ee56c3cd5756fdfb4985f313bd80/catalog/drugs.tsv', 'dc79c39d860b249989fed09db7c0142eb170547349b2eea6e065000a12d572a4'),
    'kg_sources/indications_pharmacotherapydb/catalog_indications.tsv': ('https://raw.githubusercontent.com/dhimmel/indications/11d535ba0884ee56c3cd5756fdfb4985f313bd80/catalog/indications.tsv', 'bc956b0092fab88975a07932b89382a0ed593d3d21df23395440cfd9a067a917'),
    'kg_sources/indications_pharmacotherapydb/ehrlink_data_indications.tsv': ('https://raw.githubusercontent.com/dhimmel/indications/11d535ba0884ee56c3cd5756fdfb4985f313bd80/ehrlink/data/indications.tsv', '5d83e60bd8ba6a09e295ad07cbcaf9899a99b74f10ad47098b8f9cd9d84a87e2'),
    'kg_sources/indications_pharmacotherapydb/labeledin_data_indications.tsv': ('https://raw.githubusercontent.com/dhimmel/indications/11d535ba0884ee56c3cd5756fdfb4985f313bd80/labeledin/data/indications.tsv', 'a5bf11a738b6cdb37ff58598058aff85746a44bedcf6ab010eef4d96ec7a4495'),
    'kg_sources/jensenlab_diseases/2024_human_disease_experiments_filtered.tsv': ('https://raw.githubusercontent.com/ursus2038/DMEK/8aaf797bc7a8ec76c3c462afbd92f1fa70486ab7/human_disease_experiments_filtered.tsv', '987373ae4e41ad47fbd05f1b44ffddd1663d3d07074f786f3a8290411317c955'),
    'kg_sources/jensenlab_diseases/2024_human_disease_knowledge_filtered.tsv': ('https://raw.githubusercontent.com/ursus2038/DMEK/8aaf797bc7a8ec76c3c462afbd92f1fa70486ab7/human_disease_knowledge_filtered.tsv', 'b6ddc09fab1c04ba0c1479e28f7b356196431678046b1ec6ad3699f7f44b7b02'),
    'kg_sources/jensenlab_diseases/2025_human_disease_experiments_filtered.tsv': ('https://raw.githubusercontent.com/MrFlamadak/ID2211-Data-Mining-Project/b3429e62830ba585a4198fba4592ed59d0772afc/data/human_disease_experiments_filtered.tsv', '9389085b80dc22817fabad8fc2e5a17c0eacb20f855a437748a2e61d0dc3fb4e'),
    'kg_sources/mondo/2023-08_edges.tsv': ('https://raw.githubusercontent.com/monarch-initiative/mondo/bb9b423ad692725b9555b4929ff81ab2d11737d1/reports/edges.tsv', '50e6d052a1687f7280c2c11cae6d708d242482807aea3d6d497560e4aa8cc5a8'),
    'kg_sources/mondo/2023-08_obsoletes.tsv': ('https://raw.githubusercontent.com/monarch-initiative/mondo/bb9b423ad692725b9555b4929ff81ab2d11737d1/reports/obsoletes.tsv', 'ff7cfb07445cce98e43723a5e8aa8d18fea98be090e2b8e89c270a528c0359b4'),
    'kg_sources/mondo/2023-08_superclass-count.tsv': ('https://raw.githubusercontent.com/monarch-initiative/mondo/bb9b423ad692725b9555b4929ff81ab2d11737d1/reports/superclass-count.tsv', '799c64b694b08a5c324d1fef313b3a1e6b8cc701b45225540b3b9cb50b6b4b4b'),
    'kg_sources/mondo/2023-08_xrefs.tsv': ('https://raw.githubusercontent.com/monarch-initiative/mondo/bb9b423ad692725b9555b4929ff81ab2d11737d1/reports/xrefs.tsv', '77b3cffde1c953f442ac188234d198ea8cde3794066b85071b50009c4a3de8cf'),
    'kg_sources/mondo/mondo_exactmatch_doid.sssom.tsv': ('https://raw.githubusercontent.com/monarch-initiative/mondo/fad2512b4845f483fc1268cdf0bf7a8ef43697cb/src/ontology/mappings/mondo_exactmatch_doid.sssom.tsv', '1718d8644f1dc681c8921cbfd6aa2a46a56751fa49dc064fcd124767118400b0'),
    'kg_sources/mondo/mondo_exactmatch_efo.sssom.tsv': ('https://raw.githubusercontent.com/monarch-initiative/mondo/fad2512b4845f483fc1268cdf0bf7a8ef43697cb/src/ontology/mappings/mondo_exactmatch_efo.sssom.tsv', 'd42df0dab486d19f99e69dbfb7ba14ffed1bc8aca2509ae6a86b6a82b56bbcf7'),
    'kg_sources/mondo/mondo_exactmatch_mesh.sssom.tsv': ('https://raw.githubusercontent.com/monarch-initiative/mondo/fad2512b4845f483fc1268cdf0bf7a8ef43697cb/src/ontology/mappings/mondo_exactmatch_mesh.sssom.tsv', '8285f827ad2b5900825ecbde24c2029e23fa48f2ccfe0c3ebc729f1af8e8535f'),
    'kg_sources/mondo/mondo_exactmatch_omim.sssom.tsv': ('https://raw.githubusercontent.com/monarch-initiative/mondo/fad2512b4845f483fc1268cdf0bf7a8ef43697cb/src/ontology/mappings/mondo_exactmatch_omim.sssom.tsv', '7dad9b7df2729c06f0bbfdc134ac4bf9982385a22a1cafe966e6942274c221d5'),
    'kg_sources/mondo/mondo_exactmatch_orphanet.sssom.tsv': ('https://raw.githubusercontent.com/monarch-initiative/mondo/fad2512b4845f483fc1268cdf0bf7a8ef43697cb/src/ontology/mappings/mondo_exactmatch_orphanet.sssom.tsv', '2f1dd7fc078d02852acd3bf8212437583eafe983477a07080bc68cb2f7b11836'),
    'kg_sources/mondo/mondo_exactmatch_umls.sssom.tsv': ('https://raw.githubusercontent.com/monarch-initiative/mondo/fad2512b4845f483fc1268cdf0bf7a8ef43697cb/src/ontology/mappings/mondo_exactmatch_umls.sssom.tsv', 'b418ee92228b18ab178ea6e5bf67ed3acf826d59f6bbaf3157c55f0157fecf1d'),
    'kg_sources/hetionet_subset/CbG-binding.tsv': ('https://raw.githubusercontent.com/dhimmel/integrate/93feba1/compile/CbG-binding.tsv', '6918200b27b90f312c6e6bc636079eb6f72f006aeda308144c1f1fc5cae6fced'),
    'kg_sources/hetionet_subset/DaG-association.tsv': ('https://raw.githubusercontent.com/dhimmel/integrate/93feba1/compile/DaG-association.tsv', '571b45f4007045d904d926d8a01840f359345d37bc9d1db15d4dab1d38691e84'),
    'kg_sources/hetionet_subset/edges-5k.sif.gz': (None, 'c6bc934a764fd4c5b6f57cfcdfd4102bf306fbddc7a534fc85de6844ac102fdd'),
    'kg_sources/hetionet_subset/metaedges.tsv': ('https://raw.githubusercontent.com/dhimmel/integrate/93feba1/data/metaedges.tsv', 'fd2d1f7f2d4658aacae5b0f19dbf8984b3b55e9ad4fc1a9c0c7c3859d86beb31'),
    'kg_sources/hetionet_subset/metagraph.json': ('https://raw.githubusercontent.com/dhimmel/integrate/93feba1/data/metagraph.json', '054401cb7b8178fc3c8c6dffb527de09035b81cd57a4ef50a46e25fa2cef2050'),
    'kg_sources/hetionet_subset/metanodes.tsv': ('https://raw.githubusercontent.com/dhimmel/integrate/93feba1/data/metanodes.tsv', '0a8526f4b1ed66c70729fb52a63947d091a58211cec97f105944cd727fe56269'),
    'kg_sources/hetionet_subset/nodes.tsv': ('https://raw.githubusercontent.com/dhimmel/integrate/93feba1/data/nodes.tsv', '3ad9eb86c031df8bc7d5efefa6edc93562182eb9a6a71e5129d3f18b9d42c50e'),
}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sources_root(settings: Settings) -> Path:
    return settings.sources_dir if settings.sources_dir is not None else settings.home / "sources"


def source_path(settings: Settings, relative: str) -> Path:
    """The local path of a public data file, downloading and verifying it when no mirror is set."""
    if settings.sources_dir is not None:
        path = settings.sources_dir / relative
        if not path.exists():
            raise SourceFileError(f"source file {relative} not found under KGRAG_SOURCES_DIR={settings.sources_dir}")
        return path
    path = settings.home / "sources" / relative
    if path.exists():
        return path
    url, checksum = SOURCE_FILES.get(relative, (None, None))
    if url is None:
        raise SourceFileError(
            f"source file {relative} has no public download (it is a split or subset); set KGRAG_SOURCES_DIR "
            "to a directory laid out like shared/data that holds it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as exc:
        raise SourceFileError(f"cannot download {relative} from {url} ({exc}); set KGRAG_SOURCES_DIR to a local mirror") from exc
    got = sha256_file(partial)
    if checksum and got != checksum:
        partial.unlink()
        raise SourceFileError(f"checksum mismatch for {relative}: expected {checksum}, got {got}")
    partial.rename(path)
    return path
